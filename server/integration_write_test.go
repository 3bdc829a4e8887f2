package server_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	opCreate = v1.RelationshipUpdate_OPERATION_CREATE
	opTouch  = v1.RelationshipUpdate_OPERATION_TOUCH
	opDelete = v1.RelationshipUpdate_OPERATION_DELETE
)

func TestWriteCreate(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.writeSchema(t, testSchema)
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Second)

	want := []string{
		"document:readme#editor@group:eng#member",
		"document:readme#viewer@user:*",
		"document:readme#viewer@user:alice",
		`document:secret#viewer@user:sam[has_clearance:{"required":3}]`,
		"document:temp#viewer@user:tina[expiration:" + expires.Format(time.RFC3339) + "]",
	}
	token := ts.writeAll(t, opCreate, want...)
	if token.GetToken() == "" {
		t.Fatalf("WriteRelationships returned an empty written_at token")
	}
	if got := ts.read(t, &v1.RelationshipFilter{ResourceType: "document"}); !slices.Equal(got, want) {
		t.Errorf("relationships after create:\ngot  %q\nwant %q", got, want)
	}
}

func TestWriteCreateDuplicate(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.writeSchema(t, testSchema)
	ts.writeAll(t, opCreate, "document:readme#viewer@user:alice")

	before := ts.readState(t, testResourceTypes...)
	_, err := ts.client.WriteRelationships(testContext(t), &v1.WriteRelationshipsRequest{
		Updates: []*v1.RelationshipUpdate{
			update(opCreate, rel(t, "document:readme#viewer@user:bob")),
			update(opCreate, rel(t, "document:readme#viewer@user:alice")),
		},
	})
	requireStatus(t, err, codes.AlreadyExists, "document:readme#viewer@user:alice")
	requireUnchanged(t, before, ts.readState(t, testResourceTypes...))
}

// TOUCH creates a missing relationship and replaces the caveat context
// and expiration of an existing one.
func TestWriteTouch(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.writeSchema(t, testSchema)
	ts.touchAll(t, `document:secret#viewer@user:sam[has_clearance:{"required":3}]`)
	ts.touchAll(t,
		`document:secret#viewer@user:sam[has_clearance:{"required":5}]`,
		"document:secret#viewer@user:alice",
	)
	ts.touchAll(t, "document:secret#viewer@user:alice")

	got := ts.read(t, &v1.RelationshipFilter{ResourceType: "document"})
	want := []string{
		"document:secret#viewer@user:alice",
		`document:secret#viewer@user:sam[has_clearance:{"required":5}]`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("relationships after touch:\ngot  %q\nwant %q", got, want)
	}
}

func TestWriteDelete(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.writeSchema(t, testSchema)
	ts.touchAll(t,
		"document:readme#viewer@user:alice",
		"document:readme#viewer@user:bob",
		`document:secret#viewer@user:sam[has_clearance:{"required":3}]`,
	)
	// Deleting a relationship that does not exist succeeds, and a delete
	// needs no caveat to match a caveated relationship.
	ts.writeAll(t, opDelete,
		"document:readme#viewer@user:alice",
		"document:readme#viewer@user:nobody",
		"document:secret#viewer@user:sam",
	)

	got := ts.read(t, &v1.RelationshipFilter{ResourceType: "document"})
	want := []string{"document:readme#viewer@user:bob"}
	if !slices.Equal(got, want) {
		t.Errorf("relationships after delete:\ngot  %q\nwant %q", got, want)
	}
}

// A write with several updates of different kinds is one transaction
// with one new revision.
func TestWriteMixedOperations(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.writeSchema(t, testSchema)
	ts.touchAll(t, "document:readme#viewer@user:alice", "document:readme#viewer@user:bob")

	resp, err := ts.client.WriteRelationships(testContext(t), &v1.WriteRelationshipsRequest{
		Updates: []*v1.RelationshipUpdate{
			update(opCreate, rel(t, "document:readme#viewer@user:carol")),
			update(opTouch, rel(t, "document:readme#viewer@user:bob")),
			update(opDelete, rel(t, "document:readme#viewer@user:alice")),
		},
	})
	if err != nil {
		t.Fatalf("WriteRelationships: %v", err)
	}
	got := ts.read(t, &v1.RelationshipFilter{ResourceType: "document"})
	want := []string{"document:readme#viewer@user:bob", "document:readme#viewer@user:carol"}
	if !slices.Equal(got, want) {
		t.Errorf("relationships after write:\ngot  %q\nwant %q", got, want)
	}
	head := ts.readState(t).head
	if written := resp.GetWrittenAt().GetToken(); written != head {
		t.Errorf("written_at %q is not the head revision %q", written, head)
	}
}

