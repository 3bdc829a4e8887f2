package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/mandate-iam/mandate/graph"
)

func testWriteAndRead(t *testing.T, b Backend) {
	g, clock := newGraph(t, b)
	if head := g.Head(); head != 0 {
		t.Fatalf("head of an empty store: got %d, want 0", head)
	}
	caveated := rel(t, "doc:readme#viewer@user:carol")
	caveated.Caveat = "on_weekdays"
	caveated.CaveatContext = map[string]any{"tz": "UTC", "level": 3}
	rev := update(t, g, func(tx *graph.Tx) error {
		if err := tx.Create(rel(t, "doc:readme#viewer@user:alice")); err != nil {
			return err
		}
		tx.Touch(rel(t, "doc:readme#viewer@group:eng#member"))
		tx.Touch(caveated)
		return nil
	})
	if rev != 1 {
		t.Fatalf("first write: got revision %d, want 1", rev)
	}
	if head := g.Head(); head != 1 {
		t.Fatalf("head after the first write: got %d, want 1", head)
	}
	rev2 := touch(t, g, rel(t, "folder:q3#owner@user:bob"))
	if rev2 != 2 {
		t.Fatalf("second write: got revision %d, want 2", rev2)
	}

	snap := snapshotAt(t, g, rev2, clock.Now())
	requireKeys(t, "scan", scanKeys(snap),
		"doc:readme#viewer@group:eng#member", "doc:readme#viewer@user:alice", "doc:readme#viewer@user:carol",
		"folder:q3#owner@user:bob")
	requireKeys(t, "subject sets of doc:readme#viewer", keysOf(snap.SubjectSets("doc", "readme", "viewer")),
		"doc:readme#viewer@group:eng#member")
	requireKeys(t, "resources of user:bob", keysOf(snap.Resources(graph.SubjectRef{Type: "user", ID: "bob"}, "", "")),
		"folder:q3#owner@user:bob")
	got := snap.Find(caveated.Key)
	if got == nil {
		t.Fatalf("find %s: not found", caveated.Key)
	}
	if diff := sameRelationship(got, caveated); diff != "" {
		t.Fatalf("find %s: %s", caveated.Key, diff)
	}
}

func testCreateExisting(t *testing.T, b Backend) {
	g, clock := newGraph(t, b)
	existing := rel(t, "doc:readme#viewer@user:alice")
	touch(t, g, existing)

	_, err := g.Update(testContext(t), func(tx *graph.Tx) error {
		tx.Touch(rel(t, "doc:readme#viewer@user:bob"))
		return tx.Create(existing)
	})
	if !errors.Is(err, graph.ErrAlreadyExists) {
		t.Fatalf("create an existing relationship: got error %v, want one wrapping ErrAlreadyExists", err)
	}
	if head := g.Head(); head != 1 {
		t.Fatalf("head after the failed create: got %d, want 1", head)
	}
	requireKeys(t, "scan after the failed create", scanKeys(g.HeadSnapshot(clock.Now())),
		"doc:readme#viewer@user:alice")
	if commits := readChanges(t, g, 0); len(commits) != 1 {
		t.Fatalf("change log after the failed create: got %d commits, want 1", len(commits))
	}

	// A relationship created and then deleted in one transaction can be
	// created again by the same transaction.
	rev := update(t, g, func(tx *graph.Tx) error {
		if !tx.Delete(existing.Key) {
			t.Errorf("delete %s in the transaction: reported missing", existing.Key)
		}
		return tx.Create(existing)
	})
	if rev != 2 {
		t.Fatalf("delete and create again: got revision %d, want 2", rev)
	}
}

