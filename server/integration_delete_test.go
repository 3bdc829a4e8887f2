package server_test

import (
	"fmt"
	"slices"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/codes"
)

// deleteFixture writes ten viewers of document:big, two of document:small
// and one owner of document:big.
func deleteFixture(t *testing.T, ts *testServer) {
	t.Helper()
	ts.writeSchema(t, testSchema)
	var rels []string
	for i := range 10 {
		rels = append(rels, fmt.Sprintf("document:big#viewer@user:u%d", i))
	}
	rels = append(rels,
		"document:small#viewer@user:alice",
		"document:small#viewer@user:bob",
		"document:big#owner@user:olivia",
	)
	ts.touchAll(t, rels...)
}

func TestDeleteByFilter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		filter      *v1.RelationshipFilter
		wantDeleted uint64
		wantLeft    []string
	}{
		{
			name:        "resource and relation",
			filter:      &v1.RelationshipFilter{ResourceType: "document", OptionalResourceId: "big", OptionalRelation: "viewer"},
			wantDeleted: 10,
			wantLeft: []string{
				"document:big#owner@user:olivia",
				"document:small#viewer@user:alice",
				"document:small#viewer@user:bob",
			},
		},
		{
			name: "subject",
			filter: &v1.RelationshipFilter{
				ResourceType:          "document",
				OptionalSubjectFilter: &v1.SubjectFilter{SubjectType: "user", OptionalSubjectId: "alice"},
			},
			wantDeleted: 1,
			wantLeft: append(bigViewers(10),
				"document:big#owner@user:olivia",
				"document:small#viewer@user:bob",
			),
		},
		{
			name:        "no match",
			filter:      &v1.RelationshipFilter{ResourceType: "document", OptionalResourceId: "missing"},
			wantDeleted: 0,
			wantLeft: append(bigViewers(10),
				"document:big#owner@user:olivia",
				"document:small#viewer@user:alice",
				"document:small#viewer@user:bob",
			),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t)
			deleteFixture(t, ts)
			resp, err := ts.client.DeleteRelationships(testContext(t), &v1.DeleteRelationshipsRequest{RelationshipFilter: tc.filter})
			if err != nil {
				t.Fatalf("DeleteRelationships: %v", err)
			}
			if got := resp.GetRelationshipsDeletedCount(); got != tc.wantDeleted {
				t.Errorf("deleted count: got %d, want %d", got, tc.wantDeleted)
			}
			if got, want := resp.GetDeletionProgress(), v1.DeleteRelationshipsResponse_DELETION_PROGRESS_COMPLETE; got != want {
				t.Errorf("deletion progress: got %s, want %s", got, want)
			}
			got := ts.read(t, &v1.RelationshipFilter{ResourceType: "document"})
			want := slices.Sorted(slices.Values(tc.wantLeft))
			if !slices.Equal(got, want) {
				t.Errorf("relationships left:\ngot  %q\nwant %q", got, want)
			}
		})
	}
}

// bigViewers returns the first n viewers of document:big in deleteFixture.
func bigViewers(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("document:big#viewer@user:u%d", i))
	}
	return out
}

// With a limit and partial deletions allowed, each call deletes at most
// the limit and reports PARTIAL until the filter matches no more than the
// limit.
func TestDeletePartial(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	deleteFixture(t, ts)
	filter := &v1.RelationshipFilter{ResourceType: "document", OptionalResourceId: "big", OptionalRelation: "viewer"}

	steps := []struct {
		wantDeleted  uint64
		wantProgress v1.DeleteRelationshipsResponse_DeletionProgress
		wantLeft     int
	}{
		{wantDeleted: 4, wantProgress: v1.DeleteRelationshipsResponse_DELETION_PROGRESS_PARTIAL, wantLeft: 6},
		{wantDeleted: 4, wantProgress: v1.DeleteRelationshipsResponse_DELETION_PROGRESS_PARTIAL, wantLeft: 2},
		{wantDeleted: 2, wantProgress: v1.DeleteRelationshipsResponse_DELETION_PROGRESS_COMPLETE, wantLeft: 0},
	}
	for i, step := range steps {
		resp, err := ts.client.DeleteRelationships(testContext(t), &v1.DeleteRelationshipsRequest{
			RelationshipFilter:            filter,
			OptionalLimit:                 4,
			OptionalAllowPartialDeletions: true,
		})
		if err != nil {
			t.Fatalf("step %d: DeleteRelationships: %v", i, err)
		}
		if got := resp.GetRelationshipsDeletedCount(); got != step.wantDeleted {
			t.Errorf("step %d: deleted count: got %d, want %d", i, got, step.wantDeleted)
		}
		if got := resp.GetDeletionProgress(); got != step.wantProgress {
			t.Errorf("step %d: deletion progress: got %s, want %s", i, got, step.wantProgress)
		}
		if got := len(ts.read(t, filter)); got != step.wantLeft {
			t.Errorf("step %d: relationships left: got %d, want %d", i, got, step.wantLeft)
		}
	}
	got := ts.read(t, &v1.RelationshipFilter{ResourceType: "document"})
	want := []string{
		"document:big#owner@user:olivia",
		"document:small#viewer@user:alice",
		"document:small#viewer@user:bob",
	}
	if !slices.Equal(got, want) {
		t.Errorf("relationships left outside the filter:\ngot  %q\nwant %q", got, want)
	}
}

// Without partial deletions, a filter that matches more than the limit
// fails and deletes nothing. A filter that matches no more than the limit
// deletes everything.
func TestDeleteLimitWithoutPartial(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	deleteFixture(t, ts)
	filter := &v1.RelationshipFilter{ResourceType: "document", OptionalResourceId: "big", OptionalRelation: "viewer"}

	before := ts.readState(t, testResourceTypes...)
	_, err := ts.client.DeleteRelationships(testContext(t), &v1.DeleteRelationshipsRequest{
		RelationshipFilter: filter,
		OptionalLimit:      4,
	})
	requireStatus(t, err, codes.FailedPrecondition, "document:big#viewer", "limit of 4", "optional_allow_partial_deletions")
	requireUnchanged(t, before, ts.readState(t, testResourceTypes...))

	resp, err := ts.client.DeleteRelationships(testContext(t), &v1.DeleteRelationshipsRequest{
		RelationshipFilter: filter,
		OptionalLimit:      10,
	})
	if err != nil {
		t.Fatalf("DeleteRelationships with limit 10: %v", err)
	}
	if got := resp.GetRelationshipsDeletedCount(); got != 10 {
		t.Errorf("deleted count: got %d, want 10", got)
	}
	if got, want := resp.GetDeletionProgress(), v1.DeleteRelationshipsResponse_DELETION_PROGRESS_COMPLETE; got != want {
		t.Errorf("deletion progress: got %s, want %s", got, want)
	}
	if got := ts.read(t, filter); len(got) != 0 {
		t.Errorf("relationships left: got %q, want none", got)
	}
}

func TestDeletePreconditionUnmet(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	deleteFixture(t, ts)
	before := ts.readState(t, testResourceTypes...)
	_, err := ts.client.DeleteRelationships(testContext(t), &v1.DeleteRelationshipsRequest{
		RelationshipFilter: &v1.RelationshipFilter{ResourceType: "document", OptionalResourceId: "small"},
		OptionalPreconditions: []*v1.Precondition{mustNotMatch(&v1.RelationshipFilter{
			ResourceType: "document", OptionalRelation: "owner",
		})},
	})
	requireStatus(t, err, codes.FailedPrecondition, "document:(any)#owner")
	requireUnchanged(t, before, ts.readState(t, testResourceTypes...))
}
