package graph_test

import (
	"testing"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/graph/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.RunStoreTests(t, storetest.Backend{
		NewDataSet: func(t *testing.T) func(t *testing.T) graph.Store {
			store := graph.NewMemoryStore()
			return func(t *testing.T) graph.Store { return store }
		},
	})
}

func TestBoltStoreConformance(t *testing.T) {
	storetest.RunStoreTests(t, storetest.Backend{
		NewDataSet: func(t *testing.T) func(t *testing.T) graph.Store {
			dir := t.TempDir()
			return func(t *testing.T) graph.Store {
				store, err := graph.OpenBolt(dir)
				if err != nil {
					t.Fatalf("open embedded store: %v", err)
				}
				return store
			}
		},
		Durable: true,
	})
}
