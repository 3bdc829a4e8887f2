package server

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"

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
	// Sum is a checksum of the other fields, so that a cursor edited or
	// damaged in transit is rejected. It has no key, so it does not stop a
	// client that recomputes it. Such a client can only move its own
	// position within the same query, or pick another retained revision,
	// which at_exact_snapshot allows anyway.
	Sum string `json:"s"`
}

// queryDigest hashes a request with its cursor, limit and consistency
// cleared, so pages of one query share a digest.
func queryDigest(m proto.Message) string {
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func (c lookupCursor) checksum() string {
	h := sha256.New()
	h.Write([]byte(strconv.FormatUint(uint64(c.Revision), 10)))
	for _, field := range []string{c.Query, c.After} {
		h.Write([]byte{0})
		h.Write([]byte(field))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func encodeLookupCursor(c lookupCursor) *v1.Cursor {
	c.Sum = c.checksum()
	b, _ := json.Marshal(c)
	return &v1.Cursor{Token: base64.RawURLEncoding.EncodeToString(b)}
}

// maxQuotedCursor is the longest part of a cursor token that an error
// message quotes.
const maxQuotedCursor = 64

// quoteCursor quotes a cursor token for an error message, cut to
// maxQuotedCursor bytes.
func quoteCursor(c *v1.Cursor) string {
	t := c.GetToken()
	if len(t) > maxQuotedCursor {
		return strconv.Quote(t[:maxQuotedCursor]) + "..."
	}
	return strconv.Quote(t)
}

// decodeLookupCursor returns the position in c, or an InvalidArgument
// error that quotes it when c is not a cursor of the query with digest.
// Like decodeToken, it accepts only the base64 that encodeLookupCursor
// produces.
func decodeLookupCursor(c *v1.Cursor, digest string) (lookupCursor, error) {
	var out lookupCursor
	b, err := decodeCanonicalBase64(c.GetToken())
	if err == nil {
		err = json.Unmarshal(b, &out)
	}
	if err != nil || out.After == "" || out.Sum != out.checksum() {
		return lookupCursor{}, invalidArgument("invalid cursor %s: not a cursor issued by this lookup", quoteCursor(c))
	}
	if out.Query != digest {
		return lookupCursor{}, invalidArgument("invalid cursor %s: it was issued for a different request", quoteCursor(c))
	}
	return out, nil
}
