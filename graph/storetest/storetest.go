// Package storetest is the conformance suite that every graph.Store must
// pass. It drives the store through graph.Open, Graph.Update and
// Graph.Snapshot, the way the server uses it, so it checks the store and
// the Graph's use of it together.
//
// A backend's test calls RunStoreTests with a Backend that opens its
// stores:
//
//	func TestStoreConformance(t *testing.T) {
//		storetest.RunStoreTests(t, storetest.Backend{
//			NewDataSet: func(t *testing.T) func(t *testing.T) graph.Store { ... },
//			Durable:    true,
//		})
//	}
package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/mandate-iam/mandate/graph"
)

// Backend opens the stores of one backend for the suite.
type Backend struct {
	// NewDataSet creates one new, empty data set, such as a directory or a
	// database, and returns a function that opens a store over it. Each
	// call of that function opens another handle on the same data. The
	// suite closes every handle it opens, through Graph.Close.
	NewDataSet func(t *testing.T) func(t *testing.T) graph.Store
	// Durable is true when a store reopened over a data set holds every
	// commit of the handles before it. It enables the reopen tests.
	Durable bool
	// Shared is true when several handles may be open on one data set at
	// the same time and write concurrently, as graph.SharedStore allows.
	// It enables the tests that run several Graphs, one per simulated
	// server, on one data set.
	Shared bool
}

// RunStoreTests runs the conformance suite on b, one subtest per property.
func RunStoreTests(t *testing.T, b Backend) {
	t.Run("WriteAndRead", func(t *testing.T) { testWriteAndRead(t, b) })
	t.Run("CreateExisting", func(t *testing.T) { testCreateExisting(t, b) })
	t.Run("Preconditions", func(t *testing.T) { testPreconditions(t, b) })
	t.Run("NoChangeNoRevision", func(t *testing.T) { testNoChangeNoRevision(t, b) })
	t.Run("OlderRevisions", func(t *testing.T) { testOlderRevisions(t, b) })
	t.Run("Deletes", func(t *testing.T) { testDeletes(t, b) })
	t.Run("Records", func(t *testing.T) { testRecords(t, b) })
	t.Run("SchemaText", func(t *testing.T) { testSchemaText(t, b) })
	t.Run("Expiration", func(t *testing.T) { testExpiration(t, b) })
	t.Run("ChangeStream", func(t *testing.T) { testChangeStream(t, b) })
	t.Run("ChangeStreamUnderWrites", func(t *testing.T) { testChangeStreamUnderWrites(t, b) })
	t.Run("GarbageCollection", func(t *testing.T) { testGarbageCollection(t, b) })
	t.Run("ConcurrentWriters", func(t *testing.T) { testConcurrentWriters(t, b) })
	t.Run("Reopen", func(t *testing.T) {
		if !b.Durable {
			t.Skip("the store is not durable")
		}
		testReopen(t, b)
	})
	t.Run("Shared", func(t *testing.T) {
		if !b.Shared {
			t.Skip("the store does not allow several open handles")
		}
		t.Run("WriteVisibleOnOtherNode", func(t *testing.T) { testWriteVisibleOnOtherNode(t, b) })
		t.Run("CreateConflictAcrossNodes", func(t *testing.T) { testCreateConflictAcrossNodes(t, b) })
		t.Run("ConcurrentNodes", func(t *testing.T) { testConcurrentNodes(t, b) })
		t.Run("FollowerWakesWatchers", func(t *testing.T) { testFollowerWakesWatchers(t, b) })
		t.Run("TokenFromElsewhere", func(t *testing.T) { testTokenFromElsewhere(t, b) })
	})
}

// Clock is a settable clock for graph.Options.Clock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock set to a fixed, whole-second time.
func NewClock() *Clock {
	return &Clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// OpenGraph opens a Graph over store and closes it when the test ends,
// unless the test closed it first with the returned function.
func OpenGraph(t testing.TB, store graph.Store, opts graph.Options) (*graph.Graph, func()) {
	t.Helper()
	g, err := graph.Open(store, opts)
	if err != nil {
		store.Close()
		t.Fatalf("open graph: %v", err)
	}
	var once sync.Once
	closeGraph := func() {
		once.Do(func() {
			if err := g.Close(); err != nil {
				t.Errorf("close graph: %v", err)
			}
		})
	}
	t.Cleanup(closeGraph)
	return g, closeGraph
}

// node opens one Graph over a new handle of a data set.
func node(t *testing.T, open func(t *testing.T) graph.Store, clock *Clock) *graph.Graph {
	t.Helper()
	g, _ := OpenGraph(t, open(t), graph.Options{Clock: clock.Now, FreshnessTimeout: 10 * time.Second})
	return g
}

// newGraph opens one Graph over a new data set of b.
func newGraph(t *testing.T, b Backend) (*graph.Graph, *Clock) {
	t.Helper()
	clock := NewClock()
	return node(t, b.NewDataSet(t), clock), clock
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
