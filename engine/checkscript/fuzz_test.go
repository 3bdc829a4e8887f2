package checkscript

import (
	"reflect"
	"testing"
	"time"

	"github.com/mandate-iam/mandate/graph"
)

// FuzzRelationship feeds arbitrary text to the relationship parser. What
// it accepts must print back to text that parses to the same relationship,
// and must come back unchanged from the change log encoding that every
// durable store writes.
func FuzzRelationship(f *testing.F) {
	f.Add("document:d1#viewer@user:u1")
	f.Add("document:d1#viewer@group:g1#member")
	f.Add("document:d1#viewer@user:*")
	f.Add(`document:d1#viewer@user:u1[only_on:{"day":"mon","n":3}]`)
	f.Add("document:d1#viewer@user:u1[expiration:2030-01-02T03:04:05Z]")
	f.Add(`document:d1#viewer@user:u1[c:{"a":[1,"x",null]}][expiration:2030-01-02T03:04:05Z]`)
	f.Add("document:d1#viewer@user:u1#...")
	f.Add("a/b:c|d#e@f:g")
	f.Fuzz(func(t *testing.T, text string) {
		r, err := Relationship(text)
		if err != nil {
			return
		}
		if r.ResourceType == "" || r.ResourceID == "" || r.Relation == "" || r.Subject.Type == "" || r.Subject.ID == "" {
			t.Fatalf("Relationship(%q) accepted an empty part: %+v", text, r.Key)
		}

		again, err := Relationship(r.String())
		if err != nil {
			t.Fatalf("Relationship(%q) = %s, which does not parse: %v", text, r, err)
		}
		if again.Key != r.Key || again.Caveat != r.Caveat || !again.Expiration.Equal(r.Expiration) {
			t.Fatalf("Relationship(%q) = %s, which parses back as %s", text, r, again)
		}

		data, err := graph.MarshalCommit(graph.Commit{
			Revision: 7, At: time.Unix(1, 0),
			Changes: []graph.Change{{Op: graph.OpTouch, Relationship: r}},
		})
		if err != nil {
			t.Fatalf("encode %s: %v", r, err)
		}
		commit, err := graph.UnmarshalCommit(7, data)
		if err != nil {
			t.Fatalf("decode %s: %v", r, err)
		}
		if len(commit.Changes) != 1 {
			t.Fatalf("decode %s: %d changes, want 1", r, len(commit.Changes))
		}
		got := commit.Changes[0].Relationship
		if got.Key != r.Key || got.Caveat != r.Caveat || !got.Expiration.Equal(r.Expiration) ||
			!reflect.DeepEqual(got.CaveatContext, r.CaveatContext) {
			t.Fatalf("change log round trip of %q:\n got %s %v\nwant %s %v", text, got, got.CaveatContext, r, r.CaveatContext)
		}
	})
}
