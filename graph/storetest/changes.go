package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mandate-iam/mandate/graph"
)

func testChangeStream(t *testing.T, b Backend) {
	g, _ := newGraph(t, b)
	alice := rel(t, "doc:readme#viewer@user:alice")
	alice.Caveat = "on_weekdays"
	alice.CaveatContext = map[string]any{"tz": "UTC"}
	bob := rel(t, "doc:readme#viewer@user:bob")
	touch(t, g, alice, bob)
	update(t, g, func(tx *graph.Tx) error {
		tx.Delete(bob.Key)
		tx.PutRecord("agent", "report-bot", []byte("v1"))
		return nil
	})
	update(t, g, func(tx *graph.Tx) error {
		tx.SetSchema("definition user {}")
		tx.DeleteRecord("agent", "report-bot")
		return nil
	})

	commits := readChanges(t, g, 0)
	if len(commits) != 3 {
		t.Fatalf("change log: got %d commits, want 3", len(commits))
	}
	for i, c := range commits {
		if want := graph.Revision(i + 1); c.Revision != want {
			t.Fatalf("commit %d: got revision %d, want %d", i, c.Revision, want)
		}
		if c.At.IsZero() {
			t.Fatalf("commit %d: no commit time", c.Revision)
		}
	}
	first := commits[0]
	if len(first.Changes) != 2 || first.Changes[0].Op != graph.OpTouch || first.Changes[1].Op != graph.OpTouch {
		t.Fatalf("revision 1: got %d changes %v, want two touches", len(first.Changes), first.Changes)
	}
	if diff := sameRelationship(first.Changes[0].Relationship, alice); diff != "" {
		t.Fatalf("revision 1, first change: %s", diff)
	}
	second := commits[1]
	if len(second.Changes) != 1 || second.Changes[0].Op != graph.OpDelete || second.Changes[0].Relationship.Key != bob.Key {
		t.Fatalf("revision 2: got changes %v, want the delete of %s", second.Changes, bob.Key)
	}
	if len(second.Records) != 1 || string(second.Records[0].Data) != "v1" || second.Schema != nil {
		t.Fatalf("revision 2: got records %v and schema %v, want the put of report-bot and no schema", second.Records, second.Schema)
	}
	third := commits[2]
	if third.Schema == nil || *third.Schema != "definition user {}" {
		t.Fatalf("revision 3: got schema %v, want the new schema", third.Schema)
	}
	if len(third.Records) != 1 || third.Records[0].Data != nil {
		t.Fatalf("revision 3: got records %v, want the delete of report-bot", third.Records)
	}

	if got := readChanges(t, g, 2); len(got) != 1 || got[0].Revision != 3 {
		t.Fatalf("changes after revision 2: got %d commits, want revision 3 only", len(got))
	}
	if got := readChanges(t, g, 3); len(got) != 0 {
		t.Fatalf("changes after the head: got %d commits, want none", len(got))
	}

	// An error from the callback stops the read and is returned.
	stop := errors.New("stop reading")
	calls := 0
	err := g.Changes(0, func(graph.Commit) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("changes with a failing callback: got error %v after %d calls, want the callback's error after 1", err, calls)
	}
}

