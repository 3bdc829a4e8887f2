package server

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
	"github.com/mandate-iam/mandate/audit"
	"github.com/mandate-iam/mandate/delegation"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/identity"
)

type agentService struct {
	mandatev1.UnimplementedAgentServiceServer
	s *Server
}

var agentStates = map[identity.State]mandatev1.AgentState{
	identity.StateProvisioned:    mandatev1.AgentState_AGENT_STATE_PROVISIONED,
	identity.StateActive:         mandatev1.AgentState_AGENT_STATE_ACTIVE,
	identity.StateSuspended:      mandatev1.AgentState_AGENT_STATE_SUSPENDED,
	identity.StateDecommissioned: mandatev1.AgentState_AGENT_STATE_DECOMMISSIONED,
}

func agentToProto(a *identity.Agent) *mandatev1.Agent {
	return &mandatev1.Agent{
		Id:          a.ID,
		Owner:       a.Owner,
		Department:  a.Department,
		Role:        a.Role,
		Purpose:     a.Purpose,
		RiskLevel:   a.RiskLevel,
		State:       agentStates[a.State],
		StateReason: a.Reason,
		PublicKey:   a.PublicKey,
		CreatedAt:   timestamppb.New(a.CreatedAt),
		UpdatedAt:   timestamppb.New(a.UpdatedAt),
	}
}

