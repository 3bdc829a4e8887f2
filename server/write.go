package server

import (
	"context"
	"fmt"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"

	"github.com/mandate-iam/mandate/audit"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

type permissionsService struct {
	v1.UnimplementedPermissionsServiceServer
	s *Server
}

// headSchema returns the schema in force at the head revision.
func (ps *permissionsService) headSchema(ctx context.Context, snap graph.Snapshot) (*schema.Schema, error) {
	return ps.s.schemas.get(ctx, snap.SchemaText)
}

func (ps *permissionsService) WriteRelationships(ctx context.Context, req *v1.WriteRelationshipsRequest) (*v1.WriteRelationshipsResponse, error) {
	if err := ps.s.authorizeWrite(ctx, "WriteRelationships"); err != nil {
		return nil, err
	}
	if err := validateProto(req); err != nil {
		return nil, err
	}
	if err := rejectCorePreconditions(ctx, req.GetOptionalPreconditions()); err != nil {
		return nil, err
	}
	updates := req.GetUpdates()
	if len(updates) == 0 {
		return nil, invalidArgument("write relationships: no updates given")
	}
	if max := ps.s.cfg.MaxUpdatesPerWrite; len(updates) > max || len(req.GetOptionalPreconditions()) > max {
		return nil, invalidArgument("write relationships: %d updates and %d preconditions exceed the limit of %d each",
			len(updates), len(req.GetOptionalPreconditions()), max)
	}
	type parsed struct {
		op  v1.RelationshipUpdate_Operation
		rel *graph.Relationship
	}
	items := make([]parsed, 0, len(updates))
	seen := make(map[graph.Key]struct{}, len(updates))
	for _, u := range updates {
		if err := checkTimestamp("expiration of "+describeProtoRelationship(u.GetRelationship()), u.GetRelationship().GetOptionalExpiresAt()); err != nil {
			return nil, err
		}
		rel := relationshipFromProto(u.GetRelationship())
		if _, dup := seen[rel.Key]; dup {
			return nil, invalidArgument("write relationships: relationship %s appears in more than one update", rel.Key)
		}
		seen[rel.Key] = struct{}{}
		if err := rejectCoreWrite(ctx, rel.ResourceType); err != nil {
			return nil, err
		}
		if err := rejectMirrorWrite(ctx, rel.ResourceType, rel.Relation, rel.Subject.Type); err != nil {
			return nil, err
		}
		if u.GetOperation() == v1.RelationshipUpdate_OPERATION_UNSPECIFIED {
			return nil, invalidArgument("write relationships: update of %s has no operation", rel.Key)
		}
		items = append(items, parsed{op: u.GetOperation(), rel: rel})
	}

	rev, err := ps.s.graph.Update(ctx, func(tx *graph.Tx) error {
		sch, err := ps.headSchema(ctx, tx.Snapshot())
		if err != nil {
			return err
		}
		if err := requireSchema(sch); err != nil {
			return err
		}
		for _, it := range items {
			if err := validateRelationship(sch, it.rel, it.op == v1.RelationshipUpdate_OPERATION_DELETE); err != nil {
				return err
			}
		}
		if err := checkPreconditions(sch, tx.Snapshot(), req.GetOptionalPreconditions()); err != nil {
			return err
		}
		for _, it := range items {
			switch it.op {
			case v1.RelationshipUpdate_OPERATION_CREATE:
				if err := tx.Create(it.rel); err != nil {
					return fmt.Errorf("write relationships: %w", err)
				}
			case v1.RelationshipUpdate_OPERATION_TOUCH:
				tx.Touch(it.rel)
			case v1.RelationshipUpdate_OPERATION_DELETE:
				tx.Delete(it.rel.Key)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rec := ps.s.eventRecord(ctx, audit.KindWrite, uint64(rev))
	rec.Detail = map[string]string{"updates": fmt.Sprint(len(items))}
	if len(items) > 0 {
		rec.Resource = items[0].rel.ResourceType + ":" + items[0].rel.ResourceID
		rec.Detail["first"] = items[0].op.String() + " " + items[0].rel.Key.String()
	}
	ps.s.recordEvent(ctx, rec)
	return &v1.WriteRelationshipsResponse{WrittenAt: encodeToken(rev)}, nil
}

// checkPreconditions evaluates the preconditions of a write or delete
// against the head, inside its transaction.
func checkPreconditions(sch *schema.Schema, snap graph.Snapshot, preconditions []*v1.Precondition) error {
	for _, p := range preconditions {
		f := p.GetFilter()
		if err := validateFilter(sch, f); err != nil {
			return err
		}
		matched := len(snap.Scan(filterFromProto(f))) > 0
		switch p.GetOperation() {
		case v1.Precondition_OPERATION_MUST_MATCH:
			if !matched {
				return failedPrecondition("unable to satisfy write precondition: no relationship matches filter %s", describeFilter(f))
			}
		case v1.Precondition_OPERATION_MUST_NOT_MATCH:
			if matched {
				return failedPrecondition("unable to satisfy write precondition: a relationship matches filter %s", describeFilter(f))
			}
		default:
			return invalidArgument("precondition on filter %s has no operation", describeFilter(f))
		}
	}
	return nil
}

func (ps *permissionsService) DeleteRelationships(ctx context.Context, req *v1.DeleteRelationshipsRequest) (*v1.DeleteRelationshipsResponse, error) {
	if err := ps.s.authorizeWrite(ctx, "DeleteRelationships"); err != nil {
		return nil, err
	}
	if err := validateProto(req); err != nil {
		return nil, err
	}
	if len(req.GetOptionalPreconditions()) > ps.s.cfg.MaxUpdatesPerWrite {
		return nil, invalidArgument("delete relationships: %d preconditions exceed the limit of %d",
			len(req.GetOptionalPreconditions()), ps.s.cfg.MaxUpdatesPerWrite)
	}
	limit := int(req.GetOptionalLimit())
	if limit > ps.s.cfg.MaxReadLimit {
		return nil, invalidArgument("delete relationships: limit %d exceeds the maximum of %d", limit, ps.s.cfg.MaxReadLimit)
	}
	if err := rejectCorePreconditions(ctx, req.GetOptionalPreconditions()); err != nil {
		return nil, err
	}
	filter := filterFromProto(req.GetRelationshipFilter())
	if err := rejectCoreWrite(ctx, filter.ResourceType); err != nil {
		return nil, err
	}
	subjectType := ""
	if filter.Subject != nil {
		subjectType = filter.Subject.Type
	}
	if err := rejectMirrorWrite(ctx, filter.ResourceType, filter.Relation, subjectType); err != nil {
		return nil, err
	}
	var deleted int
	partial := false
	rev, err := ps.s.graph.Update(ctx, func(tx *graph.Tx) error {
		sch, err := ps.headSchema(ctx, tx.Snapshot())
		if err != nil {
			return err
		}
		if err := validateFilter(sch, req.GetRelationshipFilter()); err != nil {
			return err
		}
		if err := checkPreconditions(sch, tx.Snapshot(), req.GetOptionalPreconditions()); err != nil {
			return err
		}
		matches := tx.Snapshot().Scan(filter)
		if limit > 0 && len(matches) > limit {
			if !req.GetOptionalAllowPartialDeletions() {
				return failedPrecondition("delete relationships: %d relationships match filter %s, more than the limit of %d; set optional_allow_partial_deletions to delete them in batches",
					len(matches), describeFilter(req.GetRelationshipFilter()), limit)
			}
			matches, partial = matches[:limit], true
		}
		for _, r := range matches {
			tx.Delete(r.Key)
		}
		deleted = len(matches)
		return nil
	})
	if err != nil {
		return nil, err
	}
	rec := ps.s.eventRecord(ctx, audit.KindWrite, uint64(rev))
	rec.Detail = map[string]string{"deleted": fmt.Sprint(deleted), "filter": describeFilter(req.GetRelationshipFilter())}
	if filter.ResourceType != "" && filter.ResourceID != "" {
		rec.Resource = filter.ResourceType + ":" + filter.ResourceID
	}
	ps.s.recordEvent(ctx, rec)
	progress := v1.DeleteRelationshipsResponse_DELETION_PROGRESS_COMPLETE
	if partial {
		progress = v1.DeleteRelationshipsResponse_DELETION_PROGRESS_PARTIAL
	}
	return &v1.DeleteRelationshipsResponse{
		DeletedAt:                 encodeToken(rev),
		DeletionProgress:          progress,
		RelationshipsDeletedCount: uint64(deleted),
	}, nil
}
