package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/authzed/spicedb/pkg/development"
	devinterface "github.com/authzed/spicedb/pkg/proto/developer/v1"
	"google.golang.org/grpc/status"

	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// knownDifferences lists the inputs on which Mandate deliberately returns
// another result than SpiceDB v1.56.2, with the reason. Each case runs on
// both, so a SpiceDB upgrade that changes its result fails the test.
var knownDifferences = []struct {
	name          string
	schema        string
	relationships []string
	check         checkCase
	// spicedb is SpiceDB's permissionship, or spicedbError a substring of
	// its error message.
	spicedb      v1.CheckPermissionResponse_Permissionship
	spicedbError string
	// spicedbMissing and mandateMissing are the missing context names of
	// a conditional result, in the order each returns them.
	spicedbMissing []string
	mandate        engine.Membership
	mandateMissing []string
	reason         string
}{
	{
		name: "caveated direct beside subject set",
		schema: `caveat flag(b bool) { b }
definition user {}
definition group {
  relation member: user
}
definition doc {
  relation owners: group with flag | group#member
}`,
		relationships: []string{`doc:d1#owners@group:g1[flag:{"b":true}]`},
		check: checkCase{
			resource:   graph.ObjectRef{Type: "doc", ID: "d1"},
			permission: "owners",
			subject:    graph.SubjectRef{Type: "group", ID: "g1"},
		},
		spicedb: v1.CheckPermissionResponse_PERMISSIONSHIP_NO_PERMISSION,
		mandate: engine.HasPermission,
		reason: "SpiceDB counts group#member, which has no caveat, when it decides whether relationships " +
			"with subject group:g1 can carry a caveat. It concludes they cannot, and memdb then leaves out " +
			"the caveated relationship. By reading internal/datastore/common (not run here), a SQL " +
			"datastore that skips the caveat column would instead read it as uncaveated",
	},
	{
		name: "expired direct beside subject set",
		schema: `use expiration
definition user {
  relation friend: user
}
definition doc {
  relation viewer: user with expiration | user#friend
}`,
		relationships: []string{`doc:d1#viewer@user:u1[expiration:2020-01-01T00:00:00Z]`},
		check: checkCase{
			resource:   graph.ObjectRef{Type: "doc", ID: "d1"},
			permission: "viewer",
			subject:    graph.SubjectRef{Type: "user", ID: "u1"},
		},
		spicedb: v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION,
		mandate: engine.NoPermission,
		reason: "the same count makes SpiceDB skip expiration for the read, and memdb then returns the " +
			"expired relationship until its garbage collector removes it",
	},
	{
		name: "failed caveat before false caveat in all",
		schema: `caveat over(n int) { n > 10 }
caveat flag(b bool) { b }
definition user {}
definition group {
  relation member: user with over
}
definition doc {
  relation owners: group with flag
  permission all_members = owners.all(member)
}`,
		relationships: []string{
			"group:g1#member@user:u1[over]",
			`doc:d1#owners@group:g1[flag:{"b":false}]`,
		},
		check: checkCase{
			resource:   graph.ObjectRef{Type: "doc", ID: "d1"},
			permission: "all_members",
			subject:    graph.SubjectRef{Type: "user", ID: "u1"},
			context:    map[string]any{"n": "many"},
		},
		spicedbError: "type error for parameters for caveat `over`",
		mandate:      engine.NoPermission,
		reason: "SpiceDB evaluates the member's caveat before the false caveat of the owners relationship " +
			"and fails on the string value; Mandate fails only when the result depends on a caveat " +
			"that could not be evaluated, and the false caveat decides this one",
	},
	{
		name: "repeated parameter in missing context",
		schema: `caveat weekday(day string) {
  day != "saturday" && day != "sunday"
}
definition user {}
definition doc {
  relation viewer: user with weekday
}`,
		relationships: []string{"doc:d1#viewer@user:u1[weekday]"},
		check: checkCase{
			resource:   graph.ObjectRef{Type: "doc", ID: "d1"},
			permission: "viewer",
			subject:    graph.SubjectRef{Type: "user", ID: "u1"},
		},
		spicedb:        v1.CheckPermissionResponse_PERMISSIONSHIP_CONDITIONAL_PERMISSION,
		spicedbMissing: []string{"day", "day"},
		mandate:        engine.ConditionalPermission,
		mandateMissing: []string{"day"},
		reason: "when a single caveat decides the result, SpiceDB reports CEL's list of unknown " +
			"attributes, which names a parameter once for each use; when several caveats combine, it " +
			"reports each name once. Mandate always lists each missing parameter once, sorted",
	},
	{
		name: "cycle without the subject",
		schema: `definition user {}
definition group {
  relation member: user | group#member
}`,
		relationships: []string{
			"group:g1#member@group:g2#member",
			"group:g2#member@group:g1#member",
		},
		check: checkCase{
			resource:   graph.ObjectRef{Type: "group", ID: "g1"},
			permission: "member",
			subject:    graph.SubjectRef{Type: "user", ID: "u1"},
		},
		spicedbError: "max depth exceeded",
		mandate:      engine.NoPermission,
		reason: "SpiceDB follows the cycle until its depth limit and fails; Mandate cuts a cycle in the " +
			"data, so a subject that no path reaches has no permission",
	},
}

