package sqlstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/graph/sqlstore"
	"github.com/mandate-iam/mandate/graph/sqlstore/pgtest"
	"github.com/mandate-iam/mandate/graph/storetest"
)

// TestPostgresRestartDuringLoad crashes PostgreSQL (immediate shutdown,
// then crash recovery on restart) while writers on two nodes commit, and
// checks that the nodes reconnect and that no acknowledged write is lost.
func TestPostgresRestartDuringLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a PostgreSQL server; skipped with -short")
	}
	pg := pgtest.Start(t)
	uri := pg.CreateSchema(t)
	ctx := testCtx(t)
	if _, err := sqlstore.Migrate(ctx, sqlstore.Config{Dialect: sqlstore.Postgres, URI: uri}); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	clock := storetest.NewClock()
	a, _ := openNode(t, uri, clock)
	b, _ := openNode(t, uri, clock)

	const writersPerNode = 2
	// Each writer stops once it has this many writes acknowledged after
	// the restart, so every writer saw the database come back.
	const ackedAfterRestart = 20

	var (
		mu        sync.Mutex
		acked     = make(map[graph.Key]graph.Revision)
		failures  atomic.Int64
		restarted atomic.Bool
		total     atomic.Int64
	)
	writeCtx, stopWriters := context.WithTimeout(ctx, time.Minute)
	defer stopWriters()
	var wg sync.WaitGroup
	for w := range 2 * writersPerNode {
		g := []*graph.Graph{a, b}[w%2]
		wg.Go(func() {
			after := 0
			for i := 0; after < ackedAfterRestart && writeCtx.Err() == nil; i++ {
				r := viewer(fmt.Sprintf("w%d-%d", w, i), "alice")
				// A client retries a failed write; Touch makes the retry
				// of a write that did commit harmless.
				for writeCtx.Err() == nil {
					rev, err := g.Update(writeCtx, func(tx *graph.Tx) error { tx.Touch(r); return nil })
					if err != nil {
						failures.Add(1)
						time.Sleep(20 * time.Millisecond)
						continue
					}
					mu.Lock()
					acked[r.Key] = rev
					mu.Unlock()
					total.Add(1)
					if restarted.Load() {
						after++
					}
					break
				}
			}
		})
	}

	// Crash the server once the writers are under way.
	for total.Load() < 40 {
		if writeCtx.Err() != nil {
			t.Fatalf("only %d writes acknowledged before the restart", total.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	pid := pg.PID()
	if err := pg.Crash(); err != nil {
		t.Fatalf("crash PostgreSQL (pid %d): %v", pid, err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := pg.Restart(); err != nil {
		t.Fatalf("restart PostgreSQL: %v", err)
	}
	restarted.Store(true)
	t.Logf("crashed PostgreSQL (pid %d) after %d acknowledged writes; restarted as pid %d", pid, total.Load(), pg.PID())
	wg.Wait()
	if writeCtx.Err() != nil {
		t.Fatalf("writers did not finish within a minute: %d writes acknowledged", total.Load())
	}
	t.Logf("%d writes acknowledged, %d attempts failed while the database was down", total.Load(), failures.Load())

	// The nodes were not restarted: each reconnects and catches up.
	var head graph.Revision
	for name, g := range map[string]*graph.Graph{"a": a, "b": b} {
		h, err := g.CatchUp(ctx)
		if err != nil {
			t.Fatalf("catch up node %s after the restart: %v", name, err)
		}
		head = max(head, h)
	}
	fresh, _ := openNode(t, uri, clock)
	for name, g := range map[string]*graph.Graph{"a": a, "b": b, "new": fresh} {
		if err := g.WaitForRevision(ctx, head); err != nil {
			t.Fatalf("wait on node %s for revision %d: %v", name, head, err)
		}
		snap := g.HeadSnapshot(clock.Now())
		for k, rev := range acked {
			if snap.Find(k) == nil {
				t.Fatalf("node %s at revision %d: %s, acknowledged at revision %d, is missing", name, snap.Revision, k, rev)
			}
		}
	}

	// Node b's follower applies a's next write by itself once its
	// notification connection is back.
	rev, err := a.Update(ctx, func(tx *graph.Tx) error { tx.Touch(viewer("final", "bob")); return nil })
	if err != nil {
		t.Fatalf("write after the restart: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for b.Head() < rev {
		if time.Now().After(deadline) {
			t.Fatalf("node b's follower did not apply revision %d within 20s of the restart; head %d", rev, b.Head())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
