package bench

import (
	"fmt"
	"testing"
	"time"

	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/graph"
)

// caveatSchema puts a caveat on every group that grants a document.
const caveatSchema = `
definition user {}

caveat weekday_only(day string) {
	day != "saturday" && day != "sunday"
}

definition group {
	relation member: user
}

definition document {
	relation viewer: group#member with weekday_only
	permission view = viewer
}
`

const caveatedGroups = 100

// caveatedGroupRelationships makes 100 groups viewers of document:caveated,
// each through a relationship with the weekday_only caveat and no context
// of its own, and puts user:last in the last group only.
func caveatedGroupRelationships() []*graph.Relationship {
	rels := make([]*graph.Relationship, 0, caveatedGroups+1)
	for i := range caveatedGroups {
		rels = append(rels, &graph.Relationship{
			Key: graph.Key{
				ResourceType: "document", ResourceID: "caveated", Relation: "viewer",
				Subject: graph.SubjectRef{Type: "group", ID: fmt.Sprintf("g%03d", i), Relation: "member"},
			},
			Caveat: "weekday_only",
		})
	}
	return append(rels, &graph.Relationship{Key: graph.Key{
		ResourceType: "group", ResourceID: fmt.Sprintf("g%03d", caveatedGroups-1), Relation: "member",
		Subject: graph.SubjectRef{Type: "user", ID: "last"},
	}})
}

var caveatChecks = []struct {
	name    string
	subject string
	day     string
	want    engine.Membership
}{
	{"allowed", "user:last", "monday", engine.HasPermission},
	{"denied", "user:outsider", "monday", engine.NoPermission},
	{"caveatFalse", "user:last", "sunday", engine.NoPermission},
}

// BenchmarkCaveatCheck checks document:caveated#view, which follows 100
// group relationships that carry the same caveat and no context of their
// own.
func BenchmarkCaveatCheck(b *testing.B) {
	f := newMandateFixture(b, caveatSchema, caveatedGroupRelationships())
	for _, c := range caveatChecks {
		b.Run(c.name, func(b *testing.B) {
			req := checkRequest(b, "document:caveated", "view", c.subject)
			req.Context = map[string]any{"day": c.day}
			f.benchmarkCheck(b, req, c.want)
		})
	}
}

// TestCaveatCheckScenarios runs each benchmarked caveat check once.
func TestCaveatCheckScenarios(t *testing.T) {
	f := newMandateFixture(t, caveatSchema, caveatedGroupRelationships())
	for _, c := range caveatChecks {
		req := checkRequest(t, "document:caveated", "view", c.subject)
		req.Context = map[string]any{"day": c.day}
		got, err := engine.Check(f.schema, f.graph.HeadSnapshot(time.Now()), engine.Limits{}, req)
		if err != nil {
			t.Fatalf("check %s on %s: %v", describe(req), c.day, err)
		}
		if got.Membership != c.want {
			t.Errorf("check %s on %s = %v, want %v", describe(req), c.day, got.Membership, c.want)
		}
	}
	// Without the day, the result depends on the caveat.
	req := checkRequest(t, "document:caveated", "view", "user:last")
	got, err := engine.Check(f.schema, f.graph.HeadSnapshot(time.Now()), engine.Limits{}, req)
	if err != nil {
		t.Fatalf("check %s without context: %v", describe(req), err)
	}
	if got.Membership != engine.ConditionalPermission {
		t.Errorf("check %s without context = %v, want conditional_permission", describe(req), got.Membership)
	}
	if len(got.MissingContext) != 1 || got.MissingContext[0] != "day" {
		t.Errorf("check %s without context: missing context %v, want [day]", describe(req), got.MissingContext)
	}
}
