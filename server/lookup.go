package server

import (
	"context"
	"errors"
	"fmt"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/mandate-iam/mandate/audit"
	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/graph"
)

func lookupPermissionship(m engine.Membership) v1.LookupPermissionship {
	if m == engine.ConditionalPermission {
		return v1.LookupPermissionship_LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION
	}
	return v1.LookupPermissionship_LOOKUP_PERMISSIONSHIP_HAS_PERMISSION
}

// pagedView returns the view a lookup page reads: the cursor's revision
// when a cursor is given, otherwise the one the consistency selects. A
// cursor whose revision was garbage-collected fails with
// FailedPrecondition, and one whose revision this datastore never reached
// with InvalidArgument.
func (s *Server) pagedView(ctx context.Context, c *v1.Consistency, cursor *v1.Cursor, digest string) (view, string, error) {
	v, err := s.viewFor(ctx, c)
	if err != nil || cursor == nil {
		return v, "", err
	}
	cur, err := decodeLookupCursor(cursor, digest)
	if err != nil {
		return view{}, "", err
	}
	if err := s.graph.WaitForRevision(ctx, cur.Revision); err != nil {
		if errors.Is(err, graph.ErrRevisionUnavailable) {
			return view{}, "", invalidArgument("invalid cursor %s: revision %d was not issued by this datastore: %v",
				quoteCursor(cursor), cur.Revision, err)
		}
		return view{}, "", freshnessError(cur.Revision, err)
	}
	if v.snap, err = s.graph.Snapshot(cur.Revision, v.snap.Now); err != nil {
		if errors.Is(err, graph.ErrRevisionUnavailable) {
			return view{}, "", failedPrecondition("cursor %s is for revision %d, which is no longer retained: %v; restart the lookup without a cursor",
				quoteCursor(cursor), cur.Revision, err)
		}
		return view{}, "", err
	}
	if v.schema, err = s.schemas.get(ctx, v.snap.SchemaText); err != nil {
		return view{}, "", err
	}
	return v, cur.After, nil
}

func (s *Server) checkLookupLimit(limit uint32) error {
	if int(limit) > s.cfg.MaxReadLimit {
		return invalidArgument("limit %d exceeds the maximum of %d", limit, s.cfg.MaxReadLimit)
	}
	return nil
}

func rejectWildcardSubject(subject graph.SubjectRef) error {
	if subject.ID == graph.Wildcard {
		return invalidArgument("subject %s is a wildcard: ask about a concrete subject", subject)
	}
	return nil
}

