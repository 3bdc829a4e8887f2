package graph_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/mandate-iam/mandate/graph"
)

// benchmarkUpdate measures one write transaction that touches one
// relationship, through Graph.Update on store.
func benchmarkUpdate(b *testing.B, store graph.Store) {
	g, err := graph.Open(store, graph.Options{})
	if err != nil {
		b.Fatalf("open graph: %v", err)
	}
	defer g.Close()
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		r := &graph.Relationship{Key: graph.Key{
			ResourceType: "doc", ResourceID: fmt.Sprint(i), Relation: "viewer",
			Subject: graph.SubjectRef{Type: "user", ID: "alice"},
		}}
		if _, err := g.Update(ctx, func(tx *graph.Tx) error { tx.Touch(r); return nil }); err != nil {
			b.Fatalf("update: %v", err)
		}
	}
}

func BenchmarkUpdateMemoryStore(b *testing.B) { benchmarkUpdate(b, graph.NewMemoryStore()) }

func BenchmarkUpdateBoltStore(b *testing.B) {
	store, err := graph.OpenBolt(b.TempDir())
	if err != nil {
		b.Fatalf("open embedded store: %v", err)
	}
	benchmarkUpdate(b, store)
}
