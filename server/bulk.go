package server

import (
	"errors"
	"fmt"
	"io"
	"sort"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc"

	"github.com/mandate-iam/mandate/audit"
	"github.com/mandate-iam/mandate/graph"
)

// maxImportRelationships bounds one ImportBulkRelationships call, which is
// committed as a single transaction held in memory.
const maxImportRelationships = 1_000_000

// ImportBulkRelationships receives every batch first and then commits all
// relationships in one transaction, so the write lock is never held while
// waiting on the client. Any relationship that already exists fails the
// whole import, and nothing is written.
func (ps *permissionsService) ImportBulkRelationships(stream grpc.ClientStreamingServer[v1.ImportBulkRelationshipsRequest, v1.ImportBulkRelationshipsResponse]) error {
	ctx := stream.Context()
	if err := ps.s.authorizeWrite(ctx, "ImportBulkRelationships"); err != nil {
		return err
	}
	var rels []*graph.Relationship
	seen := make(map[graph.Key]struct{})
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := validateProto(req); err != nil {
			return err
		}
		for _, r := range req.GetRelationships() {
			if err := checkTimestamp("expiration of "+describeProtoRelationship(r), r.GetOptionalExpiresAt()); err != nil {
				return err
			}
			rel := relationshipFromProto(r)
			if err := rejectCoreWrite(ctx, rel.ResourceType); err != nil {
				return err
			}
			if err := rejectMirrorWrite(ctx, rel.ResourceType, rel.Relation, rel.Subject.Type); err != nil {
				return err
			}
			if _, dup := seen[rel.Key]; dup {
				return invalidArgument("import bulk relationships: relationship %s appears more than once", rel.Key)
			}
			seen[rel.Key] = struct{}{}
			rels = append(rels, rel)
		}
		if len(rels) > maxImportRelationships {
			return invalidArgument("import bulk relationships: more than %d relationships in one call; split the import", maxImportRelationships)
		}
	}
	_, err := ps.s.graph.Update(ctx, func(tx *graph.Tx) error {
		sch, err := ps.headSchema(ctx, tx.Snapshot())
		if err != nil {
			return err
		}
		for _, rel := range rels {
			if err := validateRelationship(sch, rel, false); err != nil {
				return err
			}
			if err := tx.Create(rel); err != nil {
				return fmt.Errorf("import bulk relationships: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	rec := ps.s.eventRecord(ctx, audit.KindWrite, uint64(ps.s.graph.Head()))
	rec.Detail = map[string]string{"imported": fmt.Sprint(len(rels))}
	ps.s.recordEvent(ctx, rec)
	return stream.SendAndClose(&v1.ImportBulkRelationshipsResponse{NumLoaded: uint64(len(rels))})
}

// exportBatchSize is the default number of relationships per export
// message.
const exportBatchSize = 1000

// ExportBulkRelationships streams every relationship that passes the
// optional filter, in key order, in batches that each carry a cursor to
// resume after them at the same revision.
func (ps *permissionsService) ExportBulkRelationships(req *v1.ExportBulkRelationshipsRequest, stream grpc.ServerStreamingServer[v1.ExportBulkRelationshipsResponse]) error {
	ctx := stream.Context()
	if err := requireAdmin(ctx, "ExportBulkRelationships"); err != nil {
		return err
	}
	if err := validateProto(req); err != nil {
		return err
	}
	batch := int(req.GetOptionalLimit())
	if batch == 0 {
		batch = exportBatchSize
	}
	if batch > ps.s.cfg.MaxReadLimit {
		return invalidArgument("export bulk relationships: limit %d exceeds the maximum of %d", batch, ps.s.cfg.MaxReadLimit)
	}
	v, err := ps.s.viewFor(ctx, req.GetConsistency())
	if err != nil {
		return err
	}
	f := req.GetOptionalRelationshipFilter()
	digest := filterDigest(f)
	var after *graph.Key
	if c := req.GetOptionalCursor(); c != nil {
		cur, err := decodeReadCursor(c, f)
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
	var filter graph.Filter
	if f != nil {
		if err := validateFilter(v.schema, f); err != nil {
			return err
		}
		filter = filterFromProto(f)
	}
	rels := v.snap.Scan(filter)
	start := 0
	if after != nil {
		start = sort.Search(len(rels), func(i int) bool { return graph.LessKey(*after, rels[i].Key) })
	}
	for i := start; i < len(rels); i += batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		end := min(i+batch, len(rels))
		resp := &v1.ExportBulkRelationshipsResponse{Relationships: make([]*v1.Relationship, 0, end-i)}
		for _, r := range rels[i:end] {
			resp.Relationships = append(resp.Relationships, relationshipToProto(r))
		}
		resp.AfterResultCursor = encodeReadCursor(readCursor{
			Revision: v.snap.Revision, Filter: digest, After: keyParts(rels[end-1].Key),
		})
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
	return nil
}
