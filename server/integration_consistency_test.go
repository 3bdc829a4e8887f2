package server_test

import (
	"fmt"
	"slices"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/codes"
)

func minimizeLatency() *v1.Consistency {
	return &v1.Consistency{Requirement: &v1.Consistency_MinimizeLatency{MinimizeLatency: true}}
}

func atLeastAsFresh(token *v1.ZedToken) *v1.Consistency {
	return &v1.Consistency{Requirement: &v1.Consistency_AtLeastAsFresh{AtLeastAsFresh: token}}
}

func atExactSnapshot(token *v1.ZedToken) *v1.Consistency {
	return &v1.Consistency{Requirement: &v1.Consistency_AtExactSnapshot{AtExactSnapshot: token}}
}

// Alice may view readme at the first revision and not after the second,
// which deletes her relationship. Each consistency mode must read the
// revision it names.
func TestConsistencyModes(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.writeSchema(t, testSchema)
	granted := ts.touchAll(t, "document:readme#viewer@user:alice")
	revoked := ts.writeAll(t, opDelete, "document:readme#viewer@user:alice")
	if granted.GetToken() == revoked.GetToken() {
		t.Fatalf("the grant and the revocation returned the same token %q", granted.GetToken())
	}

	tests := []struct {
		name          string
		consistency   *v1.Consistency
		want          v1.CheckPermissionResponse_Permissionship
		wantCheckedAt *v1.ZedToken
	}{
		{name: "unspecified", consistency: nil, want: noPermission, wantCheckedAt: revoked},
		{name: "minimize latency", consistency: minimizeLatency(), want: noPermission, wantCheckedAt: revoked},
		{name: "fully consistent", consistency: fullyConsistent(), want: noPermission, wantCheckedAt: revoked},
		{name: "at least as fresh old", consistency: atLeastAsFresh(granted), want: noPermission, wantCheckedAt: revoked},
		{name: "at least as fresh head", consistency: atLeastAsFresh(revoked), want: noPermission, wantCheckedAt: revoked},
		{name: "exact snapshot old", consistency: atExactSnapshot(granted), want: hasPermission, wantCheckedAt: granted},
		{name: "exact snapshot head", consistency: atExactSnapshot(revoked), want: noPermission, wantCheckedAt: revoked},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := ts.client.CheckPermission(testContext(t), &v1.CheckPermissionRequest{
				Resource:    objectRef("document", "readme"),
				Permission:  "view",
				Subject:     subjectRef(t, "user:alice"),
				Consistency: tc.consistency,
			})
			if err != nil {
				t.Fatalf("CheckPermission: %v", err)
			}
			if got := resp.GetPermissionship(); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
			if got, want := resp.GetCheckedAt().GetToken(), tc.wantCheckedAt.GetToken(); got != want {
				t.Errorf("checked_at: got %q, want %q", got, want)
			}
		})
	}
}

// ReadRelationships and CheckBulkPermissions honor at_exact_snapshot too.
func TestConsistencyExactSnapshotReads(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.writeSchema(t, testSchema)
	first := ts.touchAll(t, "document:readme#viewer@user:alice")
	ts.touchAll(t, "document:readme#viewer@user:bob")
	ts.writeAll(t, opDelete, "document:readme#viewer@user:alice")

	resps, err := ts.readWith(t, &v1.ReadRelationshipsRequest{
		RelationshipFilter: &v1.RelationshipFilter{ResourceType: "document"},
		Consistency:        atExactSnapshot(first),
	})
	if err != nil {
		t.Fatalf("ReadRelationships: %v", err)
	}
	var got []string
	for _, r := range resps {
		got = append(got, relString(t, r.GetRelationship()))
		if r.GetReadAt().GetToken() != first.GetToken() {
			t.Errorf("read_at: got %q, want %q", r.GetReadAt().GetToken(), first.GetToken())
		}
	}
	if want := []string{"document:readme#viewer@user:alice"}; !slices.Equal(got, want) {
		t.Errorf("relationships at the first revision: got %q, want %q", got, want)
	}

	bulk, err := ts.client.CheckBulkPermissions(testContext(t), &v1.CheckBulkPermissionsRequest{
		Consistency: atExactSnapshot(first),
		Items: []*v1.CheckBulkPermissionsRequestItem{
			{Resource: objectRef("document", "readme"), Permission: "view", Subject: subjectRef(t, "user:alice")},
			{Resource: objectRef("document", "readme"), Permission: "view", Subject: subjectRef(t, "user:bob")},
		},
	})
	if err != nil {
		t.Fatalf("CheckBulkPermissions: %v", err)
	}
	for i, want := range []v1.CheckPermissionResponse_Permissionship{hasPermission, noPermission} {
		if got := bulk.GetPairs()[i].GetItem().GetPermissionship(); got != want {
			t.Errorf("item %d: got %s, want %s", i, got, want)
		}
	}
}

// A check at an exact snapshot uses the schema in force at that revision.
func TestConsistencyExactSnapshotSchema(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.writeSchema(t, testSchema)
	before := ts.touchAll(t, "document:readme#auditor@user:alice")
	ts.writeSchema(t, testSchema+`
definition report {
  relation reader: user
  permission read = reader
}
`)
	ts.touchAll(t, "report:q3#reader@user:alice")

	check := func(consistency *v1.Consistency) error {
		_, err := ts.client.CheckPermission(testContext(t), &v1.CheckPermissionRequest{
			Resource:    objectRef("report", "q3"),
			Permission:  "read",
			Subject:     subjectRef(t, "user:alice"),
			Consistency: consistency,
		})
		return err
	}
	if err := check(fullyConsistent()); err != nil {
		t.Fatalf("CheckPermission at head: %v", err)
	}
	requireStatus(t, check(atExactSnapshot(before)), codes.FailedPrecondition, `"report"`)
}

func TestConsistencyInvalidToken(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.writeSchema(t, testSchema)
	ts.touchAll(t, "document:readme#viewer@user:alice")

	// A token from a server that is ahead names a revision this server has
	// not reached.
	other := startServer(t)
	other.writeSchema(t, testSchema)
	var ahead *v1.ZedToken
	for i := range 5 {
		ahead = other.touchAll(t, fmt.Sprintf("document:readme#viewer@user:u%d", i))
	}

	tests := []struct {
		name        string
		consistency *v1.Consistency
		wantCode    codes.Code
		fragments   []string
	}{
		{
			name:        "garbage at least as fresh",
			consistency: atLeastAsFresh(&v1.ZedToken{Token: "garbage"}),
			wantCode:    codes.InvalidArgument,
			fragments:   []string{`"garbage"`},
		},
		{
			name:        "garbage exact snapshot",
			consistency: atExactSnapshot(&v1.ZedToken{Token: "garbage"}),
			wantCode:    codes.InvalidArgument,
			fragments:   []string{`"garbage"`},
		},
		{
			name:        "ahead at least as fresh",
			consistency: atLeastAsFresh(ahead),
			wantCode:    codes.FailedPrecondition,
			fragments:   []string{"newer than the head"},
		},
		{
			name:        "ahead exact snapshot",
			consistency: atExactSnapshot(ahead),
			wantCode:    codes.FailedPrecondition,
			fragments:   []string{"newer than the head"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ts.client.CheckPermission(testContext(t), &v1.CheckPermissionRequest{
				Resource:    objectRef("document", "readme"),
				Permission:  "view",
				Subject:     subjectRef(t, "user:alice"),
				Consistency: tc.consistency,
			})
			requireStatus(t, err, tc.wantCode, tc.fragments...)
		})
	}
}
