package server_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// checkFixture covers each rewrite of testSchema. Olivia owns readme and
// the eng group edits it. The core group is nested in eng, and carl, a
// member of core, is banned from viewing readme. The parent of readme is
// folder:shared. Every user may view public. Sam may view secret with
// clearance 3 and audits it without a caveat.
var checkFixture = []string{
	"document:readme#owner@user:olivia",
	"document:readme#editor@group:eng#member",
	"group:eng#member@user:erin",
	"group:eng#member@group:core#member",
	"group:core#member@user:carl",
	"document:readme#auditor@user:erin",
	"document:readme#auditor@user:alice",
	"document:readme#banned@user:carl",
	"document:readme#parent@folder:shared",
	"folder:shared#viewer@user:fred",
	"folder:shared#owner@user:frank",
	"document:public#viewer@user:*",
	"document:public#banned@user:mallory",
	`document:secret#viewer@user:sam[has_clearance:{"required":3}]`,
	"document:secret#auditor@user:sam",
}

const (
	hasPermission = v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION
	noPermission  = v1.CheckPermissionResponse_PERMISSIONSHIP_NO_PERMISSION
	conditional   = v1.CheckPermissionResponse_PERMISSIONSHIP_CONDITIONAL_PERMISSION
)

// checkCase is one permission question and its expected answer.
type checkCase struct {
	name        string
	resource    string // type:id
	permission  string
	subject     string
	context     map[string]any
	want        v1.CheckPermissionResponse_Permissionship
	wantMissing []string
}

var checkCases = []checkCase{
	{name: "owner edits", resource: "document:readme", permission: "edit", subject: "user:olivia", want: hasPermission},
	{name: "owner views", resource: "document:readme", permission: "view", subject: "user:olivia", want: hasPermission},
	{name: "group member edits", resource: "document:readme", permission: "edit", subject: "user:erin", want: hasPermission},
	{name: "nested group member edits", resource: "document:readme", permission: "edit", subject: "user:carl", want: hasPermission},
	{name: "banned editor cannot view", resource: "document:readme", permission: "view", subject: "user:carl", want: noPermission},
	{name: "arrow to folder viewer", resource: "document:readme", permission: "view", subject: "user:fred", want: hasPermission},
	{name: "arrow to folder owner", resource: "document:readme", permission: "view", subject: "user:frank", want: hasPermission},
	{name: "arrow grants no edit", resource: "document:readme", permission: "edit", subject: "user:fred", want: noPermission},
	{name: "intersection both sides", resource: "document:readme", permission: "audit", subject: "user:erin", want: hasPermission},
	{name: "intersection auditor only", resource: "document:readme", permission: "audit", subject: "user:alice", want: noPermission},
	{name: "intersection editor only", resource: "document:readme", permission: "audit", subject: "user:olivia", want: noPermission},
	{name: "stranger", resource: "document:readme", permission: "view", subject: "user:zed", want: noPermission},
	{name: "relation checked directly", resource: "document:readme", permission: "auditor", subject: "user:alice", want: hasPermission},
	{name: "subject set of group", resource: "document:readme", permission: "edit", subject: "group:eng#member", want: hasPermission},
	{name: "nested subject set", resource: "document:readme", permission: "view", subject: "group:core#member", want: hasPermission},
	{name: "unrelated subject set", resource: "document:public", permission: "edit", subject: "group:eng#member", want: noPermission},
	{name: "wildcard", resource: "document:public", permission: "view", subject: "user:anyone", want: hasPermission},
	{name: "wildcard minus banned", resource: "document:public", permission: "view", subject: "user:mallory", want: noPermission},
	{name: "wildcard grants no edit", resource: "document:public", permission: "edit", subject: "user:anyone", want: noPermission},
	{
		name: "caveat context missing", resource: "document:secret", permission: "view", subject: "user:sam",
		want: conditional, wantMissing: []string{"level"},
	},
	{
		name: "caveat true", resource: "document:secret", permission: "view", subject: "user:sam",
		context: map[string]any{"level": 5}, want: hasPermission,
	},
	{
		name: "caveat at boundary", resource: "document:secret", permission: "view", subject: "user:sam",
		context: map[string]any{"level": 3}, want: hasPermission,
	},
	{
		name: "caveat false", resource: "document:secret", permission: "view", subject: "user:sam",
		context: map[string]any{"level": 1}, want: noPermission,
	},
	{
		name: "stored context wins", resource: "document:secret", permission: "view", subject: "user:sam",
		context: map[string]any{"level": 1, "required": 0}, want: noPermission,
	},
	{
		name: "caveat not on path", resource: "document:secret", permission: "auditor", subject: "user:sam",
		want: hasPermission,
	},
}

