package server

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/mandate-iam/mandate/graph"
)

// readCursor is the position after the last relationship a page returned.
// It pins the revision so every page reads the same snapshot, and the
// filter so a cursor cannot be replayed against another query.
type readCursor struct {
	Revision graph.Revision `json:"r"`
	Filter   string         `json:"f"`
	After    [6]string      `json:"a"`
}

func filterDigest(f *v1.RelationshipFilter) string {
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(f)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func encodeReadCursor(c readCursor) *v1.Cursor {
	b, _ := json.Marshal(c)
	return &v1.Cursor{Token: base64.RawURLEncoding.EncodeToString(b)}
}

func decodeReadCursor(c *v1.Cursor, f *v1.RelationshipFilter) (readCursor, error) {
	var out readCursor
	b, err := base64.RawURLEncoding.DecodeString(c.GetToken())
	if err == nil {
		err = json.Unmarshal(b, &out)
	}
	if err != nil {
		return out, invalidArgument("invalid cursor %q: not a cursor issued by ReadRelationships", c.GetToken())
	}
	if out.Filter != filterDigest(f) {
		return out, invalidArgument("invalid cursor %q: it was issued for a different filter", c.GetToken())
	}
	return out, nil
}

func keyParts(k graph.Key) [6]string {
	return [6]string{k.ResourceType, k.ResourceID, k.Relation, k.Subject.Type, k.Subject.ID, k.Subject.Relation}
}

func keyFromParts(p [6]string) graph.Key {
	return graph.Key{ResourceType: p[0], ResourceID: p[1], Relation: p[2],
		Subject: graph.SubjectRef{Type: p[3], ID: p[4], Relation: p[5]}}
}

func (ps *permissionsService) ReadRelationships(req *v1.ReadRelationshipsRequest, stream grpc.ServerStreamingServer[v1.ReadRelationshipsResponse]) error {
	ctx := stream.Context()
	if err := requireAdmin(ctx, "ReadRelationships"); err != nil {
		return err
	}
	if err := validateProto(req); err != nil {
		return err
	}
	limit := int(req.GetOptionalLimit())
	if limit > ps.s.cfg.MaxReadLimit {
		return invalidArgument("read relationships: limit %d exceeds the maximum of %d", limit, ps.s.cfg.MaxReadLimit)
	}
	v, err := ps.s.viewFor(ctx, req.GetConsistency())
	if err != nil {
		return err
	}
	var after *graph.Key
	if c := req.GetOptionalCursor(); c != nil {
		cur, err := decodeReadCursor(c, req.GetRelationshipFilter())
		if err != nil {
			return err
		}
		if v.snap, err = ps.s.graph.Snapshot(cur.Revision, v.snap.Now); err != nil {
			return err
		}
		if v.schema, err = ps.s.schemas.get(ctx, v.snap.SchemaText); err != nil {
			return err
		}
		k := keyFromParts(cur.After)
		after = &k
	}
	if err := validateFilter(v.schema, req.GetRelationshipFilter()); err != nil {
		return err
	}
	rels := v.snap.Scan(filterFromProto(req.GetRelationshipFilter()))
	token := encodeToken(v.snap.Revision)
	digest := filterDigest(req.GetRelationshipFilter())
	sent := 0
	for _, r := range rels {
		if after != nil && !graph.LessKey(*after, r.Key) {
			continue
		}
		if limit > 0 && sent >= limit {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		resp := &v1.ReadRelationshipsResponse{
			ReadAt:       token,
			Relationship: relationshipToProto(r),
			AfterResultCursor: encodeReadCursor(readCursor{
				Revision: v.snap.Revision, Filter: digest, After: keyParts(r.Key),
			}),
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
		sent++
	}
	return nil
}
