package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mandate-iam/mandate/graph"
)

// rel parses "type:id#relation@type:id" or "...@type:id#relation" into a
// relationship without caveat or expiration.
func rel(t *testing.T, s string) *graph.Relationship {
	t.Helper()
	resource, subject, ok := strings.Cut(s, "@")
	if !ok {
		t.Fatalf("relationship %q has no @", s)
	}
	object, relation, ok := strings.Cut(resource, "#")
	if !ok {
		t.Fatalf("relationship %q has no relation", s)
	}
	rtype, rid, ok := strings.Cut(object, ":")
	if !ok {
		t.Fatalf("relationship %q has no resource id", s)
	}
	subjectObject, subjectRelation, _ := strings.Cut(subject, "#")
	stype, sid, ok := strings.Cut(subjectObject, ":")
	if !ok {
		t.Fatalf("relationship %q has no subject id", s)
	}
	return &graph.Relationship{Key: graph.Key{
		ResourceType: rtype, ResourceID: rid, Relation: relation,
		Subject: graph.SubjectRef{Type: stype, ID: sid, Relation: subjectRelation},
	}}
}

// update runs fn in one write transaction and fails the test on an error.
func update(t *testing.T, g *graph.Graph, fn func(tx *graph.Tx) error) graph.Revision {
	t.Helper()
	rev, err := g.Update(testContext(t), fn)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	return rev
}

// touch writes the relationships in one transaction.
func touch(t *testing.T, g *graph.Graph, rels ...*graph.Relationship) graph.Revision {
	t.Helper()
	return update(t, g, func(tx *graph.Tx) error {
		for _, r := range rels {
			tx.Touch(r)
		}
		return nil
	})
}

func snapshotAt(t *testing.T, g *graph.Graph, rev graph.Revision, now time.Time) graph.Snapshot {
	t.Helper()
	snap, err := g.Snapshot(rev, now)
	if err != nil {
		t.Fatalf("snapshot at revision %d: %v", rev, err)
	}
	return snap
}

// keysOf returns the keys of rels as strings, in Scan's order.
func keysOf(rels []*graph.Relationship) []string {
	out := make([]string, 0, len(rels))
	for _, r := range rels {
		out = append(out, r.Key.String())
	}
	return out
}

// scanKeys returns the keys of every relationship visible in snap.
func scanKeys(snap graph.Snapshot) []string { return keysOf(snap.Scan(graph.Filter{})) }

func requireKeys(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

// sameRelationship reports how a differs from b, or "" when they are equal.
// Caveat contexts are compared after a JSON round trip, because stores
// decode JSON numbers as float64.
func sameRelationship(a, b *graph.Relationship) string {
	if a.Key != b.Key {
		return fmt.Sprintf("key %s, want %s", a.Key, b.Key)
	}
	if a.Caveat != b.Caveat {
		return fmt.Sprintf("%s: caveat %q, want %q", a.Key, a.Caveat, b.Caveat)
	}
	if !a.Expiration.Equal(b.Expiration) {
		return fmt.Sprintf("%s: expiration %s, want %s", a.Key, a.Expiration, b.Expiration)
	}
	if ca, cb := normalizeJSON(a.CaveatContext), normalizeJSON(b.CaveatContext); !reflect.DeepEqual(ca, cb) {
		return fmt.Sprintf("%s: caveat context %v, want %v", a.Key, ca, cb)
	}
	return ""
}

func normalizeJSON(m map[string]any) any {
	if len(m) == 0 {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Sprintf("unencodable %v", m)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Sprintf("undecodable %s", b)
	}
	return out
}

// readChanges returns every commit after the given revision, reading
// Changes until it returns nothing more.
func readChanges(t *testing.T, g *graph.Graph, after graph.Revision) []graph.Commit {
	t.Helper()
	var out []graph.Commit
	for {
		n := 0
		err := g.Changes(after, func(c graph.Commit) error {
			out = append(out, c)
			after = c.Revision
			n++
			return nil
		})
		if err != nil {
			t.Fatalf("read changes after revision %d: %v", after, err)
		}
		if n == 0 {
			return out
		}
	}
}

// errPrecondition is the error a test's transaction returns to abort.
var errPrecondition = errors.New("precondition failed")

// waitForRevision waits until g has applied rev.
func waitForRevision(t *testing.T, g *graph.Graph, rev graph.Revision) {
	t.Helper()
	if err := g.WaitForRevision(testContext(t), rev); err != nil {
		t.Fatalf("wait for revision %d: %v", rev, err)
	}
}