// checkFixtureServer starts a server with testSchema and checkFixture.
func checkFixtureServer(t *testing.T) *testServer {
	t.Helper()
	ts := startServer(t)
	ts.writeSchema(t, testSchema)
	ts.touchAll(t, checkFixture...)
	return ts
}

func (c checkCase) request(t *testing.T) *v1.CheckPermissionRequest {
	t.Helper()
	return &v1.CheckPermissionRequest{
		Resource:    objectRefOf(t, c.resource),
		Permission:  c.permission,
		Subject:     subjectRef(t, c.subject),
		Context:     structOf(t, c.context),
		Consistency: fullyConsistent(),
	}
}

// objectRefOf parses "type:id".
func objectRefOf(t *testing.T, s string) *v1.ObjectReference {
	t.Helper()
	return subjectRef(t, s).GetObject()
}

func structOf(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	if m == nil {
		return nil
	}
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatalf("caveat context %v: %v", m, err)
	}
	return s
}

func TestCheckPermission(t *testing.T) {
	t.Parallel()
	ts := checkFixtureServer(t)
	for _, tc := range checkCases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := ts.client.CheckPermission(testContext(t), tc.request(t))
			if err != nil {
				t.Fatalf("CheckPermission: %v", err)
			}
			if got := resp.GetPermissionship(); got != tc.want {
				t.Errorf("%s#%s@%s: got %s, want %s", tc.resource, tc.permission, tc.subject, got, tc.want)
			}
			missing := resp.GetPartialCaveatInfo().GetMissingRequiredContext()
			if !slices.Equal(missing, tc.wantMissing) {
				t.Errorf("missing context: got %q, want %q", missing, tc.wantMissing)
			}
			if resp.GetCheckedAt().GetToken() == "" {
				t.Errorf("checked_at token is empty")
			}
		})
	}
}

// CheckBulkPermissions answers the same questions as CheckPermission, in
// request order, and a failing item gets its own error without failing
// the others.
func TestCheckBulkPermissions(t *testing.T) {
	t.Parallel()
	ts := checkFixtureServer(t)
	req := &v1.CheckBulkPermissionsRequest{Consistency: fullyConsistent()}
	for _, tc := range checkCases {
		single := tc.request(t)
		req.Items = append(req.Items, &v1.CheckBulkPermissionsRequestItem{
			Resource:   single.GetResource(),
			Permission: single.GetPermission(),
			Subject:    single.GetSubject(),
			Context:    single.GetContext(),
		})
	}
	badItems := []struct {
		item      *v1.CheckBulkPermissionsRequestItem
		wantCode  codes.Code
		fragments []string
	}{
		{
			item: &v1.CheckBulkPermissionsRequestItem{
				Resource: objectRef("documnt", "readme"), Permission: "view", Subject: subjectRef(t, "user:alice"),
			},
			wantCode:  codes.FailedPrecondition,
			fragments: []string{`"documnt"`},
		},
		{
			item: &v1.CheckBulkPermissionsRequestItem{
				Resource: objectRef("document", "readme"), Permission: "read", Subject: subjectRef(t, "user:alice"),
			},
			wantCode:  codes.FailedPrecondition,
			fragments: []string{`"read"`},
		},
	}
	for _, bad := range badItems {
		req.Items = append(req.Items, bad.item)
	}

	resp, err := ts.client.CheckBulkPermissions(testContext(t), req)
	if err != nil {
		t.Fatalf("CheckBulkPermissions: %v", err)
	}
	if got, want := len(resp.GetPairs()), len(req.Items); got != want {
		t.Fatalf("got %d pairs, want %d", got, want)
	}
	if resp.GetCheckedAt().GetToken() == "" {
		t.Errorf("checked_at token is empty")
	}
	for i, tc := range checkCases {
		pair := resp.GetPairs()[i]
		if pair.GetError() != nil {
			t.Errorf("%s: got error %v, want %s", tc.name, pair.GetError(), tc.want)
			continue
		}
		if got := pair.GetItem().GetPermissionship(); got != tc.want {
			t.Errorf("%s: %s#%s@%s: got %s, want %s", tc.name, tc.resource, tc.permission, tc.subject, got, tc.want)
		}
		missing := pair.GetItem().GetPartialCaveatInfo().GetMissingRequiredContext()
		if !slices.Equal(missing, tc.wantMissing) {
			t.Errorf("%s: missing context: got %q, want %q", tc.name, missing, tc.wantMissing)
		}
		if got, want := pair.GetRequest().GetPermission(), tc.permission; got != want {
			t.Errorf("%s: pair request permission: got %q, want %q", tc.name, got, want)
		}
	}
	for i, bad := range badItems {
		pair := resp.GetPairs()[len(checkCases)+i]
		if pair.GetError() == nil {
			t.Errorf("item %d: got %v, want error %s", len(checkCases)+i, pair.GetItem(), bad.wantCode)
			continue
		}
		if got := codes.Code(pair.GetError().GetCode()); got != bad.wantCode {
			t.Errorf("item %d: got code %s (%q), want %s", len(checkCases)+i, got, pair.GetError().GetMessage(), bad.wantCode)
		}
		for _, f := range bad.fragments {
			if !strings.Contains(pair.GetError().GetMessage(), f) {
				t.Errorf("item %d: message %q does not contain %q", len(checkCases)+i, pair.GetError().GetMessage(), f)
			}
		}
	}
}