func (ps *permissionsService) LookupResources(req *v1.LookupResourcesRequest, stream grpc.ServerStreamingServer[v1.LookupResourcesResponse]) error {
	ctx := stream.Context()
	if err := validateProto(req); err != nil {
		return err
	}
	if err := ps.s.checkLookupLimit(req.GetOptionalLimit()); err != nil {
		return err
	}
	query := proto.Clone(req).(*v1.LookupResourcesRequest)
	query.OptionalCursor, query.OptionalLimit, query.Consistency = nil, 0, nil
	digest := queryDigest(query)
	v, after, err := ps.s.pagedView(ctx, req.GetConsistency(), req.GetOptionalCursor(), digest)
	if err != nil {
		return err
	}
	subject := subjectFromProto(req.GetSubject())
	if err := validatePermissionQuery(v.schema, req.GetResourceObjectType(), req.GetPermission(), subject); err != nil {
		return err
	}
	if err := rejectWildcardSubject(subject); err != nil {
		return err
	}
	if err := ps.s.authorizeSubject(ctx, v.snap, subject); err != nil {
		return err
	}
	results, _, err := engine.LookupResources(v.schema, v.snap, ps.s.cfg.Limits, engine.LookupResourcesRequest{
		ResourceType: req.GetResourceObjectType(),
		Permission:   req.GetPermission(),
		Subject:      subject,
		Context:      contextMap(req.GetContext()),
		After:        after,
		Limit:        int(req.GetOptionalLimit()),
		Policy:       ps.s.policy(v),
	})
	if err != nil {
		return err
	}
	rec := ps.s.newRecord(ctx, audit.KindLookupResources, v)
	rec.Resource, rec.Permission, rec.Subject = req.GetResourceObjectType(), req.GetPermission(), subject.String()
	rec.Result = fmt.Sprintf("%d resources", len(results))
	if err := ps.s.recordDecisions(ctx, rec); err != nil {
		return err
	}
	token := encodeToken(v.snap.Revision)
	for _, r := range results {
		resp := &v1.LookupResourcesResponse{
			LookedUpAt:        token,
			ResourceObjectId:  r.ID,
			Permissionship:    lookupPermissionship(r.Result.Membership),
			PartialCaveatInfo: partialInfo(r.Result),
			AfterResultCursor: encodeLookupCursor(lookupCursor{Revision: v.snap.Revision, Query: digest, After: r.ID}),
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
	return nil
}

func resolvedSubject(r engine.SubjectResult) *v1.ResolvedSubject {
	return &v1.ResolvedSubject{
		SubjectObjectId:   r.ID,
		Permissionship:    lookupPermissionship(r.Result.Membership),
		PartialCaveatInfo: partialInfo(r.Result),
	}
}

// LookupSubjects streams the subjects with the permission, the wildcard
// first. It pages concrete subjects by optional_concrete_limit and
// optional_cursor. SpiceDB v1.56.2 rejects a concrete limit with
// Unimplemented (internal/services/v1/permissions.go), so this paging is
// Mandate's own.
func (ps *permissionsService) LookupSubjects(req *v1.LookupSubjectsRequest, stream grpc.ServerStreamingServer[v1.LookupSubjectsResponse]) error {
	ctx := stream.Context()
	if err := requireAdmin(ctx, "LookupSubjects"); err != nil {
		return err
	}
	if err := validateProto(req); err != nil {
		return err
	}
	if err := ps.s.checkLookupLimit(req.GetOptionalConcreteLimit()); err != nil {
		return err
	}
	query := proto.Clone(req).(*v1.LookupSubjectsRequest)
	query.OptionalCursor, query.OptionalConcreteLimit, query.Consistency = nil, 0, nil
	digest := queryDigest(query)
	v, after, err := ps.s.pagedView(ctx, req.GetConsistency(), req.GetOptionalCursor(), digest)
	if err != nil {
		return err
	}
	subjectRelation := subjectRelation(req.GetOptionalSubjectRelation())
	probe := graph.SubjectRef{Type: req.GetSubjectObjectType(), Relation: subjectRelation}
	resource := objectFromProto(req.GetResource())
	if err := validatePermissionQuery(v.schema, resource.Type, req.GetPermission(), probe); err != nil {
		return err
	}
	results, _, err := engine.LookupSubjects(v.schema, v.snap, ps.s.cfg.Limits, engine.LookupSubjectsRequest{
		Resource:        resource,
		Permission:      req.GetPermission(),
		SubjectType:     req.GetSubjectObjectType(),
		SubjectRelation: subjectRelation,
		Context:         contextMap(req.GetContext()),
		After:           after,
		Limit:           int(req.GetOptionalConcreteLimit()),
		Policy:          ps.s.policy(v),
	})
	if err != nil {
		return err
	}
	rec := ps.s.newRecord(ctx, audit.KindLookupSubjects, v)
	rec.Resource, rec.Permission = resource.Type+":"+resource.ID, req.GetPermission()
	rec.Subject = req.GetSubjectObjectType()
	rec.Result = fmt.Sprintf("%d subjects", len(results))
	if err := ps.s.recordDecisions(ctx, rec); err != nil {
		return err
	}
	token := encodeToken(v.snap.Revision)
	for _, r := range results {
		if r.ID == graph.Wildcard && req.GetWildcardOption() == v1.LookupSubjectsRequest_WILDCARD_OPTION_EXCLUDE_WILDCARDS {
			continue
		}
		resp := &v1.LookupSubjectsResponse{
			LookedUpAt:        token,
			Subject:           resolvedSubject(r),
			SubjectObjectId:   r.ID,
			Permissionship:    lookupPermissionship(r.Result.Membership),
			PartialCaveatInfo: partialInfo(r.Result),
		}
		for _, ex := range r.Excluded {
			resp.ExcludedSubjects = append(resp.ExcludedSubjects, resolvedSubject(ex))
			resp.ExcludedSubjectIds = append(resp.ExcludedSubjectIds, ex.ID)
		}
		if r.ID != graph.Wildcard {
			resp.AfterResultCursor = encodeLookupCursor(lookupCursor{Revision: v.snap.Revision, Query: digest, After: r.ID})
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
	return nil
}
