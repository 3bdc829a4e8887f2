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

// newFixture opens an embedded store in b.TempDir and writes benchSchema
// and rels in one transaction. Each element of rels is
// "type:id#relation@type:id" with an optional "#relation" on the subject.
func newFixture(b *testing.B, rels []string) *fixture {
	b.Helper()
	store, err := graph.OpenBolt(b.TempDir())
	if err != nil {
		b.Fatalf("open embedded store: %v", err)
	}
	g, err := graph.Open(store, graph.Options{})
	if err != nil {
		store.Close()
		b.Fatalf("open graph: %v", err)
	}
	b.Cleanup(func() {
		if err := g.Close(); err != nil {
			b.Errorf("close graph: %v", err)
		}
	})

	compiled, err := schema.Compile(context.Background(), benchSchema)
	if err != nil {
		b.Fatalf("compile benchmark schema: %v", err)
	}
	parsed := make([]*graph.Relationship, 0, len(rels))
	for _, text := range rels {
		parsed = append(parsed, parseRelationship(b, text))
	}
	_, err = g.Update(context.Background(), func(tx *graph.Tx) error {
		tx.SetSchema(benchSchema)
		for _, r := range parsed {
			tx.Touch(r)
		}
		return nil
	})
	if err != nil {
		b.Fatalf("write %d relationships: %v", len(rels), err)
	}
	return &fixture{graph: g, schema: compiled}
}

// benchmarkCheck runs engine.Check for one request per iteration, after
// checking once that it returns want.
func (f *fixture) benchmarkCheck(b *testing.B, req engine.CheckRequest, want engine.Membership) {
	b.Helper()
	snap := f.graph.HeadSnapshot(time.Now())
	got, err := engine.Check(f.schema, snap, engine.Limits{}, req)
	if err != nil {
		b.Fatalf("check %s: %v", describe(req), err)
	}
	if got.Membership != want {
		b.Fatalf("check %s = %v, want %v", describe(req), got.Membership, want)
	}

	b.ReportAllocs()
	for b.Loop() {
		if _, err := engine.Check(f.schema, snap, engine.Limits{}, req); err != nil {
			b.Fatalf("check %s: %v", describe(req), err)
		}
	}
}

// checkRequest builds a request from "type:id" strings.
func checkRequest(b *testing.B, resource, permission, subject string) engine.CheckRequest {
	b.Helper()
	s := parseSubject(b, subject)
	r := parseSubject(b, resource)
	return engine.CheckRequest{
		Resource:   r.Object(),
		Permission: permission,
		Subject:    s,
	}
}

func describe(req engine.CheckRequest) string {
	return req.Resource.Type + ":" + req.Resource.ID + "#" + req.Permission + "@" + req.Subject.String()
}

func parseRelationship(b *testing.B, text string) *graph.Relationship {
	b.Helper()
	resourcePart, subjectPart, ok := strings.Cut(text, "@")
	if !ok {
		b.Fatalf("invalid relationship %q: missing @subject", text)
	}
	resource := parseSubject(b, resourcePart)
	if resource.Relation == "" {
		b.Fatalf("invalid relationship %q: missing #relation after the resource", text)
	}
	return &graph.Relationship{Key: graph.Key{
		ResourceType: resource.Type,
		ResourceID:   resource.ID,
		Relation:     resource.Relation,
		Subject:      parseSubject(b, subjectPart),
	}}
}

// parseSubject parses "type:id" or "type:id#relation".
func parseSubject(b *testing.B, text string) graph.SubjectRef {
	b.Helper()
	object, relation, _ := strings.Cut(text, "#")
	objectType, id, ok := strings.Cut(object, ":")
	if !ok || objectType == "" || id == "" {
		b.Fatalf("invalid object %q: expected type:id", text)
	}
	return graph.SubjectRef{Type: objectType, ID: id, Relation: relation}
}