// A context value of the wrong type for a caveat parameter is the
// caller's error.
func TestCheckCaveatContextWrongType(t *testing.T) {
	t.Parallel()
	ts := checkFixtureServer(t)
	req := checkCase{
		resource: "document:secret", permission: "view", subject: "user:sam",
		context: map[string]any{"level": "high"},
	}.request(t)
	_, err := ts.client.CheckPermission(testContext(t), req)
	requireStatus(t, err, codes.InvalidArgument, "has_clearance", "level")
}

// A relationship with an expiration counts until that time and not after,
// and reads hide it once it has expired.
func TestCheckExpiringRelationship(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.writeSchema(t, testSchema)
	expires := time.Now().Add(1500 * time.Millisecond).UTC()
	_, err := ts.client.WriteRelationships(testContext(t), &v1.WriteRelationshipsRequest{
		Updates: []*v1.RelationshipUpdate{update(opTouch, &v1.Relationship{
			Resource:          objectRef("document", "temp"),
			Relation:          "viewer",
			Subject:           subjectRef(t, "user:tina"),
			OptionalExpiresAt: timestamppb.New(expires),
		})},
	})
	if err != nil {
		t.Fatalf("WriteRelationships: %v", err)
	}
	check := checkCase{resource: "document:temp", permission: "view", subject: "user:tina"}

	resp, err := ts.client.CheckPermission(testContext(t), check.request(t))
	if err != nil {
		t.Fatalf("CheckPermission before expiry: %v", err)
	}
	if time.Now().Before(expires) {
		if got := resp.GetPermissionship(); got != hasPermission {
			t.Errorf("before expiry: got %s, want %s", got, hasPermission)
		}
		if got := len(ts.read(t, &v1.RelationshipFilter{ResourceType: "document"})); got != 1 {
			t.Errorf("before expiry: read %d relationships, want 1", got)
		}
	} else {
		t.Errorf("the check before expiry took more than 1.5s; cannot tell the answer before expiry")
	}

	time.Sleep(time.Until(expires) + 50*time.Millisecond)
	resp, err = ts.client.CheckPermission(testContext(t), check.request(t))
	if err != nil {
		t.Fatalf("CheckPermission after expiry: %v", err)
	}
	if got := resp.GetPermissionship(); got != noPermission {
		t.Errorf("after expiry: got %s, want %s", got, noPermission)
	}
	if got := ts.read(t, &v1.RelationshipFilter{ResourceType: "document"}); len(got) != 0 {
		t.Errorf("after expiry: read %q, want none", got)
	}
}