// Caveat context and expiration keep their values on the way through the
// API, and a relationship gets only the fields it was written with.
func TestWriteCaveatAndExpirationFields(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.writeSchema(t, testSchema)
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	ctx, err := structpb.NewStruct(map[string]any{"required": 7})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ts.client.WriteRelationships(testContext(t), &v1.WriteRelationshipsRequest{
		Updates: []*v1.RelationshipUpdate{
			update(opTouch, &v1.Relationship{
				Resource:       objectRef("document", "secret"),
				Relation:       "viewer",
				Subject:        subjectRef(t, "user:sam"),
				OptionalCaveat: &v1.ContextualizedCaveat{CaveatName: "has_clearance", Context: ctx},
			}),
			update(opTouch, &v1.Relationship{
				Resource:          objectRef("document", "temp"),
				Relation:          "viewer",
				Subject:           subjectRef(t, "user:tina"),
				OptionalExpiresAt: timestamppb.New(expires),
			}),
		},
	})
	if err != nil {
		t.Fatalf("WriteRelationships: %v", err)
	}

	resps, err := ts.readWith(t, &v1.ReadRelationshipsRequest{RelationshipFilter: &v1.RelationshipFilter{ResourceType: "document"}})
	if err != nil {
		t.Fatalf("ReadRelationships: %v", err)
	}
	if len(resps) != 2 {
		t.Fatalf("got %d relationships, want 2", len(resps))
	}
	secret, temp := resps[0].GetRelationship(), resps[1].GetRelationship()
	if got := secret.GetOptionalCaveat().GetCaveatName(); got != "has_clearance" {
		t.Errorf("caveat name: got %q, want %q", got, "has_clearance")
	}
	if got := secret.GetOptionalCaveat().GetContext().GetFields()["required"].GetNumberValue(); got != 7 {
		t.Errorf("caveat context required: got %v, want 7", got)
	}
	if secret.GetOptionalExpiresAt() != nil {
		t.Errorf("expiration of %s: got %v, want none", relString(t, secret), secret.GetOptionalExpiresAt().AsTime())
	}
	if got := temp.GetOptionalExpiresAt().AsTime(); !got.Equal(expires) {
		t.Errorf("expiration: got %v, want %v", got, expires)
	}
	if temp.GetOptionalCaveat() != nil {
		t.Errorf("caveat of %s: got %v, want none", relString(t, temp), temp.GetOptionalCaveat())
	}
}

func mustMatch(filter *v1.RelationshipFilter) *v1.Precondition {
	return &v1.Precondition{Operation: v1.Precondition_OPERATION_MUST_MATCH, Filter: filter}
}

func mustNotMatch(filter *v1.RelationshipFilter) *v1.Precondition {
	return &v1.Precondition{Operation: v1.Precondition_OPERATION_MUST_NOT_MATCH, Filter: filter}
}

