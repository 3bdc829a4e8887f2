package server

import (
	"context"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/mandate-iam/mandate/audit"
	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/graph"
	grpcstatus "google.golang.org/grpc/status"
)

func permissionshipOf(m engine.Membership) v1.CheckPermissionResponse_Permissionship {
	switch m {
	case engine.HasPermission:
		return v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION
	case engine.ConditionalPermission:
		return v1.CheckPermissionResponse_PERMISSIONSHIP_CONDITIONAL_PERMISSION
	default:
		return v1.CheckPermissionResponse_PERMISSIONSHIP_NO_PERMISSION
	}
}

func partialInfo(r engine.Result) *v1.PartialCaveatInfo {
	if r.Membership != engine.ConditionalPermission {
		return nil
	}
	return &v1.PartialCaveatInfo{MissingRequiredContext: r.MissingContext}
}

// checkInput is one permission question.
type checkInput struct {
	resource   graph.ObjectRef
	permission string
	subject    graph.SubjectRef
	context    map[string]any
}

// check validates and answers one question in the given view, under the
// identity policy when the schema has Mandate's agent types.
func (s *Server) check(v view, in checkInput) (engine.ChainResult, error) {
	if err := validatePermissionQuery(v.schema, in.resource.Type, in.permission, in.subject); err != nil {
		return engine.ChainResult{}, err
	}
	if err := rejectWildcardSubject(in.subject); err != nil {
		return engine.ChainResult{}, err
	}
	return engine.CheckChain(v.schema, v.snap, s.cfg.Limits, engine.CheckRequest{
		Resource:   in.resource,
		Permission: in.permission,
		Subject:    in.subject,
		Context:    in.context,
		Policy:     s.checkPolicy(v),
		Explain:    s.cfg.Audit != nil,
	})
}

// checkPolicy returns s.policy(v), or nil without reading the head when
// the schema has no agent types, for which the policy is nil anyway.
func (s *Server) checkPolicy(v view) *engine.Policy {
	if !v.schema.HasAgentTypes() {
		return nil
	}
	return s.policy(v)
}

// checkOne authorizes the caller for the subject, then answers the check.
// It returns the audit record of the decision, not yet appended, or a nil
// record when the server has no audit log.
func (s *Server) checkOne(ctx context.Context, v view, resource *v1.ObjectReference, permission string, subject *v1.SubjectReference, caveatContext *structpb.Struct) (engine.Result, *audit.Record, error) {
	in := checkInput{
		resource:   objectFromProto(resource),
		permission: permission,
		subject:    subjectFromProto(subject),
		context:    contextMap(caveatContext),
	}
	if err := s.authorizeSubject(ctx, v.snap, in.subject); err != nil {
		return engine.Result{}, nil, err
	}
	res, err := s.check(v, in)
	if err != nil {
		return engine.Result{}, nil, err
	}
	if s.cfg.Audit == nil {
		return res.Result, nil, nil
	}
	return res.Result, describeCheck(s.newRecord(ctx, audit.KindCheck, v), in, res), nil
}

func (ps *permissionsService) CheckPermission(ctx context.Context, req *v1.CheckPermissionRequest) (*v1.CheckPermissionResponse, error) {
	if err := validateProto(req); err != nil {
		return nil, err
	}
	v, err := ps.s.viewFor(ctx, req.GetConsistency())
	if err != nil {
		return nil, err
	}
	res, rec, err := ps.s.checkOne(ctx, v, req.GetResource(), req.GetPermission(), req.GetSubject(), req.GetContext())
	if err != nil {
		return nil, err
	}
	if err := ps.s.recordDecisions(ctx, rec); err != nil {
		return nil, err
	}
	return &v1.CheckPermissionResponse{
		CheckedAt:         encodeToken(v.snap.Revision),
		Permissionship:    permissionshipOf(res.Membership),
		PartialCaveatInfo: partialInfo(res),
	}, nil
}

// CheckBulkPermissions answers every item at one revision. An item that
// fails gets its own error in its pair; the call fails only when the
// request as a whole is invalid.
func (ps *permissionsService) CheckBulkPermissions(ctx context.Context, req *v1.CheckBulkPermissionsRequest) (*v1.CheckBulkPermissionsResponse, error) {
	if err := validateProto(req); err != nil {
		return nil, err
	}
	if n := len(req.GetItems()); n > ps.s.cfg.MaxChecksPerBulk {
		return nil, invalidArgument("check bulk permissions: %d items exceed the limit of %d", n, ps.s.cfg.MaxChecksPerBulk)
	}
	v, err := ps.s.viewFor(ctx, req.GetConsistency())
	if err != nil {
		return nil, err
	}
	pairs := make([]*v1.CheckBulkPermissionsPair, 0, len(req.GetItems()))
	records := make([]*audit.Record, 0, len(req.GetItems()))
	for _, item := range req.GetItems() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pair := &v1.CheckBulkPermissionsPair{Request: item}
		res, rec, err := ps.s.checkOne(ctx, v, item.GetResource(), item.GetPermission(), item.GetSubject(), item.GetContext())
		if rec != nil {
			records = append(records, rec)
		}
		if err != nil {
			st, _ := grpcstatus.FromError(toStatus(err))
			pair.Response = &v1.CheckBulkPermissionsPair_Error{Error: &status.Status{
				Code: int32(st.Code()), Message: st.Message(),
			}}
		} else {
			pair.Response = &v1.CheckBulkPermissionsPair_Item{Item: &v1.CheckBulkPermissionsResponseItem{
				Permissionship:    permissionshipOf(res.Membership),
				PartialCaveatInfo: partialInfo(res),
			}}
		}
		pairs = append(pairs, pair)
	}
	if err := ps.s.recordDecisions(ctx, records...); err != nil {
		return nil, err
	}
	return &v1.CheckBulkPermissionsResponse{CheckedAt: encodeToken(v.snap.Revision), Pairs: pairs}, nil
}