// identityStatus maps the identity package's errors to gRPC codes.
func identityStatus(err error) error {
	switch {
	case errors.Is(err, identity.ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, identity.ErrExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, identity.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, identity.ErrState):
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return err
}

// updateAgent runs fn in a write transaction on a schema with the agent
// types, and returns the agent it produced with the revision's token.
func (as *agentService) updateAgent(ctx context.Context, what string, fn func(tx *graph.Tx, v view) (*identity.Agent, error)) (*mandatev1.AgentResponse, error) {
	if err := requireAdmin(ctx, what); err != nil {
		return nil, err
	}
	var agent *identity.Agent
	rev, err := as.s.graph.Update(ctx, func(tx *graph.Tx) error {
		sch, err := as.s.schemas.get(ctx, tx.Snapshot().SchemaText)
		if err != nil {
			return err
		}
		if sch == nil || !sch.HasAgentTypes() {
			return failedPrecondition("%s: the schema has no agent definition; write Mandate's agent schema first", what)
		}
		agent, err = fn(tx, view{snap: tx.Snapshot(), schema: sch})
		return identityStatus(err)
	})
	if err != nil {
		return nil, err
	}
	rec := as.s.eventRecord(ctx, audit.KindLifecycle, uint64(rev))
	rec.Subject, rec.Detail = "agent:"+agent.ID, map[string]string{"action": what, "state": string(agent.State)}
	as.s.recordEvent(ctx, rec)
	as.s.log.Info().Str("agent", agent.ID).Str("state", string(agent.State)).
		Uint64("revision", uint64(rev)).Msg(what)
	return &mandatev1.AgentResponse{Agent: agentToProto(agent), WrittenAt: encodeToken(rev).GetToken()}, nil
}

func (as *agentService) CreateAgent(ctx context.Context, req *mandatev1.CreateAgentRequest) (*mandatev1.AgentResponse, error) {
	return as.updateAgent(ctx, "create agent", func(tx *graph.Tx, _ view) (*identity.Agent, error) {
		a := &identity.Agent{
			ID:         req.GetId(),
			Owner:      req.GetOwner(),
			Department: req.GetDepartment(),
			Role:       req.GetRole(),
			Purpose:    req.GetPurpose(),
			RiskLevel:  req.GetRiskLevel(),
			PublicKey:  req.GetPublicKey(),
		}
		return a, identity.Create(tx, a, as.s.cfg.Clock())
	})
}

func (as *agentService) UpdateAgent(ctx context.Context, req *mandatev1.UpdateAgentRequest) (*mandatev1.AgentResponse, error) {
	return as.updateAgent(ctx, "update agent", func(tx *graph.Tx, _ view) (*identity.Agent, error) {
		return identity.Apply(tx, req.GetId(), identity.Update{
			Owner:      req.Owner,
			Department: req.Department,
			Role:       req.Role,
			Purpose:    req.Purpose,
			RiskLevel:  req.RiskLevel,
		}, as.s.cfg.Clock())
	})
}

func (as *agentService) SuspendAgent(ctx context.Context, req *mandatev1.SuspendAgentRequest) (*mandatev1.AgentResponse, error) {
	return as.updateAgent(ctx, "suspend agent", func(tx *graph.Tx, _ view) (*identity.Agent, error) {
		return identity.Suspend(tx, req.GetId(), req.GetReason(), as.s.cfg.Clock())
	})
}

func (as *agentService) ReactivateAgent(ctx context.Context, req *mandatev1.ReactivateAgentRequest) (*mandatev1.AgentResponse, error) {
	return as.updateAgent(ctx, "reactivate agent", func(tx *graph.Tx, _ view) (*identity.Agent, error) {
		return identity.Reactivate(tx, req.GetId(), as.s.cfg.Clock())
	})
}

func (as *agentService) DecommissionAgent(ctx context.Context, req *mandatev1.DecommissionAgentRequest) (*mandatev1.AgentResponse, error) {
	return as.updateAgent(ctx, "decommission agent", func(tx *graph.Tx, v view) (*identity.Agent, error) {
		a, err := identity.Decommission(v.schema, tx, req.GetId(), as.s.cfg.Clock())
		if err != nil {
			return nil, err
		}
		if _, err := delegation.RevokeInvolving(tx, req.GetId(), as.s.cfg.Clock()); err != nil {
			return nil, err
		}
		return a, nil
	})
}

func (as *agentService) GetAgent(ctx context.Context, req *mandatev1.GetAgentRequest) (*mandatev1.AgentResponse, error) {
	if p := principalFrom(ctx); !p.Admin && p.AgentID != req.GetId() {
		return nil, status.Errorf(codes.PermissionDenied, "agent %q may only read its own identity, not %q", p.AgentID, req.GetId())
	}
	snap := as.s.graph.HeadSnapshot(as.s.cfg.Clock())
	a, err := identity.Get(snap, req.GetId())
	if err != nil {
		return nil, identityStatus(err)
	}
	return &mandatev1.AgentResponse{Agent: agentToProto(a), WrittenAt: encodeToken(snap.Revision).GetToken()}, nil
}

func (as *agentService) ListAgents(ctx context.Context, req *mandatev1.ListAgentsRequest) (*mandatev1.ListAgentsResponse, error) {
	if err := requireAdmin(ctx, "list agents"); err != nil {
		return nil, err
	}
	f := identity.Filter{Department: req.GetDepartment(), Owner: req.GetOwner()}
	if req.GetState() != mandatev1.AgentState_AGENT_STATE_UNSPECIFIED {
		for st, pst := range agentStates {
			if pst == req.GetState() {
				f.State = st
			}
		}
		if f.State == "" {
			return nil, invalidArgument("list agents: unknown state %v", req.GetState())
		}
	}
	agents, err := identity.List(as.s.graph.HeadSnapshot(as.s.cfg.Clock()), f)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	resp := &mandatev1.ListAgentsResponse{}
	for _, a := range agents {
		resp.Agents = append(resp.Agents, agentToProto(a))
	}
	return resp, nil
}

type operationsService struct {
	mandatev1.UnimplementedOperationsServiceServer
	s *Server
}

func (ops *operationsService) GetOperationalState(ctx context.Context, _ *mandatev1.GetOperationalStateRequest) (*mandatev1.OperationalStateResponse, error) {
	return &mandatev1.OperationalStateResponse{
		State: identity.OperationalState(ops.s.graph.HeadSnapshot(ops.s.cfg.Clock())),
	}, nil
}

func (ops *operationsService) SetOperationalState(ctx context.Context, req *mandatev1.SetOperationalStateRequest) (*mandatev1.OperationalStateResponse, error) {
	if err := requireAdmin(ctx, "set operational state"); err != nil {
		return nil, err
	}
	_, err := ops.s.graph.Update(ctx, func(tx *graph.Tx) error {
		return identityStatus(identity.SetOperationalState(tx, req.GetState()))
	})
	if err != nil {
		return nil, err
	}
	rec := ops.s.eventRecord(ctx, audit.KindLifecycle, uint64(ops.s.graph.Head()))
	rec.Detail = map[string]string{"action": "set operational state", "state": req.GetState()}
	ops.s.recordEvent(ctx, rec)
	ops.s.log.Warn().Str("operational_state", req.GetState()).Msg("operational state changed")
	return &mandatev1.OperationalStateResponse{State: req.GetState()}, nil
}
