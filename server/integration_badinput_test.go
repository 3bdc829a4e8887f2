package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	authzed "github.com/authzed/authzed-go/v1"
	"google.golang.org/grpc/codes"
)

// badInputCase is one invalid request, which call sends. The request must
// fail with wantCode and a message that contains every fragment, and it
// must change nothing.
type badInputCase struct {
	name      string
	call      func(ctx context.Context, t *testing.T, c *authzed.Client) error
	wantCode  codes.Code
	fragments []string
}

// writeOne sends one WriteRelationships call with the given updates.
func writeOne(updates ...*v1.RelationshipUpdate) func(context.Context, *testing.T, *authzed.Client) error {
	return func(ctx context.Context, t *testing.T, c *authzed.Client) error {
		_, err := c.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{Updates: updates})
		return err
	}
}

// touchRel builds a TOUCH update from its parts, so that it can hold
// values that SpiceDB's relationship parser rejects.
func touchRel(resourceType, resourceID, relation, subjectType, subjectID, subjectRelation string) *v1.RelationshipUpdate {
	return update(opTouch, &v1.Relationship{
		Resource: objectRef(resourceType, resourceID),
		Relation: relation,
		Subject: &v1.SubjectReference{
			Object:           objectRef(subjectType, subjectID),
			OptionalRelation: subjectRelation,
		},
	})
}

func touchString(t *testing.T, s string) *v1.RelationshipUpdate {
	return update(opTouch, rel(t, s))
}

func checkOne(resource *v1.ObjectReference, permission string, subject *v1.SubjectReference) func(context.Context, *testing.T, *authzed.Client) error {
	return func(ctx context.Context, t *testing.T, c *authzed.Client) error {
		_, err := c.CheckPermission(ctx, &v1.CheckPermissionRequest{
			Resource: resource, Permission: permission, Subject: subject,
		})
		return err
	}
}

