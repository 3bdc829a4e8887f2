package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/graph/sqlstore"
	"github.com/mandate-iam/mandate/graph/storetest"
)

// The tests in this file run several Graphs on one PostgreSQL database,
// each standing for one Mandate server.

func openNode(t *testing.T, uri string, clock *storetest.Clock) (*graph.Graph, *sqlstore.Store) {
	t.Helper()
	store := openStore(t, sqlstore.Postgres, uri)
	g, _ := storetest.OpenGraph(t, store, graph.Options{Clock: clock.Now, FreshnessTimeout: 10 * time.Second})
	return g, store
}

func viewer(doc, user string) *graph.Relationship {
	return &graph.Relationship{Key: graph.Key{
		ResourceType: "doc", ResourceID: doc, Relation: "viewer",
		Subject: graph.SubjectRef{Type: "user", ID: user},
	}}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestNodesAgreeUnderConcurrentLoad writes on two nodes at once while
// readers on the other node read with each write's token, as a client
// reading at_least_as_fresh does.
func TestNodesAgreeUnderConcurrentLoad(t *testing.T) {
	uri := migratedDatabase(t, sqlstore.Postgres)
	clock := storetest.NewClock()
	a, storeA := openNode(t, uri, clock)
	b, storeB := openNode(t, uri, clock)
	nodes := []*graph.Graph{a, b}
	ctx := testCtx(t)

	const writers, writesEach = 4, 25
	var wg sync.WaitGroup
	for w := range writers {
		writer, reader := nodes[w%2], nodes[(w+1)%2]
		wg.Go(func() {
			for i := range writesEach {
				r := viewer(fmt.Sprintf("w%d-%d", w, i), "alice")
				rev, err := writer.Update(ctx, func(tx *graph.Tx) error { return tx.Create(r) })
				if err != nil {
					t.Errorf("writer %d, write %d: %v", w, i, err)
					return
				}
				// A read at least as fresh as the write's token, on the
				// other node.
				if err := reader.WaitForRevision(ctx, rev); err != nil {
					t.Errorf("writer %d: wait on the other node for revision %d: %v", w, rev, err)
					return
				}
				snap := reader.HeadSnapshot(clock.Now())
				if snap.Revision < rev {
					t.Errorf("writer %d: the other node reads revision %d, older than the token's %d", w, snap.Revision, rev)
				}
				if snap.Find(r.Key) == nil {
					t.Errorf("writer %d: %s written at revision %d is missing on the other node at revision %d",
						w, r.Key, rev, snap.Revision)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	const total = writers * writesEach
	for name, g := range map[string]*graph.Graph{"a": a, "b": b} {
		head, err := g.CatchUp(ctx)
		if err != nil {
			t.Fatalf("catch up node %s: %v", name, err)
		}
		if head != total {
			t.Fatalf("node %s: store head %d after %d writes", name, head, total)
		}
		if got := len(g.HeadSnapshot(clock.Now()).Scan(graph.Filter{})); got != total {
			t.Fatalf("node %s: %d relationships after %d writes", name, got, total)
		}
	}
	// Locking the head table before the transaction's snapshot makes
	// writers wait for each other instead of failing.
	if n := storeA.Retries() + storeB.Retries(); n != 0 {
		t.Fatalf("write transactions retried %d times, want 0", n)
	}
}

// TestLateNodeCatchesUp starts a node after many writes: it loads the
// current state, then follows the change log for newer writes.
func TestLateNodeCatchesUp(t *testing.T) {
	uri := migratedDatabase(t, sqlstore.Postgres)
	clock := storetest.NewClock()
	a, _ := openNode(t, uri, clock)
	ctx := testCtx(t)
	for i := range 50 {
		if _, err := a.Update(ctx, func(tx *graph.Tx) error {
			tx.Touch(viewer(fmt.Sprintf("d%d", i), "alice"))
			if i%10 == 9 {
				tx.Delete(viewer(fmt.Sprintf("d%d", i-5), "alice").Key)
			}
			tx.PutRecord("agent", "report-bot", fmt.Appendf(nil, "v%d", i))
			return nil
		}); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}

	late, _ := openNode(t, uri, clock)
	if got := late.Head(); got != 50 {
		t.Fatalf("late node's head after loading: got %d, want 50", got)
	}
	want := a.HeadSnapshot(clock.Now()).Scan(graph.Filter{})
	got := late.HeadSnapshot(clock.Now()).Scan(graph.Filter{})
	if len(got) != len(want) {
		t.Fatalf("late node after loading: %d relationships, want %d", len(got), len(want))
	}

	// Later writes reach the late node through the change log, without a
	// read or write on it.
	rev, err := a.Update(ctx, func(tx *graph.Tx) error {
		tx.Touch(viewer("after", "bob"))
		tx.PutRecord("agent", "report-bot", []byte("final"))
		return nil
	})
	if err != nil {
		t.Fatalf("write after the late start: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for late.Head() < rev {
		if time.Now().After(deadline) {
			t.Fatalf("late node's follower did not apply revision %d within 20s; head %d", rev, late.Head())
		}
		time.Sleep(10 * time.Millisecond)
	}
	snap := late.HeadSnapshot(clock.Now())
	if snap.Find(viewer("after", "bob").Key) == nil {
		t.Fatalf("late node at revision %d: doc:after#viewer@user:bob not found", snap.Revision)
	}
	if got := string(snap.Record("agent", "report-bot")); got != "final" {
		t.Fatalf("late node at revision %d: record report-bot is %q, want final", snap.Revision, got)
	}
}

// pausableStore hides new change log entries from its Graph while paused,
// as if that process had been cut off from the database.
type pausableStore struct {
	*sqlstore.Store
	paused atomic.Bool
}

func (p *pausableStore) ChangesContext(ctx context.Context, after graph.Revision, fn func(graph.Commit) error) error {
	if p.paused.Load() {
		return nil
	}
	return p.Store.ChangesContext(ctx, after, fn)
}

// TestNodeReloadsAfterChangeLogCollected lets the change log be collected
// past a node's head while the node reads nothing, then checks that the
// node reloads the current state instead of missing commits.
func TestNodeReloadsAfterChangeLogCollected(t *testing.T) {
	uri := migratedDatabase(t, sqlstore.Postgres)
	clock := storetest.NewClock()
	a, _ := openNode(t, uri, clock)
	behind := &pausableStore{Store: openStore(t, sqlstore.Postgres, uri)}
	b, _ := storetest.OpenGraph(t, behind, graph.Options{Clock: clock.Now, FreshnessTimeout: 10 * time.Second})
	ctx := testCtx(t)

	behind.paused.Store(true)
	for i := range 5 {
		if _, err := a.Update(ctx, func(tx *graph.Tx) error {
			tx.Touch(viewer(fmt.Sprintf("d%d", i), "alice"))
			return nil
		}); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	clock.Advance(25 * time.Hour)
	head, err := a.Update(ctx, func(tx *graph.Tx) error { tx.Touch(viewer("new", "bob")); return nil })
	if err != nil {
		t.Fatalf("write after the window: %v", err)
	}
	if err := a.CollectGarbage(ctx); err != nil {
		t.Fatalf("collect garbage: %v", err)
	}
	if err := a.Changes(0, func(graph.Commit) error { return nil }); !errors.Is(err, graph.ErrChangesCollected) {
		t.Fatalf("changes after revision 0 once collected: got error %v, want ErrChangesCollected", err)
	}

	behind.paused.Store(false)
	if err := b.WaitForRevision(ctx, head); err != nil {
		t.Fatalf("wait on the node that fell behind for revision %d: %v", head, err)
	}
	snap := b.HeadSnapshot(clock.Now())
	if got := len(snap.Scan(graph.Filter{})); got != 6 {
		t.Fatalf("node that fell behind, after reloading: %d relationships, want 6", got)
	}
	// The node's history starts at the reloaded head.
	if _, err := b.Snapshot(1, clock.Now()); !errors.Is(err, graph.ErrRevisionUnavailable) {
		t.Fatalf("snapshot at revision 1 after reloading: got error %v, want ErrRevisionUnavailable", err)
	}
	// Writes on the reloaded node continue from the store's head.
	rev, err := b.Update(ctx, func(tx *graph.Tx) error { return tx.Create(viewer("from-b", "carol")) })
	if err != nil {
		t.Fatalf("write on the reloaded node: %v", err)
	}
	if rev != head+1 {
		t.Fatalf("write on the reloaded node: got revision %d, want %d", rev, head+1)
	}
}
