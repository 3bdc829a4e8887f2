package engine

import (
	"context"
	"testing"
	"time"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

func TestExplainGrantingPath(t *testing.T) {
	ctx := context.Background()
	text := `
definition user {}
definition group {
	relation member: user | group#member
}
definition folder {
	relation parent: folder
	relation reader: group#member
	permission read = reader + parent->read
}
definition doc {
	relation folder: folder
	relation owner: user
	permission read = folder->read & owner
}`
	s, err := schema.Compile(ctx, text)
	if err != nil {
		t.Fatal(err)
	}
	g, err := graph.Open(graph.NewMemoryStore(), graph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rels := []graph.Key{
		{ResourceType: "doc", ResourceID: "d", Relation: "folder", Subject: graph.SubjectRef{Type: "folder", ID: "child"}},
		{ResourceType: "doc", ResourceID: "d", Relation: "owner", Subject: graph.SubjectRef{Type: "user", ID: "ann"}},
		{ResourceType: "folder", ResourceID: "child", Relation: "parent", Subject: graph.SubjectRef{Type: "folder", ID: "root"}},
		{ResourceType: "folder", ResourceID: "root", Relation: "reader", Subject: graph.SubjectRef{Type: "group", ID: "eng", Relation: "member"}},
		{ResourceType: "group", ResourceID: "eng", Relation: "member", Subject: graph.SubjectRef{Type: "user", ID: "ann"}},
	}
	if _, err := g.Update(ctx, func(tx *graph.Tx) error {
		for _, k := range rels {
			tx.Touch(&graph.Relationship{Key: k})
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	req := CheckRequest{
		Resource: graph.ObjectRef{Type: "doc", ID: "d"}, Permission: "read",
		Subject: graph.SubjectRef{Type: "user", ID: "ann"}, Explain: true,
	}
	res, err := CheckChain(s, g.HeadSnapshot(time.Now()), Limits{}, req)
	if err != nil {
		t.Fatal(err)
	}
	want := "doc:d#folder@folder:child -> folder:child#parent@folder:root -> " +
		"folder:root#reader@group:eng#member -> group:eng#member@user:ann & doc:d#owner@user:ann"
	if res.Membership != HasPermission || res.Why != want {
		t.Fatalf("got %v %q\nwant has_permission %q", res.Membership, res.Why, want)
	}
}