func readOne(req *v1.ReadRelationshipsRequest) func(context.Context, *testing.T, *authzed.Client) error {
	return func(ctx context.Context, t *testing.T, c *authzed.Client) error {
		stream, err := c.ReadRelationships(ctx, req)
		if err != nil {
			return err
		}
		for {
			_, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
}

func deleteOne(req *v1.DeleteRelationshipsRequest) func(context.Context, *testing.T, *authzed.Client) error {
	return func(ctx context.Context, t *testing.T, c *authzed.Client) error {
		_, err := c.DeleteRelationships(ctx, req)
		return err
	}
}

func badInputCases(t *testing.T) []badInputCase {
	manyUpdates := make([]*v1.RelationshipUpdate, 1001)
	for i := range manyUpdates {
		manyUpdates[i] = touchString(t, fmt.Sprintf("document:many#viewer@user:u%d", i))
	}
	manyChecks := make([]*v1.CheckBulkPermissionsRequestItem, 1001)
	for i := range manyChecks {
		manyChecks[i] = &v1.CheckBulkPermissionsRequestItem{
			Resource: objectRef("document", "readme"), Permission: "view", Subject: subjectRef(t, fmt.Sprintf("user:u%d", i)),
		}
	}
	longID := strings.Repeat("a", 1025)

	return []badInputCase{
		// Writes that name something the schema does not define.
		{
			name:      "unknown definition",
			call:      writeOne(touchString(t, "documnt:readme#viewer@user:alice")),
			wantCode:  codes.FailedPrecondition,
			fragments: []string{`"documnt"`},
		},
		{
			name:      "unknown relation",
			call:      writeOne(touchString(t, "document:readme#reader@user:alice")),
			wantCode:  codes.FailedPrecondition,
			fragments: []string{`"reader"`, `"document"`},
		},
		{
			name:      "unknown subject definition",
			call:      writeOne(touchString(t, "document:readme#viewer@robot:r2")),
			wantCode:  codes.FailedPrecondition,
			fragments: []string{`"robot"`},
		},
		{
			name:      "unknown subject relation",
			call:      writeOne(touchString(t, "document:readme#viewer@group:eng#admin")),
			wantCode:  codes.FailedPrecondition,
			fragments: []string{`"admin"`, `"group"`},
		},
		{
			name:      "unknown caveat",
			call:      writeOne(touchString(t, "document:readme#viewer@user:alice[no_such_caveat]")),
			wantCode:  codes.InvalidArgument,
			fragments: []string{"no_such_caveat"},
		},

		// Writes with malformed values.
		{
			name:      "malformed object id",
			call:      writeOne(touchRel("document", "bad id!", "viewer", "user", "alice", "")),
			wantCode:  codes.InvalidArgument,
			fragments: []string{"bad id!"},
		},
		{
			name:      "malformed subject id",
			call:      writeOne(touchRel("document", "readme", "viewer", "user", "al ice", "")),
			wantCode:  codes.InvalidArgument,
			fragments: []string{"al ice"},
		},
		{
			name:      "malformed object type",
			call:      writeOne(touchRel("Document", "readme", "viewer", "user", "alice", "")),
			wantCode:  codes.InvalidArgument,
			fragments: []string{"Document"},
		},
		{
			name:      "malformed relation",
			call:      writeOne(touchRel("document", "readme", "View-er", "user", "alice", "")),
			wantCode:  codes.InvalidArgument,
			fragments: []string{"View-er"},
		},
		{
			name:      "object id too long",
			call:      writeOne(touchRel("document", longID, "viewer", "user", "alice", "")),
			wantCode:  codes.InvalidArgument,
			fragments: []string{"object_id", "1024"},
		},
		{
			name:      "wildcard resource id",
			call:      writeOne(touchRel("document", "*", "viewer", "user", "alice", "")),
			wantCode:  codes.InvalidArgument,
			fragments: []string{"*"},
		},
		{
			name:      "wildcard subject with relation",
			call:      writeOne(touchRel("document", "readme", "viewer", "group", "*", "member")),
			wantCode:  codes.InvalidArgument,
			fragments: []string{`"*"`, "OptionalRelation"},
		},
		{
			name: "operation unspecified",
			call: writeOne(&v1.RelationshipUpdate{
				Relationship: rel(t, "document:readme#viewer@user:alice"),
			}),
			wantCode:  codes.InvalidArgument,
			fragments: []string{"operation"},
		},
		{
			name: "missing subject",
			call: writeOne(update(opTouch, &v1.Relationship{
				Resource: objectRef("document", "readme"), Relation: "viewer",
			})),
			wantCode:  codes.InvalidArgument,
			fragments: []string{"subject"},
		},

		// Writes that the schema does not allow.
		{
			name:      "subject type not allowed",
			call:      writeOne(touchString(t, "document:readme#parent@user:alice")),
			wantCode:  codes.InvalidArgument,
			fragments: []string{`"user"`, "document#parent"},
		},
		{
			name:      "wildcard not allowed",
			call:      writeOne(touchString(t, "document:readme#editor@user:*")),
			wantCode:  codes.InvalidArgument,
			fragments: []string{`"user:*"`, "document#editor"},
		},
		{
			name:      "caveat not allowed",
			call:      writeOne(touchString(t, `document:readme#owner@user:alice[has_clearance:{"required":1}]`)),
			wantCode:  codes.InvalidArgument,
			fragments: []string{"has_clearance", "document#owner"},
		},
		{
			name:      "caveat context wrong type",
			call:      writeOne(touchString(t, `document:readme#viewer@user:alice[has_clearance:{"required":"high"}]`)),
			wantCode:  codes.InvalidArgument,
			fragments: []string{"has_clearance", "required", "high"},
		},
		{
			name:      "caveat context unknown parameter",
			call:      writeOne(touchString(t, `document:readme#viewer@user:alice[has_clearance:{"clearance":1}]`)),
			wantCode:  codes.InvalidArgument,
			fragments: []string{"clearance"},
		},
		{
			name:      "expiration not allowed",
			call:      writeOne(touchString(t, "document:readme#owner@user:alice[expiration:2100-01-01T00:00:00Z]")),
			wantCode:  codes.InvalidArgument,
			fragments: []string{"expiration", "document#owner"},
		},
		{
			name:      "write to permission",
			call:      writeOne(touchString(t, "document:readme#view@user:alice")),
			wantCode:  codes.InvalidArgument,
			fragments: []string{`"view"`, "permission"},
		},

		// Writes that are malformed as a whole.
		{
			name:      "empty update list",
			call:      writeOne(),
			wantCode:  codes.InvalidArgument,
			fragments: []string{"no updates"},
		},
		{
			name:      "too many updates",
			call:      writeOne(manyUpdates...),
			wantCode:  codes.InvalidArgument,
			fragments: []string{"1001", "1000"},
		},
		{
			name: "duplicate update",
			call: writeOne(
				touchString(t, "document:readme#viewer@user:bob"),
				update(opDelete, rel(t, "document:readme#viewer@user:bob")),
			),
			wantCode:  codes.InvalidArgument,
			fragments: []string{"document:readme#viewer@user:bob"},
		},
		{
			name: "valid update before invalid",
			call: writeOne(
				touchString(t, "document:readme#viewer@user:bob"),
				touchString(t, "document:readme#parent@user:alice"),
			),
			wantCode:  codes.InvalidArgument,
			fragments: []string{"document:readme#parent@user:alice"},
		},
		{
			name: "precondition on unknown definition",
			call: func(ctx context.Context, t *testing.T, c *authzed.Client) error {
				_, err := c.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{
					Updates:               []*v1.RelationshipUpdate{touchString(t, "document:readme#viewer@user:bob")},
					OptionalPreconditions: []*v1.Precondition{mustMatch(&v1.RelationshipFilter{ResourceType: "documnt"})},
				})
				return err
			},
			wantCode:  codes.FailedPrecondition,
			fragments: []string{`"documnt"`},
		},

		// Checks.
		{
			name:      "check unknown definition",
			call:      checkOne(objectRef("documnt", "readme"), "view", subjectRef(t, "user:alice")),
			wantCode:  codes.FailedPrecondition,
			fragments: []string{`"documnt"`},
		},
		{
			name:      "check unknown permission",
			call:      checkOne(objectRef("document", "readme"), "read", subjectRef(t, "user:alice")),
			wantCode:  codes.FailedPrecondition,
			fragments: []string{`"read"`, `"document"`},
		},
		{
			name:      "check unknown subject definition",
			call:      checkOne(objectRef("document", "readme"), "view", subjectRef(t, "robot:r2")),
			wantCode:  codes.FailedPrecondition,
			fragments: []string{`"robot"`},
		},
		{
			name:      "check unknown subject relation",
			call:      checkOne(objectRef("document", "readme"), "view", subjectRef(t, "group:eng#admin")),
			wantCode:  codes.FailedPrecondition,
			fragments: []string{`"admin"`},
		},
		{
			name:      "check malformed object id",
			call:      checkOne(objectRef("document", "bad id!"), "view", subjectRef(t, "user:alice")),
			wantCode:  codes.InvalidArgument,
			fragments: []string{"bad id!"},
		},
		{
			name:      "check wildcard resource",
			call:      checkOne(objectRef("document", "*"), "view", subjectRef(t, "user:alice")),
			wantCode:  codes.InvalidArgument,
			fragments: []string{"*"},
		},
		{
			name: "too many bulk checks",
			call: func(ctx context.Context, t *testing.T, c *authzed.Client) error {
				_, err := c.CheckBulkPermissions(ctx, &v1.CheckBulkPermissionsRequest{Items: manyChecks})
				return err
			},
			wantCode:  codes.InvalidArgument,
			fragments: []string{"1001", "1000"},
		},

		// Reads and deletes.
		{
			name:      "read unknown definition",
			call:      readOne(&v1.ReadRelationshipsRequest{RelationshipFilter: &v1.RelationshipFilter{ResourceType: "documnt"}}),
			wantCode:  codes.FailedPrecondition,
			fragments: []string{`"documnt"`},
		},
		{
			name:      "read empty filter",
			call:      readOne(&v1.ReadRelationshipsRequest{RelationshipFilter: &v1.RelationshipFilter{}}),
			wantCode:  codes.InvalidArgument,
			fragments: []string{"filter"},
		},
		{
			name: "read id and prefix",
			call: readOne(&v1.ReadRelationshipsRequest{RelationshipFilter: &v1.RelationshipFilter{
				ResourceType: "document", OptionalResourceId: "readme", OptionalResourceIdPrefix: "read",
			}}),
			wantCode:  codes.InvalidArgument,
			fragments: []string{"optional_resource_id_prefix"},
		},
		{
			name: "read limit too high",
			call: readOne(&v1.ReadRelationshipsRequest{
				RelationshipFilter: &v1.RelationshipFilter{ResourceType: "document"}, OptionalLimit: 1001,
			}),
			wantCode:  codes.InvalidArgument,
			fragments: []string{"1001", "1000"},
		},
		{
			name: "delete unknown relation",
			call: deleteOne(&v1.DeleteRelationshipsRequest{RelationshipFilter: &v1.RelationshipFilter{
				ResourceType: "document", OptionalRelation: "reader",
			}}),
			wantCode:  codes.FailedPrecondition,
			fragments: []string{`"reader"`},
		},
		{
			name: "delete unknown subject definition",
			call: deleteOne(&v1.DeleteRelationshipsRequest{RelationshipFilter: &v1.RelationshipFilter{
				ResourceType: "document", OptionalSubjectFilter: &v1.SubjectFilter{SubjectType: "robot"},
			}}),
			wantCode:  codes.FailedPrecondition,
			fragments: []string{`"robot"`},
		},
		{
			name:      "delete missing filter",
			call:      deleteOne(&v1.DeleteRelationshipsRequest{}),
			wantCode:  codes.InvalidArgument,
			fragments: []string{"relationship_filter"},
		},
		{
			name: "delete limit too high",
			call: deleteOne(&v1.DeleteRelationshipsRequest{
				RelationshipFilter: &v1.RelationshipFilter{ResourceType: "document"}, OptionalLimit: 1001,
			}),
			wantCode:  codes.InvalidArgument,
			fragments: []string{"1001", "1000"},
		},
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	ts := checkFixtureServer(t)
	for _, tc := range badInputCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.readState(t, testResourceTypes...)
			err := tc.call(testContext(t), t, ts.client)
			requireStatus(t, err, tc.wantCode, tc.fragments...)
			requireUnchanged(t, before, ts.readState(t, testResourceTypes...))
		})
	}
}

