package server

import (
	"context"
	"strings"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

func FuzzDecodeToken(f *testing.F) {
	f.Add(encodeToken(42).GetToken())
	f.Add("")
	f.Add("bWR0MTo=")
	f.Add("bWR0MTowMQ")
	f.Fuzz(func(t *testing.T, token string) {
		rev, err := decodeToken(&v1.ZedToken{Token: token})
		if err != nil {
			return
		}
		if again := encodeToken(rev).GetToken(); again != token {
			t.Fatalf("token %q decodes to %d, which encodes to %q", token, rev, again)
		}
	})
}

func FuzzDecodeCursors(f *testing.F) {
	filter := &v1.RelationshipFilter{ResourceType: "document"}
	f.Add(encodeReadCursor(readCursor{Revision: 3, Filter: filterDigest(filter)}).GetToken())
	f.Add(encodeLookupCursor(lookupCursor{Revision: 3, Query: "abc", After: "doc1"}).GetToken())
	f.Add("")
	f.Add("e30")
	f.Fuzz(func(t *testing.T, token string) {
		c := &v1.Cursor{Token: token}
		if cur, err := decodeReadCursor(c, filter); err == nil && cur.Filter != filterDigest(filter) {
			t.Fatalf("cursor %q accepted for another filter", token)
		}
		if cur, err := decodeLookupCursor(c, "abc"); err == nil && (cur.Query != "abc" || cur.After == "") {
			t.Fatalf("cursor %q accepted with query %q after %q", token, cur.Query, cur.After)
		}
	})
}

const fuzzSchema = `
use expiration

definition user {}
caveat only_on(day string) {
	day == "monday"
}
definition group {
	relation member: user | group#member
}
definition document {
	relation viewer: user | group#member | user:* | user with only_on | user with expiration
	permission view = viewer
}`

func FuzzValidateRelationship(f *testing.F) {
	s, err := schema.Compile(context.Background(), fuzzSchema)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("document", "d1", "viewer", "user", "u1", "", "")
	f.Add("document", "d1", "view", "group", "g1", "member", "only_on")
	f.Add("group", "g1", "member", "user", "*", "", "")
	f.Add("nope", "", "", "", "", "...", "missing")
	f.Fuzz(func(t *testing.T, rt, rid, rel, st, sid, srel, caveat string) {
		r := &graph.Relationship{
			Key: graph.Key{ResourceType: rt, ResourceID: rid, Relation: rel,
				Subject: graph.SubjectRef{Type: st, ID: sid, Relation: subjectRelation(srel)}},
			Caveat: caveat,
		}
		err := validateRelationship(s, r, false)
		if err != nil {
			if msg := err.Error(); !strings.Contains(msg, r.Key.String()) && !strings.Contains(msg, "schema") {
				t.Fatalf("error %q does not name the relationship %s", msg, r.Key)
			}
			return
		}
		if s.Relation(rt, rel) == nil || s.Relation(rt, rel).IsPermission() {
			t.Fatalf("accepted %s on a missing relation or a permission", r.Key)
		}
	})
}
