package bench

import (
	"fmt"
	"testing"

	"github.com/mandate-iam/mandate/engine"
)

// checkScenario is one graph shape with the checks benchmarked on it.
type checkScenario struct {
	name          string
	relationships func() []string
	checks        []expectedCheck
}

// expectedCheck is one check request, written as "type:id" strings, and
// the result the engine must return for it.
type expectedCheck struct {
	name       string
	resource   string
	permission string
	subject    string
	want       engine.Membership
}

// checkScenarios lists the benchmarked cases. Each has an allowed and a
// denied check, because a denied check usually visits more of the graph.
var checkScenarios = []checkScenario{
	{
		// A relation with 10,000 direct subjects.
		name:          "WideRelation",
		relationships: wideRelationships,
		checks: []expectedCheck{
			{"allowed", "document:wide", "view", fmt.Sprintf("user:u%05d", wideSubjects-1), engine.HasPermission},
			{"denied", "document:wide", "view", "user:outsider", engine.NoPermission},
		},
	},
	{
		// Membership through five levels of nested groups. The denied
		// subject is in no group, so the check visits every group.
		name:          "NestedGroups",
		relationships: nestedGroupRelationships,
		checks: []expectedCheck{
			{"allowed", "document:nested", "view", "user:deep", engine.HasPermission},
			{"denied", "document:nested", "view", "user:outsider", engine.NoPermission},
		},
	},
	{
		// Access inherited through a parent chain of five folders.
		name:          "ArrowChain",
		relationships: folderChainRelationships,
		checks: []expectedCheck{
			{"allowed", "document:chained", "view", "user:top", engine.HasPermission},
			{"denied", "document:chained", "view", "user:outsider", engine.NoPermission},
		},
	},
	{
		// edit = editor & viewer
		name:          "Intersection",
		relationships: sharedDocumentRelationships,
		checks: []expectedCheck{
			{"allowed", "document:shared", "edit", "user:editor", engine.HasPermission},
			{"denied", "document:shared", "edit", "user:editor-only", engine.NoPermission},
		},
	},
	{
		// view_unbanned = viewer - banned
		name:          "Exclusion",
		relationships: sharedDocumentRelationships,
		checks: []expectedCheck{
			{"allowed", "document:shared", "view_unbanned", "user:v500", engine.HasPermission},
			{"denied", "document:shared", "view_unbanned", "user:banned", engine.NoPermission},
		},
	},
}

// BenchmarkCheck runs engine.Check on every check of checkScenarios.
func BenchmarkCheck(b *testing.B) {
	for _, scenario := range checkScenarios {
		b.Run(scenario.name, func(b *testing.B) {
			f := newFixture(b, scenario.relationships())
			for _, c := range scenario.checks {
				b.Run(c.name, func(b *testing.B) {
					f.benchmarkCheck(b, checkRequest(b, c.resource, c.permission, c.subject), c.want)
				})
			}
		})
	}
}

// TestCheckScenarios runs every benchmarked check once, so that the test
// suite notices when a scenario no longer returns its expected result.
func TestCheckScenarios(t *testing.T) {
	for _, scenario := range checkScenarios {
		t.Run(scenario.name, func(t *testing.T) {
			f := newFixture(t, scenario.relationships())
			for _, c := range scenario.checks {
				t.Run(c.name, func(t *testing.T) {
					req := checkRequest(t, c.resource, c.permission, c.subject)
					got, err := f.check(req)
					if err != nil {
						t.Fatalf("check %s: %v", describe(req), err)
					}
					if got.Membership != c.want {
						t.Errorf("check %s = %v, want %v", describe(req), got.Membership, c.want)
					}
				})
			}
		})
	}
}

const wideSubjects = 10_000

// wideRelationships gives document:wide 10,000 direct viewers.
func wideRelationships() []string {
	rels := make([]string, 0, wideSubjects)
	for i := range wideSubjects {
		rels = append(rels, fmt.Sprintf("document:wide#viewer@user:u%05d", i))
	}
	return rels
}

// nestedGroupRelationships builds groups level1 to level5, each a member
// of the one above, with 50 users and four sibling leaf groups of 50 users
// at every level. The document's viewers are level1's members, and
// user:deep is a direct member of level5 only.
func nestedGroupRelationships() []string {
	const levels, usersPerGroup, leavesPerLevel = 5, 50, 4
	rels := []string{"document:nested#viewer@group:level1#member"}
	addUsers := func(group string) {
		for u := range usersPerGroup {
			rels = append(rels, fmt.Sprintf("group:%s#member@user:%s-u%02d", group, group, u))
		}
	}
	for level := 1; level <= levels; level++ {
		group := fmt.Sprintf("level%d", level)
		addUsers(group)
		for leaf := range leavesPerLevel {
			leafGroup := fmt.Sprintf("%s-leaf%d", group, leaf)
			rels = append(rels, fmt.Sprintf("group:%s#member@group:%s#member", group, leafGroup))
			addUsers(leafGroup)
		}
		if level < levels {
			rels = append(rels, fmt.Sprintf("group:%s#member@group:level%d#member", group, level+1))
		}
	}
	return append(rels, fmt.Sprintf("group:level%d#member@user:deep", levels))
}

// folderChainRelationships builds a document in folder f1, whose parents
// are f2 to f5. Every folder has 20 viewers of its own, and user:top is a
// viewer of f5 only, so its access crosses five parent arrows.
func folderChainRelationships() []string {
	const depth, viewersPerFolder = 5, 20
	rels := []string{"document:chained#folder@folder:f1"}
	for level := 1; level <= depth; level++ {
		for v := range viewersPerFolder {
			rels = append(rels, fmt.Sprintf("folder:f%d#viewer@user:f%d-v%02d", level, level, v))
		}
		if level < depth {
			rels = append(rels, fmt.Sprintf("folder:f%d#parent@folder:f%d", level, level+1))
		}
	}
	return append(rels, fmt.Sprintf("folder:f%d#viewer@user:top", depth))
}

// sharedDocumentRelationships gives document:shared 1,000 viewers, one of
// whom is also an editor and one of whom is banned, and an editor who is
// not a viewer.
func sharedDocumentRelationships() []string {
	rels := []string{
		"document:shared#editor@user:editor",
		"document:shared#viewer@user:editor",
		"document:shared#editor@user:editor-only",
		"document:shared#viewer@user:banned",
		"document:shared#banned@user:banned",
	}
	for v := range 998 {
		rels = append(rels, fmt.Sprintf("document:shared#viewer@user:v%03d", v))
	}
	return rels
}
