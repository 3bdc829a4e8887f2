package server

import (
	"context"
	"errors"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
	"github.com/mandate-iam/mandate/audit"
	"github.com/mandate-iam/mandate/delegation"
	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/identity"
	"github.com/mandate-iam/mandate/schema"
)

type delegationService struct {
	mandatev1.UnimplementedDelegationServiceServer
	s *Server
}

// policy returns the engine policy for a view: the identity gate and
// trusted context, and delegation chains. Agent states, the operational
// state and delegations are read at the head even when the relationships
// are read at an older revision, so a token from before a suspension,
// an incident or a revocation cannot bring a right back.
func (s *Server) policy(v view) *engine.Policy {
	head := s.graph.HeadSnapshot(v.snap.Now)
	return delegation.Extend(identity.Policy(v.schema, head, v.snap.Now), v.schema, head, v.snap.Now)
}

func delegationStatus(err error) error {
	switch {
	case errors.Is(err, delegation.ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, delegation.ErrNotHeld):
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.Is(err, delegation.ErrLimit):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, delegation.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, delegation.ErrExists):
		return status.Error(codes.AlreadyExists, err.Error())
	}
	return err
}

func timestampOrNil(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func delegationToProto(d *delegation.Delegation) *mandatev1.Delegation {
	out := &mandatev1.Delegation{
		Id: d.ID, Delegator: d.Delegator, Delegate: d.Delegate,
		ExpiresAt: timestampOrNil(d.ExpiresAt), MaxDepth: int32(d.MaxDepth), MaxFanout: int32(d.MaxFanout),
		CreatedAt: timestamppb.New(d.CreatedAt), RevokedAt: timestampOrNil(d.RevokedAt), Children: d.Children,
	}
	for _, sc := range d.Scope {
		out.Scope = append(out.Scope, &mandatev1.Scope{Permissions: sc.Permissions, Resource: sc.Resource})
	}
	return out
}

func chainStrings(c *engine.Chain) []string {
	if c == nil {
		return nil
	}
	out := make([]string, 0, len(c.Principals))
	for _, p := range c.Principals {
		out = append(out, p.String())
	}
	return out
}

// delegationSchema returns the head view, failing unless its schema has
// Mandate's agent and delegation types.
func (ds *delegationService) delegationSchema(ctx context.Context) (view, error) {
	v, err := ds.s.viewFor(ctx, nil)
	if err != nil {
		return view{}, err
	}
	if v.schema == nil || !v.schema.HasAgentTypes() || v.schema.Definition(schema.DelegationType) == nil {
		return view{}, failedPrecondition("the schema has no agent and delegation definitions; write Mandate's agent schema first")
	}
	return v, nil
}

// mayActAs reports whether the caller may delegate from delegator.
func mayActAs(p Principal, snap graph.Snapshot, delegator string) bool {
	if p.Admin {
		return true
	}
	if delegator == schema.AgentType+":"+p.AgentID {
		return true
	}
	if parent, ok := strings.CutPrefix(delegator, schema.DelegationType+":"); ok {
		d, err := delegation.Get(snap, parent)
		return err == nil && d.Delegate == p.AgentID
	}
	return false
}

// inChain reports whether the agent is a principal of the delegation's
// chain, so it may see or revoke it.
func inChain(snap graph.Snapshot, id, agentID string) bool {
	for cur, n := id, 0; cur != "" && n < 64; n++ {
		d, err := delegation.Get(snap, cur)
		if err != nil {
			return false
		}
		if d.Delegate == agentID || d.Delegator == schema.AgentType+":"+agentID {
			return true
		}
		cur = d.Parent()
	}
	return false
}

func (ds *delegationService) Delegate(ctx context.Context, req *mandatev1.DelegateRequest) (*mandatev1.DelegationResponse, error) {
	if _, err := ds.delegationSchema(ctx); err != nil {
		return nil, err
	}
	p := principalFrom(ctx)
	r := delegation.Request{
		ID: req.GetId(), Delegator: req.GetDelegator(), Delegate: req.GetDelegate(),
		MaxDepth: int(req.GetMaxDepth()), MaxFanout: int(req.GetMaxFanout()),
	}
	if err := checkTimestamp("expires_at", req.GetExpiresAt()); err != nil {
		return nil, err
	}
	if req.GetExpiresAt() != nil {
		r.ExpiresAt = req.GetExpiresAt().AsTime()
	}
	for _, sc := range req.GetScope() {
		r.Scope = append(r.Scope, delegation.Scope{Permissions: sc.GetPermissions(), Resource: sc.GetResource()})
	}
	var created *delegation.Delegation
	rev, err := ds.s.graph.Update(ctx, func(tx *graph.Tx) error {
		if !mayActAs(p, tx.Snapshot(), r.Delegator) {
			return status.Errorf(codes.PermissionDenied, "%s may not delegate on behalf of %q", p, r.Delegator)
		}
		sch, err := ds.s.schemas.get(ctx, tx.Snapshot().SchemaText)
		if err != nil {
			return err
		}
		created, err = delegation.Create(sch, tx, r, ds.s.cfg.Clock())
		return delegationStatus(err)
	})
	if err != nil {
		return nil, err
	}
	snap, err := ds.s.graph.Snapshot(rev, ds.s.cfg.Clock())
	if err != nil {
		return nil, err
	}
	chain, err := delegation.Resolve(snap, created.ID, snap.Now)
	if err != nil {
		return nil, err
	}
	rec := ds.s.eventRecord(ctx, audit.KindDelegation, uint64(rev))
	rec.Delegation, rec.Actors, rec.Subject = created.ID, chainStrings(chain), "agent:"+created.Delegate
	rec.Detail = map[string]string{"action": "delegate", "delegator": created.Delegator}
	ds.s.recordEvent(ctx, rec)
	ds.s.log.Info().Str("delegation", created.ID).Str("delegator", created.Delegator).
		Str("delegate", created.Delegate).Strs("chain", chainStrings(chain)).Msg("delegation created")
	return &mandatev1.DelegationResponse{
		Delegation: delegationToProto(created), Chain: chainStrings(chain), WrittenAt: encodeToken(rev).GetToken(),
	}, nil
}

func (ds *delegationService) Revoke(ctx context.Context, req *mandatev1.RevokeRequest) (*mandatev1.RevokeResponse, error) {
	if _, err := ds.delegationSchema(ctx); err != nil {
		return nil, err
	}
	p := principalFrom(ctx)
	var revoked []string
	rev, err := ds.s.graph.Update(ctx, func(tx *graph.Tx) error {
		now := ds.s.cfg.Clock()
		if !p.Admin && !inChain(tx.Snapshot(), req.GetId(), p.AgentID) {
			return status.Errorf(codes.PermissionDenied, "%s is not in the chain of delegation %q", p, req.GetId())
		}
		var err error
		revoked, err = delegation.Revoke(tx, req.GetId(), now)
		return delegationStatus(err)
	})
	if err != nil {
		return nil, err
	}
	rec := ds.s.eventRecord(ctx, audit.KindDelegation, uint64(rev))
	rec.Delegation = req.GetId()
	rec.Detail = map[string]string{"action": "revoke", "revoked": joinComma(revoked)}
	ds.s.recordEvent(ctx, rec)
	ds.s.log.Info().Str("delegation", req.GetId()).Strs("revoked", revoked).Msg("delegation revoked")
	return &mandatev1.RevokeResponse{Revoked: revoked, WrittenAt: encodeToken(rev).GetToken()}, nil
}

func (ds *delegationService) GetDelegation(ctx context.Context, req *mandatev1.GetDelegationRequest) (*mandatev1.DelegationResponse, error) {
	v, err := ds.delegationSchema(ctx)
	if err != nil {
		return nil, err
	}
	if p := principalFrom(ctx); !p.Admin && !inChain(v.snap, req.GetId(), p.AgentID) {
		return nil, status.Errorf(codes.PermissionDenied, "%s is not in the chain of delegation %q", p, req.GetId())
	}
	d, err := delegation.Get(v.snap, req.GetId())
	if err != nil {
		return nil, delegationStatus(err)
	}
	chain, err := delegation.Resolve(v.snap, d.ID, v.snap.Now)
	if err != nil {
		return nil, err
	}
	return &mandatev1.DelegationResponse{
		Delegation: delegationToProto(d), Chain: chainStrings(chain), WrittenAt: encodeToken(v.snap.Revision).GetToken(),
	}, nil
}

func (ds *delegationService) ListDelegations(ctx context.Context, req *mandatev1.ListDelegationsRequest) (*mandatev1.ListDelegationsResponse, error) {
	v, err := ds.delegationSchema(ctx)
	if err != nil {
		return nil, err
	}
	f := delegation.Filter{Delegator: req.GetDelegator(), Delegate: req.GetDelegate(), IncludeRevoked: req.GetIncludeRevoked()}
	p := principalFrom(ctx)
	if !p.Admin && f.Delegator != schema.AgentType+":"+p.AgentID && f.Delegate != p.AgentID {
		return nil, status.Errorf(codes.PermissionDenied,
			"agent %q may only list delegations with itself as delegator (agent:%s) or delegate", p.AgentID, p.AgentID)
	}
	all, err := delegation.List(v.snap, f)
	if err != nil {
		return nil, err
	}
	resp := &mandatev1.ListDelegationsResponse{}
	for _, d := range all {
		resp.Delegations = append(resp.Delegations, delegationToProto(d))
	}
	return resp, nil
}

func (ds *delegationService) ExplainCheck(ctx context.Context, req *mandatev1.ExplainCheckRequest) (*mandatev1.ExplainCheckResponse, error) {
	v, err := ds.delegationSchema(ctx)
	if err != nil {
		return nil, err
	}
	subject := graph.SubjectRef{Type: schema.DelegationType, ID: req.GetDelegation()}
	if err := ds.s.authorizeSubject(ctx, v.snap, subject); err != nil {
		return nil, err
	}
	typ, id, ok := strings.Cut(req.GetResource(), ":")
	if !ok || typ == "" || id == "" {
		return nil, invalidArgument("invalid resource %q: use type:id", req.GetResource())
	}
	resource := graph.ObjectRef{Type: typ, ID: id}
	if err := validatePermissionQuery(v.schema, typ, req.GetPermission(), subject); err != nil {
		return nil, err
	}
	res, err := engine.CheckChain(v.schema, v.snap, ds.s.cfg.Limits, engine.CheckRequest{
		Resource: resource, Permission: req.GetPermission(), Subject: subject, Policy: ds.s.policy(v),
		Explain: ds.s.cfg.Audit != nil,
	})
	if err != nil {
		return nil, err
	}
	in := checkInput{resource: resource, permission: req.GetPermission(), subject: subject}
	if err := ds.s.recordDecisions(ctx, describeCheck(ds.s.newRecord(ctx, audit.KindCheck, v), in, res)); err != nil {
		return nil, err
	}
	if !principalFrom(ctx).Admin && res.LimitedBy != "" && !strings.HasPrefix(res.LimitedBy, "scope of") &&
		!strings.Contains(res.LimitedBy, "delegation:") {
		// Naming which principal lacks the permission would tell the
		// delegate about the delegator's access beyond the grant. The
		// audit record above keeps the name.
		res.LimitedBy = "a principal of the chain does not have the permission, or is not active"
	}
	return &mandatev1.ExplainCheckResponse{
		Permissionship: res.Membership.String(),
		Chain:          chainStrings(res.Chain),
		LimitedBy:      res.LimitedBy,
		MissingContext: res.MissingContext,
		CheckedAt:      encodeToken(v.snap.Revision).GetToken(),
	}, nil
}
