package storetest

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/mandate-iam/mandate/graph"
)

// counterKind and counterID name the record that concurrent writers
// increment with a read-modify-write, so that a lost update shows as a
// count below the number of acknowledged increments.
const (
	counterKind = "counter"
	counterID   = "hits"
)

// increment adds one to the counter record and touches one relationship
// named after the writer, in one transaction.
func increment(tx *graph.Tx, r *graph.Relationship) error {
	n := 0
	if b := tx.GetRecord(counterKind, counterID); b != nil {
		var err error
		if n, err = strconv.Atoi(string(b)); err != nil {
			return fmt.Errorf("counter record %q: %w", b, err)
		}
	}
	tx.PutRecord(counterKind, counterID, []byte(strconv.Itoa(n+1)))
	tx.Touch(r)
	return nil
}

func counterAt(t *testing.T, snap graph.Snapshot) int {
	t.Helper()
	b := snap.Record(counterKind, counterID)
	n, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatalf("counter record at revision %d: %q is not a number", snap.Revision, b)
	}
	return n
}

// runIncrements runs writers goroutines of writesEach increments, writer w
// on nodes[w % len(nodes)], and returns the acknowledged revisions.
func runIncrements(t *testing.T, nodes []*graph.Graph, writers, writesEach int) []graph.Revision {
	t.Helper()
	ctx := testContext(t)
	var mu sync.Mutex
	var revs []graph.Revision
	var wg sync.WaitGroup
	for w := range writers {
		g := nodes[w%len(nodes)]
		wg.Go(func() {
			var last graph.Revision
			for i := range writesEach {
				r := rel(t, fmt.Sprintf("doc:w%d#writer@user:i%d", w, i))
				rev, err := g.Update(ctx, func(tx *graph.Tx) error { return increment(tx, r) })
				if err != nil {
					t.Errorf("writer %d, increment %d: %v", w, i, err)
					return
				}
				if rev <= last {
					t.Errorf("writer %d: revision %d after revision %d, want strictly increasing", w, rev, last)
				}
				last = rev
				mu.Lock()
				revs = append(revs, rev)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(revs)
	for i, rev := range revs {
		if want := revs[0] + graph.Revision(i); rev != want {
			t.Fatalf("acknowledged revisions: position %d holds %d, want %d (each revision once, none skipped)", i, rev, want)
		}
	}
	return revs
}

func testConcurrentWriters(t *testing.T, b Backend) {
	g, clock := newGraph(t, b)
	const writers, writesEach = 8, 25
	runIncrements(t, []*graph.Graph{g}, writers, writesEach)
	snap := g.HeadSnapshot(clock.Now())
	if snap.Revision != writers*writesEach {
		t.Fatalf("head after %d writes: got %d", writers*writesEach, snap.Revision)
	}
	if got := counterAt(t, snap); got != writers*writesEach {
		t.Fatalf("counter after %d acknowledged increments: got %d (lost updates)", writers*writesEach, got)
	}
	if got := len(snap.Scan(graph.Filter{Relation: "writer"})); got != writers*writesEach {
		t.Fatalf("relationships after %d acknowledged writes: got %d", writers*writesEach, got)
	}
}

func testReopen(t *testing.T, b Backend) {
	open := b.NewDataSet(t)
	clock := NewClock()
	g, closeFirst := OpenGraph(t, open(t), graph.Options{Clock: clock.Now})

	expiring := rel(t, "doc:readme#viewer@user:temp")
	expiring.Expiration = clock.Now().Add(48 * 3600e9)
	caveated := rel(t, "doc:readme#viewer@user:carol")
	caveated.Caveat = "on_weekdays"
	caveated.CaveatContext = map[string]any{"tz": "UTC", "level": 2}
	touch(t, g, rel(t, "doc:readme#viewer@user:alice"), rel(t, "doc:readme#viewer@user:bob"), expiring, caveated)
	update(t, g, func(tx *graph.Tx) error {
		tx.Delete(rel(t, "doc:readme#viewer@user:bob").Key)
		tx.SetSchema("definition user {}")
		tx.PutRecord("agent", "report-bot", []byte("active"))
		tx.PutRecord("agent", "etl-bot", []byte("active"))
		return nil
	})
	update(t, g, func(tx *graph.Tx) error {
		tx.DeleteRecord("agent", "etl-bot")
		return nil
	})
	runIncrements(t, []*graph.Graph{g}, 4, 10)
	head := g.Head()
	want := g.HeadSnapshot(clock.Now())
	wantRels := want.Scan(graph.Filter{})
	closeFirst()

	reopened, _ := OpenGraph(t, open(t), graph.Options{Clock: clock.Now})
	if got := reopened.Head(); got != head {
		t.Fatalf("head after reopening: got %d, want %d", got, head)
	}
	snap := reopened.HeadSnapshot(clock.Now())
	gotRels := snap.Scan(graph.Filter{})
	requireKeys(t, "relationships after reopening", keysOf(gotRels), keysOf(wantRels)...)
	for i := range gotRels {
		if diff := sameRelationship(gotRels[i], wantRels[i]); diff != "" {
			t.Fatalf("relationship after reopening: %s", diff)
		}
	}
	if got := snap.SchemaText; got != "definition user {}" {
		t.Fatalf("schema after reopening: got %q", got)
	}
	if got := string(snap.Record("agent", "report-bot")); got != "active" {
		t.Fatalf("record report-bot after reopening: got %q", got)
	}
	if got := snap.Record("agent", "etl-bot"); got != nil {
		t.Fatalf("deleted record etl-bot after reopening: got %q", got)
	}
	if got := counterAt(t, snap); got != 40 {
		t.Fatalf("counter after reopening: got %d, want 40", got)
	}
	if got := readChanges(t, reopened, 0); len(got) != int(head) {
		t.Fatalf("change log after reopening: got %d commits, want %d", len(got), head)
	}
	if rev := touch(t, reopened, rel(t, "doc:after#viewer@user:alice")); rev != head+1 {
		t.Fatalf("first write after reopening: got revision %d, want %d", rev, head+1)
	}
}
