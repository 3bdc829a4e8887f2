package server

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
	"github.com/mandate-iam/mandate/audit"
	"github.com/mandate-iam/mandate/delegation"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/review"
)

type reviewService struct {
	mandatev1.UnimplementedReviewServiceServer
	s *Server
}

func (rs *reviewService) ReviewAccess(ctx context.Context, req *mandatev1.ReviewAccessRequest) (*mandatev1.ReviewAccessResponse, error) {
	if err := requireAdmin(ctx, "access review"); err != nil {
		return nil, err
	}
	if rs.s.cfg.Audit == nil {
		return nil, status.Error(codes.FailedPrecondition, "access reviews read the audit log, and auditing is turned off on this server")
	}
	if req.GetUnusedForSeconds() <= 0 {
		return nil, invalidArgument("access review: unused_for_seconds must be positive, got %d", req.GetUnusedForSeconds())
	}
	now := rs.s.cfg.Clock()
	snap := rs.s.graph.HeadSnapshot(now)
	target := review.Target{Agent: req.GetAgent(), Department: req.GetDepartment()}
	rights, err := review.Rights(snap, target, now)
	if err != nil {
		return nil, invalidArgument("%v", err)
	}
	since := now.Add(-time.Duration(req.GetUnusedForSeconds()) * time.Second)
	if err := review.CountUses(rs.s.cfg.Audit, snap, target, rights, since); err != nil {
		return nil, err
	}
	resp := &mandatev1.ReviewAccessResponse{}
	for _, r := range rights {
		out := &mandatev1.Right{Id: r.ID, Kind: r.Kind, Used: r.Used(), Uses: r.Uses}
		if !r.LastUsed.IsZero() {
			out.LastUsed = timestamppb.New(r.LastUsed)
		}
		resp.Rights = append(resp.Rights, out)
	}
	if target.Agent != "" {
		ds, err := delegation.List(snap, delegation.Filter{Delegate: target.Agent})
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			chain, err := delegation.Resolve(snap, d.ID, now)
			if err != nil {
				return nil, err
			}
			edge := &mandatev1.DelegationEdge{Delegation: d.ID, Delegator: d.Delegator, Delegate: d.Delegate, Chain: chainStrings(chain)}
			for _, sc := range d.Scope {
				edge.Scope = append(edge.Scope, joinComma(sc.Permissions)+"@"+sc.Resource)
			}
			resp.DelegationsIn = append(resp.DelegationsIn, edge)
		}
	}
	return resp, nil
}

func (rs *reviewService) RevokeRights(ctx context.Context, req *mandatev1.RevokeRightsRequest) (*mandatev1.RevokeRightsResponse, error) {
	if err := requireAdmin(ctx, "revoking rights"); err != nil {
		return nil, err
	}
	if len(req.GetIds()) == 0 {
		return nil, invalidArgument("revoke rights: no ids given")
	}
	var revoked []string
	rev, err := rs.s.graph.Update(ctx, func(tx *graph.Tx) error {
		var err error
		revoked, err = review.Revoke(tx, req.GetIds(), rs.s.cfg.Clock())
		if err != nil {
			return invalidArgument("%v", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	requestID := ""
	for _, id := range revoked {
		rec := rs.s.eventRecord(ctx, audit.KindReview, uint64(rev))
		// The records of one request share the request id of the first.
		if requestID == "" {
			requestID = rec.RequestID
		}
		rec.RequestID = requestID
		rec.Detail = map[string]string{"action": "revoke right", "right": id}
		rs.s.recordEvent(ctx, rec)
	}
	return &mandatev1.RevokeRightsResponse{Revoked: revoked, WrittenAt: encodeToken(rev).GetToken()}, nil
}
