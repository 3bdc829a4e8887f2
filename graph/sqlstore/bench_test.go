package sqlstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/graph/sqlstore"
	"github.com/mandate-iam/mandate/graph/sqlstore/pgtest"
	"github.com/mandate-iam/mandate/graph/storetest"
)

// The benchmarks run against the PostgreSQL server that pgtest starts, with
// fsync off, so they measure Mandate's round trips and locking, not disk
// flushes.

func benchNodes(b *testing.B, n int) []*graph.Graph {
	b.Helper()
	uri := pgtest.Schema(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := sqlstore.Migrate(ctx, sqlstore.Config{Dialect: sqlstore.Postgres, URI: uri}); err != nil {
		b.Fatalf("migrate: %v", err)
	}
	nodes := make([]*graph.Graph, n)
	for i := range nodes {
		store, err := sqlstore.Open(ctx, sqlstore.Config{Dialect: sqlstore.Postgres, URI: uri})
		if err != nil {
			b.Fatalf("open store: %v", err)
		}
		g, _ := storetest.OpenGraph(b, store, graph.Options{})
		nodes[i] = g
	}
	return nodes
}

var benchKey atomic.Int64

func touchOne(b *testing.B, g *graph.Graph) graph.Revision {
	r := viewer(fmt.Sprint(benchKey.Add(1)), "alice")
	rev, err := g.Update(context.Background(), func(tx *graph.Tx) error { tx.Touch(r); return nil })
	if err != nil {
		b.Fatalf("update: %v", err)
	}
	return rev
}

// BenchmarkPostgresWrite is one writer on one node.
func BenchmarkPostgresWrite(b *testing.B) {
	g := benchNodes(b, 1)[0]
	b.ResetTimer()
	for range b.N {
		touchOne(b, g)
	}
}

// BenchmarkPostgresWriteTwoNodes is 4 writers on each of two nodes.
func BenchmarkPostgresWriteTwoNodes(b *testing.B) {
	nodes := benchNodes(b, 2)
	var next atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		g := nodes[next.Add(1)%2]
		for pb.Next() {
			touchOne(b, g)
		}
	})
}

// BenchmarkPostgresFollowerLag is the time from a write's acknowledgement
// on one node until the other node's follower has applied it, with no
// read on that node to trigger a catch-up.
func BenchmarkPostgresFollowerLag(b *testing.B) {
	nodes := benchNodes(b, 2)
	b.ResetTimer()
	for range b.N {
		rev := touchOne(b, nodes[0])
		for nodes[1].Head() < rev {
			time.Sleep(50 * time.Microsecond)
		}
	}
}