// testChangeStreamUnderWrites reads the change stream while writers
// commit, the way Watch does, and checks that it sees every revision once,
// in order, with the write that made it.
func testChangeStreamUnderWrites(t *testing.T, b Backend) {
	g, _ := newGraph(t, b)
	const writers, writesEach = 4, 25
	const total = writers * writesEach

	type seen struct {
		rev graph.Revision
		key string
	}
	var got []seen
	readerDone := make(chan error, 1)
	ctx := testContext(t)
	go func() {
		var last graph.Revision
		for last < total {
			err := g.Changes(last, func(c graph.Commit) error {
				if c.Revision != last+1 {
					return fmt.Errorf("change stream jumped from revision %d to %d", last, c.Revision)
				}
				if len(c.Changes) != 1 {
					return fmt.Errorf("revision %d: got %d changes, want 1", c.Revision, len(c.Changes))
				}
				got = append(got, seen{c.Revision, c.Changes[0].Relationship.Key.String()})
				last = c.Revision
				return nil
			})
			if err != nil {
				readerDone <- err
				return
			}
			if last < total {
				waitCtx, cancel := context.WithTimeout(ctx, time.Second)
				_ = g.WaitForChange(waitCtx, last)
				cancel()
				if ctx.Err() != nil {
					readerDone <- ctx.Err()
					return
				}
			}
		}
		readerDone <- nil
	}()

	var mu sync.Mutex
	written := make(map[graph.Revision]string)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range writesEach {
				r := rel(t, fmt.Sprintf("doc:d%d-%d#viewer@user:u", w, i))
				rev, err := g.Update(ctx, func(tx *graph.Tx) error { tx.Touch(r); return nil })
				if err != nil {
					t.Errorf("writer %d, write %d: %v", w, i, err)
					return
				}
				mu.Lock()
				written[rev] = r.Key.String()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := <-readerDone; err != nil {
		t.Fatalf("read the change stream: %v", err)
	}
	if len(got) != total {
		t.Fatalf("change stream: got %d commits, want %d", len(got), total)
	}
	for _, s := range got {
		if written[s.rev] != s.key {
			t.Fatalf("revision %d in the change stream wrote %s, but the writer wrote %q", s.rev, s.key, written[s.rev])
		}
	}
}

func testGarbageCollection(t *testing.T, b Backend) {
	clock := NewClock()
	g := node(t, b.NewDataSet(t), clock)
	alice := rel(t, "doc:readme#viewer@user:alice")
	bob := rel(t, "doc:readme#viewer@user:bob")
	r1 := touch(t, g, alice, bob)
	clock.Advance(time.Hour)
	r2 := update(t, g, func(tx *graph.Tx) error { tx.Delete(bob.Key); return nil })

	// The default window is 24 hours. At 25h30m after revision 1, the
	// newest revision before the window's start is revision 2, so it
	// stays readable and revision 1 does not.
	clock.Advance(24*time.Hour + 30*time.Minute)
	r3 := touch(t, g, rel(t, "doc:readme#viewer@user:carol"))
	now := clock.Now()
	if _, err := g.Snapshot(r1, now); !errors.Is(err, graph.ErrRevisionUnavailable) {
		t.Fatalf("snapshot at revision %d after the window: got error %v, want ErrRevisionUnavailable", r1, err)
	}
	requireKeys(t, "revision 2 after collection", scanKeys(snapshotAt(t, g, r2, now)), "doc:readme#viewer@user:alice")
	requireKeys(t, "revision 3 after collection", scanKeys(snapshotAt(t, g, r3, now)),
		"doc:readme#viewer@user:alice", "doc:readme#viewer@user:carol")

	if err := g.CollectGarbage(testContext(t)); err != nil {
		t.Fatalf("collect garbage: %v", err)
	}
	if _, ok := g.Store().(graph.SharedStore); !ok {
		// Stores that are not shared keep their whole change log.
		if got := readChanges(t, g, 0); len(got) != 3 {
			t.Fatalf("change log after collection: got %d commits, want 3", len(got))
		}
		return
	}
	// A shared store deletes the change log entries of revisions 1 and 2,
	// committed before the window, and keeps the head's.
	err := g.Changes(0, func(graph.Commit) error { return nil })
	if !errors.Is(err, graph.ErrChangesCollected) {
		t.Fatalf("changes after revision 0 once collected: got error %v, want ErrChangesCollected", err)
	}
	if got := readChanges(t, g, r2); len(got) != 1 || got[0].Revision != r3 {
		t.Fatalf("changes after revision %d once collected: got %d commits, want revision %d", r2, len(got), r3)
	}
}