func testPreconditions(t *testing.T, b Backend) {
	g, clock := newGraph(t, b)
	lock := rel(t, "doc:readme#lock@user:alice")
	// The transaction writes only while no lock exists, as a
	// MUST_NOT_MATCH precondition does.
	writeUnlessLocked := func(r *graph.Relationship) error {
		_, err := g.Update(testContext(t), func(tx *graph.Tx) error {
			if len(tx.Snapshot().Scan(graph.Filter{ResourceType: "doc", Relation: "lock"})) > 0 {
				return errPrecondition
			}
			tx.Touch(r)
			return nil
		})
		return err
	}
	if err := writeUnlessLocked(rel(t, "doc:readme#viewer@user:bob")); err != nil {
		t.Fatalf("write without a lock: %v", err)
	}
	touch(t, g, lock)
	if err := writeUnlessLocked(rel(t, "doc:readme#viewer@user:carol")); !errors.Is(err, errPrecondition) {
		t.Fatalf("write with a lock: got error %v, want the precondition error", err)
	}
	if head := g.Head(); head != 2 {
		t.Fatalf("head after the failed precondition: got %d, want 2", head)
	}
	requireKeys(t, "scan", scanKeys(g.HeadSnapshot(clock.Now())),
		"doc:readme#lock@user:alice", "doc:readme#viewer@user:bob")

	// A transaction reads its own buffered changes.
	update(t, g, func(tx *graph.Tx) error {
		r := rel(t, "doc:notes#viewer@user:dan")
		tx.Touch(r)
		if tx.Get(r.Key) == nil {
			t.Errorf("get %s after touching it in the transaction: not found", r.Key)
		}
		if tx.Snapshot().Find(r.Key) != nil {
			t.Errorf("the transaction's snapshot shows its own buffered change %s", r.Key)
		}
		tx.Delete(lock.Key)
		if tx.Get(lock.Key) != nil {
			t.Errorf("get %s after deleting it in the transaction: still found", lock.Key)
		}
		return nil
	})
}

func testNoChangeNoRevision(t *testing.T, b Backend) {
	g, _ := newGraph(t, b)
	touch(t, g, rel(t, "doc:readme#viewer@user:alice"))
	rev := update(t, g, func(tx *graph.Tx) error {
		tx.Delete(rel(t, "doc:missing#viewer@user:alice").Key)
		return nil
	})
	if rev != 1 {
		t.Fatalf("update without changes: got revision %d, want the head 1", rev)
	}
	if commits := readChanges(t, g, 0); len(commits) != 1 {
		t.Fatalf("change log after an update without changes: got %d commits, want 1", len(commits))
	}
}

func testOlderRevisions(t *testing.T, b Backend) {
	g, clock := newGraph(t, b)
	alice := rel(t, "doc:readme#viewer@user:alice")
	bob := rel(t, "doc:readme#viewer@user:bob")
	r1 := touch(t, g, alice)
	r2 := touch(t, g, bob)
	r3 := update(t, g, func(tx *graph.Tx) error {
		tx.Delete(alice.Key)
		return nil
	})
	caveated := rel(t, "doc:readme#viewer@user:bob")
	caveated.Caveat = "on_weekdays"
	r4 := touch(t, g, caveated)

	now := clock.Now()
	requireKeys(t, "revision 1", scanKeys(snapshotAt(t, g, r1, now)), "doc:readme#viewer@user:alice")
	requireKeys(t, "revision 2", scanKeys(snapshotAt(t, g, r2, now)),
		"doc:readme#viewer@user:alice", "doc:readme#viewer@user:bob")
	requireKeys(t, "revision 3", scanKeys(snapshotAt(t, g, r3, now)), "doc:readme#viewer@user:bob")
	if got := snapshotAt(t, g, r3, now).Find(bob.Key); got == nil || got.Caveat != "" {
		t.Fatalf("bob at revision 3: got %v, want no caveat", got)
	}
	if got := snapshotAt(t, g, r4, now).Find(bob.Key); got == nil || got.Caveat != "on_weekdays" {
		t.Fatalf("bob at revision 4: got %v, want caveat on_weekdays", got)
	}
	if _, err := g.Snapshot(r4+1, now); !errors.Is(err, graph.ErrRevisionUnavailable) {
		t.Fatalf("snapshot after the head: got error %v, want ErrRevisionUnavailable", err)
	}
}

func testDeletes(t *testing.T, b Backend) {
	g, clock := newGraph(t, b)
	alice := rel(t, "doc:readme#viewer@user:alice")
	group := rel(t, "doc:readme#viewer@group:eng#member")
	touch(t, g, alice, group)
	update(t, g, func(tx *graph.Tx) error {
		if !tx.Delete(alice.Key) {
			t.Errorf("delete %s: reported missing", alice.Key)
		}
		if tx.Delete(rel(t, "doc:readme#viewer@user:nobody").Key) {
			t.Errorf("delete a missing relationship: reported existing")
		}
		return nil
	})
	snap := g.HeadSnapshot(clock.Now())
	requireKeys(t, "scan after delete", scanKeys(snap), "doc:readme#viewer@group:eng#member")
	if snap.Find(alice.Key) != nil {
		t.Fatalf("find %s after delete: still found", alice.Key)
	}
	if got := snap.Resources(graph.SubjectRef{Type: "user", ID: "alice"}, "", ""); len(got) != 0 {
		t.Fatalf("resources of user:alice after delete: got %q", keysOf(got))
	}

	// A deleted relationship can be written again.
	touch(t, g, alice)
	requireKeys(t, "scan after writing again", scanKeys(g.HeadSnapshot(clock.Now())),
		"doc:readme#viewer@group:eng#member", "doc:readme#viewer@user:alice")
}