func TestWritePreconditions(t *testing.T) {
	t.Parallel()
	aliceViews := &v1.RelationshipFilter{
		ResourceType:       "document",
		OptionalResourceId: "readme",
		OptionalRelation:   "viewer",
		OptionalSubjectFilter: &v1.SubjectFilter{
			SubjectType:       "user",
			OptionalSubjectId: "alice",
		},
	}
	anyBanned := &v1.RelationshipFilter{ResourceType: "document", OptionalRelation: "banned"}
	tests := []struct {
		name          string
		preconditions []*v1.Precondition
		wantCode      codes.Code
		fragments     []string
	}{
		{
			name:          "must match met",
			preconditions: []*v1.Precondition{mustMatch(aliceViews)},
			wantCode:      codes.OK,
		},
		{
			name:          "must match unmet",
			preconditions: []*v1.Precondition{mustMatch(anyBanned)},
			wantCode:      codes.FailedPrecondition,
			fragments:     []string{"document:(any)#banned"},
		},
		{
			name:          "must not match met",
			preconditions: []*v1.Precondition{mustNotMatch(anyBanned)},
			wantCode:      codes.OK,
		},
		{
			name:          "must not match unmet",
			preconditions: []*v1.Precondition{mustNotMatch(aliceViews)},
			wantCode:      codes.FailedPrecondition,
			fragments:     []string{"document:readme#viewer@user:alice"},
		},
		{
			name:          "second of two unmet",
			preconditions: []*v1.Precondition{mustMatch(aliceViews), mustMatch(anyBanned)},
			wantCode:      codes.FailedPrecondition,
			fragments:     []string{"document:(any)#banned"},
		},
		{
			name: "unknown relation in filter",
			preconditions: []*v1.Precondition{mustMatch(&v1.RelationshipFilter{
				ResourceType: "document", OptionalRelation: "reader",
			})},
			wantCode:  codes.FailedPrecondition,
			fragments: []string{`"reader"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t)
			ts.writeSchema(t, testSchema)
			ts.touchAll(t, "document:readme#viewer@user:alice")
			before := ts.readState(t, testResourceTypes...)

			_, err := ts.client.WriteRelationships(testContext(t), &v1.WriteRelationshipsRequest{
				Updates: []*v1.RelationshipUpdate{
					update(opTouch, rel(t, "document:readme#viewer@user:bob")),
					update(opDelete, rel(t, "document:readme#viewer@user:alice")),
				},
				OptionalPreconditions: tc.preconditions,
			})
			after := ts.readState(t, testResourceTypes...)
			if tc.wantCode != codes.OK {
				requireStatus(t, err, tc.wantCode, tc.fragments...)
				requireUnchanged(t, before, after)
				return
			}
			if err != nil {
				t.Fatalf("WriteRelationships: %v", err)
			}
			want := []string{"document:readme#viewer@user:bob"}
			if !slices.Equal(after.rels, want) {
				t.Errorf("relationships after write:\ngot  %q\nwant %q", after.rels, want)
			}
		})
	}
}

// Concurrent CREATEs of one relationship are serialized: exactly one
// succeeds and every other fails with AlreadyExists.
func TestWriteCreateConcurrent(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.writeSchema(t, testSchema)
	const writers = 16
	errs := make(chan error, writers)
	for range writers {
		go func() {
			_, err := ts.client.WriteRelationships(testContext(t), &v1.WriteRelationshipsRequest{
				Updates: []*v1.RelationshipUpdate{update(opCreate, rel(t, "document:readme#owner@user:olivia"))},
			})
			errs <- err
		}()
	}
	succeeded := 0
	for range writers {
		err := <-errs
		switch status.Code(err) {
		case codes.OK:
			succeeded++
		case codes.AlreadyExists:
		default:
			t.Errorf("concurrent create: got %v, want success or AlreadyExists", err)
		}
	}
	if succeeded != 1 {
		t.Errorf("got %d successful creates, want 1", succeeded)
	}
}

// A MUST_NOT_MATCH precondition is checked in the same transaction as the
// write, so of concurrent writers that each claim an unowned document,
// exactly one wins.
func TestWritePreconditionConcurrent(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.writeSchema(t, testSchema)
	const writers = 16
	unowned := mustNotMatch(&v1.RelationshipFilter{
		ResourceType: "document", OptionalResourceId: "lock", OptionalRelation: "owner",
	})
	errs := make(chan error, writers)
	for i := range writers {
		go func() {
			_, err := ts.client.WriteRelationships(testContext(t), &v1.WriteRelationshipsRequest{
				Updates:               []*v1.RelationshipUpdate{update(opTouch, rel(t, fmt.Sprintf("document:lock#owner@user:u%d", i)))},
				OptionalPreconditions: []*v1.Precondition{unowned},
			})
			errs <- err
		}()
	}
	succeeded := 0
	for range writers {
		err := <-errs
		switch status.Code(err) {
		case codes.OK:
			succeeded++
		case codes.FailedPrecondition:
		default:
			t.Errorf("concurrent claim: got %v, want success or FailedPrecondition", err)
		}
	}
	if succeeded != 1 {
		t.Errorf("got %d successful claims, want 1", succeeded)
	}
	if got := ts.read(t, &v1.RelationshipFilter{ResourceType: "document", OptionalResourceId: "lock"}); len(got) != 1 {
		t.Errorf("owners of document:lock: got %q, want exactly one", got)
	}
}