func TestKnownDifferences(t *testing.T) {
	ctx := context.Background()
	for _, tc := range knownDifferences {
		t.Run(tc.name, func(t *testing.T) {
			t.Logf("SpiceDB and Mandate differ on purpose: %s", tc.reason)

			spicedb, devErrs, err := development.NewDevContext(ctx, &devinterface.RequestContext{
				Schema:        tc.schema,
				Relationships: coreTuples(t, tc.relationships),
			})
			if err != nil || devErrs != nil {
				t.Fatalf("create SpiceDB development context: %v %v", err, devErrs.GetInputErrors())
			}
			defer spicedb.Dispose()
			conn, stop, err := spicedb.RunV1InMemoryService()
			if err != nil {
				t.Fatalf("start SpiceDB in-memory v1 service: %v", err)
			}
			defer stop()

			caveatContext := tc.check.contextStruct(t)
			resp, err := v1.NewPermissionsServiceClient(conn).CheckPermission(ctx, &v1.CheckPermissionRequest{
				Consistency: &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}},
				Resource:    &v1.ObjectReference{ObjectType: tc.check.resource.Type, ObjectId: tc.check.resource.ID},
				Permission:  tc.check.permission,
				Subject: &v1.SubjectReference{
					Object:           &v1.ObjectReference{ObjectType: tc.check.subject.Type, ObjectId: tc.check.subject.ID},
					OptionalRelation: tc.check.subject.Relation,
				},
				Context: caveatContext,
			})
			switch {
			case tc.spicedbError != "" && err == nil:
				t.Errorf("SpiceDB returns %v, expected an error containing %q", resp.GetPermissionship(), tc.spicedbError)
			case tc.spicedbError != "" && !strings.Contains(status.Convert(err).Message(), tc.spicedbError):
				t.Errorf("SpiceDB fails with %v, expected an error containing %q", err, tc.spicedbError)
			case tc.spicedbError == "" && err != nil:
				t.Errorf("SpiceDB fails with %v, expected %v", err, tc.spicedb)
			case tc.spicedbError == "" && resp.GetPermissionship() != tc.spicedb:
				t.Errorf("SpiceDB returns %v, expected %v", resp.GetPermissionship(), tc.spicedb)
			}
			if missing := resp.GetPartialCaveatInfo().GetMissingRequiredContext(); !slices.Equal(missing, tc.spicedbMissing) {
				t.Errorf("SpiceDB reports missing context %q, expected %q", missing, tc.spicedbMissing)
			}

			compiled, err := schema.Compile(ctx, tc.schema)
			if err != nil {
				t.Fatalf("compile schema: %v", err)
			}
			got, err := engine.Check(compiled, mandateSnapshot(t, scenario{schema: tc.schema, relationships: tc.relationships}),
				engine.Limits{}, engine.CheckRequest{
					Resource:   tc.check.resource,
					Permission: tc.check.permission,
					Subject:    tc.check.subject,
					Context:    caveatContext.AsMap(),
				})
			if err != nil {
				t.Fatalf("engine.Check: %v", err)
			}
			if got.Membership != tc.mandate {
				t.Errorf("engine.Check = %v, expected %v", got.Membership, tc.mandate)
			}
			if !slices.Equal(got.MissingContext, tc.mandateMissing) {
				t.Errorf("engine.Check reports missing context %q, expected %q", got.MissingContext, tc.mandateMissing)
			}
		})
	}
}

