package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mandate-iam/mandate/graph"
)

// The tests in this file open several Graphs on one data set, each
// standing for one Mandate server of a cluster.

func twoNodes(t *testing.T, b Backend) (a, c *graph.Graph, clock *Clock) {
	t.Helper()
	open := b.NewDataSet(t)
	clock = NewClock()
	return node(t, open, clock), node(t, open, clock), clock
}

func testWriteVisibleOnOtherNode(t *testing.T, b Backend) {
	a, other, clock := twoNodes(t, b)
	alice := rel(t, "doc:readme#viewer@user:alice")
	rev := touch(t, a, alice)

	// at_least_as_fresh with a's token.
	waitForRevision(t, other, rev)
	if other.HeadSnapshot(clock.Now()).Find(alice.Key) == nil {
		t.Fatalf("node b after waiting for revision %d: %s not found", rev, alice.Key)
	}

	// fully_consistent: CatchUp returns the store head after applying it.
	rev2 := update(t, a, func(tx *graph.Tx) error {
		tx.Delete(alice.Key)
		tx.SetSchema("definition user {}")
		tx.PutRecord("agent", "report-bot", []byte("active"))
		return nil
	})
	head, err := other.CatchUp(testContext(t))
	if err != nil {
		t.Fatalf("catch up node b: %v", err)
	}
	if head != rev2 {
		t.Fatalf("catch up node b: got head %d, want %d", head, rev2)
	}
	snap := other.HeadSnapshot(clock.Now())
	if snap.Revision < rev2 || snap.Find(alice.Key) != nil || snap.SchemaText != "definition user {}" ||
		string(snap.Record("agent", "report-bot")) != "active" {
		t.Fatalf("node b after catching up to revision %d: revision %d, alice %v, schema %q, record %q",
			rev2, snap.Revision, snap.Find(alice.Key), snap.SchemaText, snap.Record("agent", "report-bot"))
	}
	// Node b still reads the revision before the delete.
	requireKeys(t, "node b at revision 1", scanKeys(snapshotAt(t, other, rev, clock.Now())), alice.Key.String())
}

func testCreateConflictAcrossNodes(t *testing.T, b Backend) {
	a, other, _ := twoNodes(t, b)
	r := rel(t, "doc:readme#owner@user:alice")
	touch(t, a, r)
	// Node b may not have applied a's write yet, but its transaction runs
	// against the store's head, so the create must fail.
	_, err := other.Update(testContext(t), func(tx *graph.Tx) error { return tx.Create(r) })
	if !errors.Is(err, graph.ErrAlreadyExists) {
		t.Fatalf("create on node b of a relationship written on node a: got error %v, want ErrAlreadyExists", err)
	}
	rev := touch(t, other, rel(t, "doc:readme#owner@user:bob"))
	if rev != 2 {
		t.Fatalf("write on node b after node a's revision 1: got revision %d, want 2", rev)
	}
}

func testConcurrentNodes(t *testing.T, b Backend) {
	a, other, clock := twoNodes(t, b)
	const writers, writesEach = 6, 20
	const total = writers * writesEach
	runIncrements(t, []*graph.Graph{a, other}, writers, writesEach)
	for name, g := range map[string]*graph.Graph{"a": a, "b": other} {
		waitForRevision(t, g, total)
		snap := snapshotAt(t, g, total, clock.Now())
		if got := counterAt(t, snap); got != total {
			t.Fatalf("node %s: counter after %d acknowledged increments: got %d (lost updates)", name, total, got)
		}
		if got := len(snap.Scan(graph.Filter{Relation: "writer"})); got != total {
			t.Fatalf("node %s: relationships after %d acknowledged writes: got %d", name, total, got)
		}
	}
}

func testFollowerWakesWatchers(t *testing.T, b Backend) {
	a, other, _ := twoNodes(t, b)
	head := other.Head()
	woke := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		woke <- other.WaitForChange(ctx, head)
	}()
	rev := touch(t, a, rel(t, "doc:readme#viewer@user:alice"))
	if err := <-woke; err != nil {
		t.Fatalf("wait on node b for a change after revision %d: %v", head, err)
	}
	if got := other.Head(); got < rev {
		t.Fatalf("node b's head after waking: got %d, want at least %d", got, rev)
	}
}

func testTokenFromElsewhere(t *testing.T, b Backend) {
	a, _, _ := twoNodes(t, b)
	rev := touch(t, a, rel(t, "doc:readme#viewer@user:alice"))
	err := a.WaitForRevision(testContext(t), rev+100)
	if !errors.Is(err, graph.ErrRevisionUnavailable) {
		t.Fatalf("wait for a revision past the store head: got error %v, want ErrRevisionUnavailable", err)
	}
}
