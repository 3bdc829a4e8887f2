package conformance

import (
	"context"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/authzed/spicedb/pkg/development"
	devinterface "github.com/authzed/spicedb/pkg/proto/developer/v1"

	"github.com/mandate-iam/mandate/graph"
)

// lookupCase is one lookup run on SpiceDB and on Mandate, with the result
// each returns, and a check that decides which result is right.
type lookupCase struct {
	name          string
	schema        string
	relationships []string
	// resources, when set, runs LookupResources of resourceType#permission
	// for subject; otherwise LookupSubjects runs on resource#permission
	// for subjects of subjectType.
	resources    bool
	resourceType string
	resource     graph.ObjectRef
	permission   string
	subject      graph.SubjectRef
	subjectType  subjectType
	context      map[string]any
	// spicedb and mandate are the results in the form of resourcesFound
	// or subjectsFound.
	spicedb string
	mandate string
	// check is a check on which SpiceDB and Mandate both return
	// checkResult, and that the lookup results imply for Mandate.
	check       checkCase
	checkResult v1.CheckPermissionResponse_Permissionship
	reason      string
}

// lookupDifferences lists inputs on which SpiceDB v1.56.2's lookups
// contradict its own check, so Mandate, whose lookups follow its check,
// returns another result. Each case runs on both, so a SpiceDB upgrade
// that changes its result fails the test.
var lookupDifferences = []lookupCase{
	{
		name: "wildcard and subject with relation in LookupResources",
		schema: `definition user {}
definition group {
  relation member: user
}
definition doc {
  relation viewer: group:*
}`,
		relationships: []string{"doc:d1#viewer@group:*"},
		resources:     true,
		resourceType:  "doc",
		permission:    "viewer",
		subject:       graph.SubjectRef{Type: "group", ID: "eng", Relation: "member"},
		spicedb:       "[]",
		mandate:       "[d1 PERMISSIONSHIP_HAS_PERMISSION]",
		check: checkCase{
			resource:   graph.ObjectRef{Type: "doc", ID: "d1"},
			permission: "viewer",
			subject:    graph.SubjectRef{Type: "group", ID: "eng", Relation: "member"},
		},
		checkResult: hasPermission,
		reason: "SpiceDB's check reads a wildcard relationship by the subject's type only, so group:* " +
			"grants group:eng#member; its LookupResources follows a wildcard only for a subject without a relation",
	},
	{
		name: "wildcard and subject with relation in LookupSubjects",
		schema: `definition user {}
definition group {
  relation member: user
}
definition doc {
  relation viewer: group:*
}`,
		relationships: []string{"doc:d1#viewer@group:*"},
		resource:      graph.ObjectRef{Type: "doc", ID: "d1"},
		permission:    "viewer",
		subjectType:   subjectType{"group", "member"},
		spicedb:       "[]",
		mandate:       "[* PERMISSIONSHIP_HAS_PERMISSION excluding []]",
		check: checkCase{
			resource:   graph.ObjectRef{Type: "doc", ID: "d1"},
			permission: "viewer",
			subject:    graph.SubjectRef{Type: "group", ID: "eng", Relation: "member"},
		},
		checkResult: hasPermission,
		reason: "as for LookupResources: SpiceDB's LookupSubjects matches a wildcard only for subjects " +
			"without a relation, and Mandate returns the wildcard that its check and SpiceDB's match",
	},
	{
		name: "self object as subject of another type",
		schema: `use self
definition user {}
definition group {
  relation member: user
  permission access = member + self
}`,
		relationships: []string{"group:g1#member@user:u1"},
		resource:      graph.ObjectRef{Type: "group", ID: "g1"},
		permission:    "access",
		subjectType:   subjectType{"user", ""},
		spicedb:       "[g1 PERMISSIONSHIP_HAS_PERMISSION; u1 PERMISSIONSHIP_HAS_PERMISSION]",
		mandate:       "[u1 PERMISSIONSHIP_HAS_PERMISSION]",
		check: checkCase{
			resource:   graph.ObjectRef{Type: "group", ID: "g1"},
			permission: "access",
			subject:    graph.SubjectRef{Type: "user", ID: "g1"},
		},
		checkResult: noPermission,
		reason: "SpiceDB's LookupSubjects returns the object of `self` as a subject whatever type the " +
			"request asks for, so it lists user:g1, which its check denies",
	},
	{
		name: "caveated relation on both sides of an exclusion in LookupResources",
		schema: `caveat less(x int, y int) { x < y }
definition user {}
definition group {
  relation member: user
}
definition doc {
  relation editor: group#member with less
  permission edit_twice = editor - editor
}`,
		relationships: []string{"doc:d1#editor@group:g1#member[less]"},
		resources:     true,
		resourceType:  "doc",
		permission:    "edit_twice",
		subject:       graph.SubjectRef{Type: "group", ID: "g1", Relation: "member"},
		spicedb:       "[]",
		mandate:       "[d1 PERMISSIONSHIP_CONDITIONAL_PERMISSION missing [x y]]",
		check: checkCase{
			resource:   graph.ObjectRef{Type: "doc", ID: "d1"},
			permission: "edit_twice",
			subject:    graph.SubjectRef{Type: "group", ID: "g1", Relation: "member"},
		},
		checkResult: conditionalOn,
		reason: "SpiceDB's LookupResources reaches doc:d1 through editor and checks it with a hint that " +
			"editor holds, then applies the relationship's caveat once. The hint also decides the excluded " +
			"editor, so the exclusion is empty, where check evaluates less and not less, and with x and y " +
			"missing returns conditional",
	},
	{
		name: "missing context of nested caveats in LookupResources",
		schema: `caveat less(x int, y int) { x < y }
caveat over(n int) { n > 10 }
definition user {}
definition group {
  relation member: user | user with over
}
definition folder {
  relation viewer: group#member with less
}`,
		relationships: []string{
			"folder:f1#viewer@group:g1#member[less]",
			`folder:f1#viewer@group:g2#member[less:{"y":5}]`,
			"group:g1#member@user:u1[over]",
			"group:g2#member@user:u1",
		},
		resources:    true,
		resourceType: "folder",
		permission:   "viewer",
		subject:      graph.SubjectRef{Type: "user", ID: "u1"},
		spicedb:      "[f1 PERMISSIONSHIP_CONDITIONAL_PERMISSION missing [x y]]",
		mandate:      "[f1 PERMISSIONSHIP_CONDITIONAL_PERMISSION missing [n x y]]",
		check: checkCase{
			resource:   graph.ObjectRef{Type: "folder", ID: "f1"},
			permission: "viewer",
			subject:    graph.SubjectRef{Type: "user", ID: "u1"},
		},
		checkResult: conditionalOn,
		reason: "the path through group:g1 needs x, y and n, and the path through group:g2 needs x. " +
			"SpiceDB's check reports n, x and y as missing, its LookupResources only x and y",
	},
	{
		name: "caveated direct relation on both sides of an exclusion in LookupResources",
		schema: `caveat less(x int, y int) { x < y }
definition user {}
definition doc {
  relation editor: user with less
  permission edit = editor - editor
}`,
		relationships: []string{"doc:d1#editor@user:u1[less]"},
		resources:     true,
		resourceType:  "doc",
		permission:    "edit",
		subject:       graph.SubjectRef{Type: "user", ID: "u1"},
		spicedb:       "[]",
		mandate:       "[d1 PERMISSIONSHIP_CONDITIONAL_PERMISSION missing [x y]]",
		check: checkCase{
			resource:   graph.ObjectRef{Type: "doc", ID: "d1"},
			permission: "edit",
			subject:    graph.SubjectRef{Type: "user", ID: "u1"},
		},
		checkResult: conditionalOn,
		reason:      "the same check hint as through a subject set, on a relation with users",
	},
	{
		name: "caveated subject also covered by the wildcard",
		schema: `caveat flag(b bool) { b }
definition user {}
definition doc {
  relation viewer: user:* | user with flag
}`,
		relationships: []string{"doc:d1#viewer@user:*", "doc:d1#viewer@user:u1[flag]"},
		resource:      graph.ObjectRef{Type: "doc", ID: "d1"},
		permission:    "viewer",
		subjectType:   subjectType{"user", ""},
		spicedb:       "[* PERMISSIONSHIP_HAS_PERMISSION excluding []; u1 PERMISSIONSHIP_CONDITIONAL_PERMISSION missing [b]]",
		mandate:       "[* PERMISSIONSHIP_HAS_PERMISSION excluding []; u1 PERMISSIONSHIP_HAS_PERMISSION]",
		check: checkCase{
			resource:   graph.ObjectRef{Type: "doc", ID: "d1"},
			permission: "viewer",
			subject:    graph.SubjectRef{Type: "user", ID: "u1"},
		},
		checkResult: hasPermission,
		reason: "SpiceDB lists user:u1 with the result of its own relationship, conditional on flag, " +
			"though the wildcard beside it grants the permission and its check returns has permission. " +
			"Mandate lists user:u1 with its check's result",
	},
}