func testRecords(t *testing.T, b Backend) {
	g, clock := newGraph(t, b)
	r1 := update(t, g, func(tx *graph.Tx) error {
		tx.PutRecord("agent", "report-bot", []byte(`{"state":"active"}`))
		tx.PutRecord("agent", "etl-bot", []byte(`{"state":"provisioned"}`))
		if got := string(tx.GetRecord("agent", "report-bot")); got != `{"state":"active"}` {
			t.Errorf("get a record buffered in the transaction: got %q", got)
		}
		return nil
	})
	r2 := update(t, g, func(tx *graph.Tx) error {
		tx.PutRecord("agent", "report-bot", []byte(`{"state":"suspended"}`))
		tx.DeleteRecord("agent", "etl-bot")
		return nil
	})
	now := clock.Now()
	if got := string(snapshotAt(t, g, r1, now).Record("agent", "report-bot")); got != `{"state":"active"}` {
		t.Fatalf("report-bot at revision %d: got %q", r1, got)
	}
	if got := string(snapshotAt(t, g, r2, now).Record("agent", "report-bot")); got != `{"state":"suspended"}` {
		t.Fatalf("report-bot at revision %d: got %q", r2, got)
	}
	if got := snapshotAt(t, g, r2, now).Record("agent", "etl-bot"); got != nil {
		t.Fatalf("etl-bot at revision %d after delete: got %q", r2, got)
	}
	var ids []string
	snapshotAt(t, g, r1, now).Records("agent", func(id string, _ []byte) { ids = append(ids, id) })
	if len(ids) != 2 {
		t.Fatalf("agent records at revision %d: got %q, want 2", r1, ids)
	}
}

func testSchemaText(t *testing.T, b Backend) {
	g, clock := newGraph(t, b)
	if got := g.HeadSnapshot(clock.Now()).SchemaText; got != "" {
		t.Fatalf("schema of an empty store: got %q", got)
	}
	const v1 = "definition user {}"
	const v2 = "definition user {}\n\ndefinition doc {\n  relation viewer: user\n}"
	r1 := update(t, g, func(tx *graph.Tx) error { tx.SetSchema(v1); return nil })
	r2 := touch(t, g, rel(t, "doc:readme#viewer@user:alice"))
	r3 := update(t, g, func(tx *graph.Tx) error { tx.SetSchema(v2); return nil })
	now := clock.Now()
	for _, tc := range []struct {
		rev  graph.Revision
		want string
	}{{r1, v1}, {r2, v1}, {r3, v2}} {
		if got := snapshotAt(t, g, tc.rev, now).SchemaText; got != tc.want {
			t.Fatalf("schema at revision %d: got %q, want %q", tc.rev, got, tc.want)
		}
	}
	if r1 != 1 {
		t.Fatalf("a schema-only write: got revision %d, want 1", r1)
	}
}

func testExpiration(t *testing.T, b Backend) {
	g, clock := newGraph(t, b)
	now := clock.Now()
	expiring := rel(t, "doc:readme#viewer@user:temp")
	expiring.Expiration = now.Add(time.Hour)
	touch(t, g, expiring, rel(t, "doc:readme#viewer@user:alice"))

	before := g.HeadSnapshot(now.Add(59 * time.Minute))
	got := before.Find(expiring.Key)
	if got == nil {
		t.Fatalf("find %s before it expires: not found", expiring.Key)
	}
	if diff := sameRelationship(got, expiring); diff != "" {
		t.Fatalf("find %s before it expires: %s", expiring.Key, diff)
	}
	requireKeys(t, "scan before expiration", scanKeys(before),
		"doc:readme#viewer@user:alice", "doc:readme#viewer@user:temp")

	after := g.HeadSnapshot(now.Add(time.Hour))
	if after.Find(expiring.Key) != nil {
		t.Fatalf("find %s at its expiration: still visible", expiring.Key)
	}
	requireKeys(t, "scan at expiration", scanKeys(after), "doc:readme#viewer@user:alice")
	if got := after.Subjects("doc", "readme", "viewer"); len(got) != 1 {
		t.Fatalf("subjects at expiration: got %q, want only alice", keysOf(got))
	}
}