// TestDepthLimitMatchesSpiceDB checks chains of nested groups around
// SpiceDB's default depth limit of 50 on both engines. A chain of n
// subject sets puts the user n levels below the first group, and both
// fail from 50 levels on.
func TestDepthLimitMatchesSpiceDB(t *testing.T) {
	ctx := context.Background()
	const schemaText = `definition user {}
definition group {
  relation member: user | group#member
}`
	compiled, err := schema.Compile(ctx, schemaText)
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	for _, levels := range []int{48, 49, 50, 51} {
		t.Run(fmt.Sprintf("%d levels", levels), func(t *testing.T) {
			var rels []string
			for i := range levels {
				rels = append(rels, fmt.Sprintf("group:g%d#member@group:g%d#member", i, i+1))
			}
			rels = append(rels, fmt.Sprintf("group:g%d#member@user:alice", levels))

			spicedb, devErrs, err := development.NewDevContext(ctx, &devinterface.RequestContext{
				Schema:        schemaText,
				Relationships: coreTuples(t, rels),
			})
			if err != nil || devErrs != nil {
				t.Fatalf("create SpiceDB development context: %v %v", err, devErrs.GetInputErrors())
			}
			defer spicedb.Dispose()
			conn, stop, err := spicedb.RunV1InMemoryService()
			if err != nil {
				t.Fatalf("start SpiceDB in-memory v1 service: %v", err)
			}
			defer stop()
			resp, spicedbErr := v1.NewPermissionsServiceClient(conn).CheckPermission(ctx, &v1.CheckPermissionRequest{
				Consistency: &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}},
				Resource:    &v1.ObjectReference{ObjectType: "group", ObjectId: "g0"},
				Permission:  "member",
				Subject:     &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: "alice"}},
			})

			got, mandateErr := engine.Check(compiled, mandateSnapshot(t, scenario{schema: schemaText, relationships: rels}),
				engine.Limits{}, engine.CheckRequest{
					Resource:   graph.ObjectRef{Type: "group", ID: "g0"},
					Permission: "member",
					Subject:    graph.SubjectRef{Type: "user", ID: "alice"},
				})

			spicedbFails := spicedbErr != nil && strings.Contains(status.Convert(spicedbErr).Message(), "max depth exceeded")
			mandateFails := errors.Is(mandateErr, engine.ErrMaxDepth)
			if spicedbFails != mandateFails {
				t.Errorf("SpiceDB returns %v, %v; Mandate returns %v, %v", resp.GetPermissionship(), spicedbErr, got.Membership, mandateErr)
			}
			if !spicedbFails && resp.GetPermissionship() != v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION {
				t.Errorf("SpiceDB returns %v, %v, expected has permission or its max depth error", resp.GetPermissionship(), spicedbErr)
			}
			if !mandateFails && got.Membership != engine.HasPermission {
				t.Errorf("Mandate returns %v, %v, expected has permission or engine.ErrMaxDepth", got.Membership, mandateErr)
			}
			if expectFailure := levels >= 50; mandateFails != expectFailure {
				t.Errorf("Mandate fails with the max depth error: %v, expected %v", mandateFails, expectFailure)
			}
		})
	}
}
