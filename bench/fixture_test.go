package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// benchSchema has one shape for every benchmarked case: direct relations,
// nested groups, a folder parent chain followed by an arrow, an
// intersection and an exclusion.
const benchSchema = `
definition user {}

definition group {
	relation member: user | group#member
}

definition folder {
	relation parent: folder
	relation viewer: user | group#member
	permission view = viewer + parent->view
}

definition document {
	relation folder: folder
	relation viewer: user | group#member
	relation editor: user
	relation banned: user
	permission view = viewer + folder->view
	permission edit = editor & viewer
	permission view_unbanned = viewer - banned
}
`

// fixture is a graph in an embedded store under a temporary directory,
// with benchSchema written and compiled.
type fixture struct {
	graph  *graph.Graph
	schema *schema.Schema
}

// newFixture opens an embedded store in tb.TempDir and writes benchSchema
// and rels in one transaction. Each element of rels is
// "type:id#relation@type:id" with an optional "#relation" on the subject.
func newFixture(tb testing.TB, rels []string) *fixture {
	tb.Helper()
	store, err := graph.OpenBolt(tb.TempDir())
	if err != nil {
		tb.Fatalf("open embedded store: %v", err)
	}
	g, err := graph.Open(store, graph.Options{})
	if err != nil {
		store.Close()
		tb.Fatalf("open graph: %v", err)
	}
	tb.Cleanup(func() {
		if err := g.Close(); err != nil {
			tb.Errorf("close graph: %v", err)
		}
	})

	compiled, err := schema.Compile(context.Background(), benchSchema)
	if err != nil {
		tb.Fatalf("compile benchmark schema: %v", err)
	}
	parsed := make([]*graph.Relationship, 0, len(rels))
	for _, text := range rels {
		parsed = append(parsed, parseRelationship(tb, text))
	}
	_, err = g.Update(context.Background(), func(tx *graph.Tx) error {
		tx.SetSchema(benchSchema)
		for _, r := range parsed {
			tx.Touch(r)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("write %d relationships: %v", len(rels), err)
	}
	return &fixture{graph: g, schema: compiled}
}

// check runs engine.Check at the head revision.
func (f *fixture) check(req engine.CheckRequest) (engine.Result, error) {
	return engine.Check(f.schema, f.graph.HeadSnapshot(time.Now()), engine.Limits{}, req)
}

// benchmarkCheck runs engine.Check for one request per iteration, after
// checking once that it returns want.
func (f *fixture) benchmarkCheck(b *testing.B, req engine.CheckRequest, want engine.Membership) {
	b.Helper()
	got, err := f.check(req)
	if err != nil {
		b.Fatalf("check %s: %v", describe(req), err)
	}
	if got.Membership != want {
		b.Fatalf("check %s = %v, want %v", describe(req), got.Membership, want)
	}

	snap := f.graph.HeadSnapshot(time.Now())
	b.ReportAllocs()
	cpuBefore := processCPUTime(b)
	for b.Loop() {
		if _, err := engine.Check(f.schema, snap, engine.Limits{}, req); err != nil {
			b.Fatalf("check %s: %v", describe(req), err)
		}
	}
	reportCPUTime(b, cpuBefore)
}

// reportCPUTime reports the process's CPU time since cpuBefore, divided by
// b.N, as cpu-ns/op.
func reportCPUTime(b *testing.B, cpuBefore time.Duration) {
	cpu := processCPUTime(b) - cpuBefore
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// checkRequest builds a request from "type:id" strings.
func checkRequest(tb testing.TB, resource, permission, subject string) engine.CheckRequest {
	tb.Helper()
	return engine.CheckRequest{
		Resource:   parseSubject(tb, resource).Object(),
		Permission: permission,
		Subject:    parseSubject(tb, subject),
	}
}

func describe(req engine.CheckRequest) string {
	return req.Resource.Type + ":" + req.Resource.ID + "#" + req.Permission + "@" + req.Subject.String()
}

func parseRelationship(tb testing.TB, text string) *graph.Relationship {
	tb.Helper()
	resourcePart, subjectPart, ok := strings.Cut(text, "@")
	if !ok {
		tb.Fatalf("invalid relationship %q: missing @subject", text)
	}
	resource := parseSubject(tb, resourcePart)
	if resource.Relation == "" {
		tb.Fatalf("invalid relationship %q: missing #relation after the resource", text)
	}
	return &graph.Relationship{Key: graph.Key{
		ResourceType: resource.Type,
		ResourceID:   resource.ID,
		Relation:     resource.Relation,
		Subject:      parseSubject(tb, subjectPart),
	}}
}

// parseSubject parses "type:id" or "type:id#relation".
func parseSubject(tb testing.TB, text string) graph.SubjectRef {
	tb.Helper()
	object, relation, _ := strings.Cut(text, "#")
	objectType, id, ok := strings.Cut(object, ":")
	if !ok || objectType == "" || id == "" {
		tb.Fatalf("invalid object %q: expected type:id", text)
	}
	return graph.SubjectRef{Type: objectType, ID: id, Relation: relation}
}