func TestLookupDifferences(t *testing.T) {
	for _, tc := range lookupDifferences {
		t.Run(tc.name, func(t *testing.T) {
			t.Logf("SpiceDB and Mandate differ on purpose: %s", tc.reason)
			runLookupCase(t, tc)
		})
	}
}

// runLookupCase runs tc's lookup and check on SpiceDB and on Mandate.
func runLookupCase(t *testing.T, tc lookupCase) {
	t.Helper()
	ctx := context.Background()
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
	clients := []struct {
		name     string
		client   v1.PermissionsServiceClient
		expected string
	}{
		{"SpiceDB", v1.NewPermissionsServiceClient(conn), tc.spicedb},
		{"Mandate", startScenarioServer(t, scenario{schema: tc.schema, relationships: tc.relationships}), tc.mandate},
	}

	caveatContext, err := contextProto(tc.context)
	if err != nil {
		t.Fatalf("convert context: %v", err)
	}
	for _, c := range clients {
		reader := &pagedReader{client: c.client}
		var got string
		if tc.resources {
			found, _, err := reader.resources(ctx, &v1.LookupResourcesRequest{
				Consistency:        fullyConsistent,
				ResourceObjectType: tc.resourceType,
				Permission:         tc.permission,
				Subject: &v1.SubjectReference{
					Object:           &v1.ObjectReference{ObjectType: tc.subject.Type, ObjectId: tc.subject.ID},
					OptionalRelation: tc.subject.Relation,
				},
				Context: caveatContext,
			})
			if err != nil {
				t.Fatalf("%s LookupResources: %v", c.name, err)
			}
			got = found.String()
		} else {
			found, _, err := reader.subjects(ctx, &v1.LookupSubjectsRequest{
				Consistency:             fullyConsistent,
				Resource:                &v1.ObjectReference{ObjectType: tc.resource.Type, ObjectId: tc.resource.ID},
				Permission:              tc.permission,
				SubjectObjectType:       tc.subjectType.typ,
				OptionalSubjectRelation: tc.subjectType.relation,
				Context:                 caveatContext,
			})
			if err != nil {
				t.Fatalf("%s LookupSubjects: %v", c.name, err)
			}
			got = found.String()
		}
		if got != c.expected {
			t.Errorf("%s's lookup returns %s, expected %s", c.name, got, c.expected)
		}

		checkContext, err := contextProto(tc.check.context)
		if err != nil {
			t.Fatalf("convert context: %v", err)
		}
		resp, err := c.client.CheckPermission(ctx, &v1.CheckPermissionRequest{
			Consistency: fullyConsistent,
			Resource:    &v1.ObjectReference{ObjectType: tc.check.resource.Type, ObjectId: tc.check.resource.ID},
			Permission:  tc.check.permission,
			Subject: &v1.SubjectReference{
				Object:           &v1.ObjectReference{ObjectType: tc.check.subject.Type, ObjectId: tc.check.subject.ID},
				OptionalRelation: tc.check.subject.Relation,
			},
			Context: checkContext,
		})
		if err != nil {
			t.Fatalf("%s CheckPermission %s: %v", c.name, tc.check, err)
		}
		if resp.GetPermissionship() != tc.checkResult {
			t.Errorf("%s's CheckPermission %s = %v, expected %v", c.name, tc.check, resp.GetPermissionship(), tc.checkResult)
		}
	}
}

