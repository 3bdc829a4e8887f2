package server

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/protobuf/proto"

	"github.com/mandate-iam/mandate/graph"
)

// lookupCursor is the position after the last result of a lookup page. It
// pins the revision, so every page reads the same snapshot, and a digest of
// the query, so a cursor cannot be replayed against another query.
type lookupCursor struct {
	Revision graph.Revision `json:"r"`
	Query    string         `json:"q"`
	After    string         `json:"a"`
}

// queryDigest hashes a request with its cursor, limit and consistency
// cleared, so pages of one query share a digest.
func queryDigest(m proto.Message) string {
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func encodeLookupCursor(c lookupCursor) *v1.Cursor {
	b, _ := json.Marshal(c)
	return &v1.Cursor{Token: base64.RawURLEncoding.EncodeToString(b)}
}

func decodeLookupCursor(c *v1.Cursor, digest string) (lookupCursor, error) {
	var out lookupCursor
	b, err := base64.RawURLEncoding.DecodeString(c.GetToken())
	if err == nil {
		err = json.Unmarshal(b, &out)
	}
	if err != nil || out.After == "" {
		return lookupCursor{}, invalidArgument("invalid cursor %q: not a cursor issued by this lookup", c.GetToken())
	}
	if out.Query != digest {
		return lookupCursor{}, invalidArgument("invalid cursor %q: it was issued for a different request", c.GetToken())
	}
	return out, nil
}
