package graph_test

import (
	"context"
	"testing"
	"time"

	"github.com/mandate-iam/mandate/graph"
)

func relationship(resourceID, relation string, subject graph.SubjectRef) *graph.Relationship {
	return &graph.Relationship{Key: graph.Key{
		ResourceType: "doc", ResourceID: resourceID, Relation: relation, Subject: subject,
	}}
}

// subjectsOf returns the subjects of the edges, in order.
func subjectsOf(edges []graph.Edge) []string {
	out := make([]string, 0, len(edges))
	for _, e := range edges {
		out = append(out, e.Relationship.Subject.String())
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestHandleReadsAcrossRevisions checks that the handle-based reads return
// what Find and Subjects return, at old and new revisions, and after
// garbage collection drops a deleted relationship.
func TestHandleReadsAcrossRevisions(t *testing.T) {
	now := time.Date(2025, time.March, 1, 12, 0, 0, 0, time.UTC)
	g, err := graph.Open(graph.NewMemoryStore(), graph.Options{
		RetentionWindow: time.Hour,
		Clock:           func() time.Time { return now },
	})
	if err != nil {
		t.Fatalf("open graph: %v", err)
	}
	defer g.Close()
	ctx := context.Background()

	alice := graph.SubjectRef{Type: "user", ID: "alice"}
	anyone := graph.SubjectRef{Type: "user", ID: graph.Wildcard}
	eng := graph.SubjectRef{Type: "group", ID: "eng", Relation: "member"}
	first, err := g.Update(ctx, func(tx *graph.Tx) error {
		tx.Touch(relationship("1", "viewer", alice))
		tx.Touch(relationship("1", "viewer", anyone))
		tx.Touch(relationship("1", "viewer", eng))
		return nil
	})
	if err != nil {
		t.Fatalf("write relationships: %v", err)
	}
	deleted, err := g.Update(ctx, func(tx *graph.Tx) error {
		tx.Delete(relationship("1", "viewer", alice).Key)
		return nil
	})
	if err != nil {
		t.Fatalf("delete relationship: %v", err)
	}

	old, err := g.Snapshot(first, now)
	if err != nil {
		t.Fatalf("snapshot at %d: %v", first, err)
	}
	doc := old.HandleOf(graph.ObjectRef{Type: "doc", ID: "1"})
	if doc == 0 {
		t.Fatal("doc:1 has no handle")
	}
	if h := old.HandleOf(graph.ObjectRef{Type: "doc", ID: "missing"}); h != 0 {
		t.Errorf("HandleOf(doc:missing) = %d, want 0", h)
	}
	aliceHandle, wildcard := old.SubjectHandles(alice)
	if aliceHandle == 0 || wildcard == 0 {
		t.Fatalf("SubjectHandles(user:alice) = %d, %d; want two handles", aliceHandle, wildcard)
	}

	if got, want := subjectsOf(old.AppendEdges(nil, doc, "viewer", false)), []string{"user:alice", "user:*", "group:eng#member"}; !equalStrings(got, want) {
		t.Errorf("AppendEdges at %d = %v, want %v", first, got, want)
	}
	if got, want := subjectsOf(old.AppendEdges(nil, doc, "viewer", true)), []string{"group:eng#member"}; !equalStrings(got, want) {
		t.Errorf("AppendEdges of subject sets at %d = %v, want %v", first, got, want)
	}
	if r := old.FindEdge(doc, "viewer", aliceHandle, graph.Ellipsis); r == nil || r.Subject != alice {
		t.Errorf("FindEdge(user:alice) at %d = %v, want the relationship", first, r)
	}
	exact, wildcardMatch, sets := old.DirectEdges(nil, doc, "viewer", aliceHandle, graph.Ellipsis, wildcard)
	if exact == nil || exact.Subject != alice {
		t.Errorf("DirectEdges exact match at %d = %v, want user:alice", first, exact)
	}
	if wildcardMatch == nil || wildcardMatch.Subject != anyone {
		t.Errorf("DirectEdges wildcard match at %d = %v, want user:*", first, wildcardMatch)
	}
	if got, want := subjectsOf(sets), []string{"group:eng#member"}; !equalStrings(got, want) {
		t.Errorf("DirectEdges subject sets at %d = %v, want %v", first, got, want)
	}

	head := g.HeadSnapshot(now)
	if r := head.FindEdge(doc, "viewer", aliceHandle, graph.Ellipsis); r != nil {
		t.Errorf("FindEdge(user:alice) at %d = %v, want nil after the delete", deleted, r)
	}
	if got, want := subjectsOf(head.AppendEdges(nil, doc, "viewer", false)), []string{"user:*", "group:eng#member"}; !equalStrings(got, want) {
		t.Errorf("AppendEdges at %d = %v, want %v", deleted, got, want)
	}

	// Past the retention window, garbage collection drops the deleted
	// version, and the handle reads agree with the string-keyed ones.
	now = now.Add(2 * time.Hour)
	if _, err := g.Update(ctx, func(tx *graph.Tx) error {
		tx.Touch(relationship("2", "viewer", alice))
		return nil
	}); err != nil {
		t.Fatalf("write after the window: %v", err)
	}
	if err := g.CollectGarbage(ctx); err != nil {
		t.Fatalf("collect garbage: %v", err)
	}
	if _, err := g.Snapshot(first, now); err == nil {
		t.Errorf("snapshot at %d after collection: got no error, want revision unavailable", first)
	}
	head = g.HeadSnapshot(now)
	if got, want := subjectsOf(head.AppendEdges(nil, doc, "viewer", false)), []string{"user:*", "group:eng#member"}; !equalStrings(got, want) {
		t.Errorf("AppendEdges after collection = %v, want %v", got, want)
	}
	if got := len(head.Subjects("doc", "1", "viewer")); got != 2 {
		t.Errorf("Subjects after collection returned %d relationships, want 2", got)
	}
	doc2 := head.HandleOf(graph.ObjectRef{Type: "doc", ID: "2"})
	if r := head.FindEdge(doc2, "viewer", aliceHandle, graph.Ellipsis); r == nil {
		t.Error("FindEdge(doc:2#viewer@user:alice) = nil, want the relationship")
	}
}

// TestHandleReadsOfEmptiedSet checks that a relation set emptied by
// garbage collection reads as empty, and that writing to it again works.
func TestHandleReadsOfEmptiedSet(t *testing.T) {
	now := time.Date(2025, time.March, 1, 12, 0, 0, 0, time.UTC)
	g, err := graph.Open(graph.NewMemoryStore(), graph.Options{
		RetentionWindow: time.Hour,
		Clock:           func() time.Time { return now },
	})
	if err != nil {
		t.Fatalf("open graph: %v", err)
	}
	defer g.Close()
	ctx := context.Background()
	bob := graph.SubjectRef{Type: "user", ID: "bob"}
	write := func(fn func(tx *graph.Tx)) {
		t.Helper()
		if _, err := g.Update(ctx, func(tx *graph.Tx) error { fn(tx); return nil }); err != nil {
			t.Fatalf("update: %v", err)
		}
	}
	write(func(tx *graph.Tx) { tx.Touch(relationship("1", "editor", bob)) })
	write(func(tx *graph.Tx) { tx.Delete(relationship("1", "editor", bob).Key) })
	now = now.Add(2 * time.Hour)
	write(func(tx *graph.Tx) { tx.Touch(relationship("3", "editor", bob)) })
	if err := g.CollectGarbage(ctx); err != nil {
		t.Fatalf("collect garbage: %v", err)
	}

	head := g.HeadSnapshot(now)
	doc := head.HandleOf(graph.ObjectRef{Type: "doc", ID: "1"})
	if got := head.AppendEdges(nil, doc, "editor", false); len(got) != 0 {
		t.Errorf("AppendEdges of the emptied set = %v, want none", subjectsOf(got))
	}

	write(func(tx *graph.Tx) { tx.Touch(relationship("1", "editor", bob)) })
	head = g.HeadSnapshot(now)
	bobHandle, _ := head.SubjectHandles(bob)
	if r := head.FindEdge(doc, "editor", bobHandle, graph.Ellipsis); r == nil {
		t.Error("FindEdge after writing the emptied set again = nil, want the relationship")
	}
	if got := len(head.Subjects("doc", "1", "editor")); got != 1 {
		t.Errorf("Subjects after writing the emptied set again returned %d relationships, want 1", got)
	}
}