// lookupRegressions lists lookups on which Mandate once returned another
// result than SpiceDB v1.56.2; both must now return expected.
var lookupRegressions = []struct {
	lookupCase
	expected string
}{
	{
		lookupCase: lookupCase{
			name: "subject also covered by the wildcard",
			schema: `definition user {}
definition doc {
  relation viewer: user | user:*
  relation editor: user
}`,
			relationships: []string{"doc:d1#viewer@user:*", "doc:d1#viewer@user:somegal", "doc:d1#editor@user:editordude"},
			resource:      graph.ObjectRef{Type: "doc", ID: "d1"},
			permission:    "viewer",
			subjectType:   subjectType{"user", ""},
			check: checkCase{
				resource:   graph.ObjectRef{Type: "doc", ID: "d1"},
				permission: "viewer",
				subject:    graph.SubjectRef{Type: "user", ID: "editordude"},
			},
			checkResult: hasPermission,
		},
		expected: "[* PERMISSIONSHIP_HAS_PERMISSION excluding []; somegal PERMISSIONSHIP_HAS_PERMISSION]",
	},
	{
		lookupCase: lookupCase{
			name: "wildcard minus wildcard with exclusion",
			schema: `definition user {}
definition doc {
  relation viewer: user:*
  relation blocked: user:*
  relation allowed: user
  permission banned = blocked - allowed
  permission view = viewer - banned
}`,
			relationships: []string{"doc:d1#viewer@user:*", "doc:d1#blocked@user:*", "doc:d1#allowed@user:alice"},
			resource:      graph.ObjectRef{Type: "doc", ID: "d1"},
			permission:    "view",
			subjectType:   subjectType{"user", ""},
			check: checkCase{
				resource:   graph.ObjectRef{Type: "doc", ID: "d1"},
				permission: "view",
				subject:    graph.SubjectRef{Type: "user", ID: "alice"},
			},
			checkResult: hasPermission,
		},
		expected: "[alice PERMISSIONSHIP_HAS_PERMISSION]",
	},
	{
		lookupCase: lookupCase{
			name: "wildcard intersected with a subject",
			schema: `definition user {}
definition doc {
  relation viewer: user:*
  relation editor: user
  relation banned: user
  permission view = (viewer & editor) + (viewer - banned)
}`,
			relationships: []string{"doc:d1#viewer@user:*", "doc:d1#editor@user:tom", "doc:d1#banned@user:tom", "doc:d1#banned@user:amy"},
			resource:      graph.ObjectRef{Type: "doc", ID: "d1"},
			permission:    "view",
			subjectType:   subjectType{"user", ""},
			check: checkCase{
				resource:   graph.ObjectRef{Type: "doc", ID: "d1"},
				permission: "view",
				subject:    graph.SubjectRef{Type: "user", ID: "tom"},
			},
			checkResult: hasPermission,
		},
		expected: "[* PERMISSIONSHIP_HAS_PERMISSION excluding [amy PERMISSIONSHIP_HAS_PERMISSION]; tom PERMISSIONSHIP_HAS_PERMISSION]",
	},
}

func TestLookupRegressions(t *testing.T) {
	for _, tc := range lookupRegressions {
		t.Run(tc.name, func(t *testing.T) {
			tc.spicedb, tc.mandate = tc.expected, tc.expected
			runLookupCase(t, tc.lookupCase)
		})
	}
}