// Before any schema is written, relationship calls fail with a message
// that says to write one.
func TestBadInputNoSchema(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	tests := []badInputCase{
		{name: "write", call: writeOne(touchString(t, "document:readme#viewer@user:alice"))},
		{name: "check", call: checkOne(objectRef("document", "readme"), "view", subjectRef(t, "user:alice"))},
		{name: "read", call: readOne(&v1.ReadRelationshipsRequest{RelationshipFilter: &v1.RelationshipFilter{ResourceType: "document"}})},
		{name: "delete", call: deleteOne(&v1.DeleteRelationshipsRequest{RelationshipFilter: &v1.RelationshipFilter{ResourceType: "document"}})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(testContext(t), t, ts.client)
			requireStatus(t, err, codes.FailedPrecondition, "WriteSchema")
		})
	}
	_, err := ts.client.ReadSchema(testContext(t), &v1.ReadSchemaRequest{})
	requireStatus(t, err, codes.NotFound)
}

// A request larger than the server's 4 MiB message limit is rejected by
// gRPC with ResourceExhausted before it reaches a handler.
func TestBadInputOversizeMessage(t *testing.T) {
	t.Parallel()
	ts := checkFixtureServer(t)
	before := ts.readState(t, testResourceTypes...)
	r := rel(t, "document:readme#viewer@user:alice")
	r.OptionalCaveat = &v1.ContextualizedCaveat{
		CaveatName: "has_clearance",
		Context:    structOf(t, map[string]any{"required": strings.Repeat("x", 5<<20)}),
	}
	_, err := ts.client.WriteRelationships(testContext(t), &v1.WriteRelationshipsRequest{
		Updates: []*v1.RelationshipUpdate{update(opTouch, r)},
	})
	requireStatus(t, err, codes.ResourceExhausted, "larger than max")
	requireUnchanged(t, before, ts.readState(t, testResourceTypes...))
}
