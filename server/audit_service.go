package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
	"github.com/mandate-iam/mandate/audit"
)

type auditService struct {
	mandatev1.UnimplementedAuditServiceServer
	s *Server
}

func (as *auditService) log(ctx context.Context) (*audit.Log, error) {
	if err := requireAdmin(ctx, "reading the audit log"); err != nil {
		return nil, err
	}
	if as.s.cfg.Audit == nil {
		return nil, status.Error(codes.FailedPrecondition, "auditing is turned off on this server")
	}
	return as.s.cfg.Audit, nil
}

func recordToProto(r *audit.Record) *mandatev1.AuditRecord {
	return &mandatev1.AuditRecord{
		Seq: r.Seq, Time: timestamppb.New(r.Time), Kind: r.Kind, Principal: r.Principal, Actors: r.Actors,
		Delegation: r.Delegation, Resource: r.Resource, Permission: r.Permission, Subject: r.Subject,
		Result: r.Result, Why: r.Why, Revision: r.Revision, SchemaHash: r.SchemaHash, Purpose: r.Purpose,
		RequestId: r.RequestID, Detail: r.Detail,
	}
}

func (as *auditService) QueryRecords(req *mandatev1.QueryRecordsRequest, stream grpc.ServerStreamingServer[mandatev1.AuditRecord]) error {
	l, err := as.log(stream.Context())
	if err != nil {
		return err
	}
	q := audit.Query{
		Agent: req.GetAgent(), Resource: req.GetResource(), Result: req.GetResult(),
		Delegation: req.GetDelegation(), Kind: req.GetKind(), After: req.GetAfterSeq(), Limit: int(req.GetLimit()),
	}
	if req.GetSince() != nil {
		q.Since = req.GetSince().AsTime()
	}
	if req.GetUntil() != nil {
		q.Until = req.GetUntil().AsTime()
	}
	var sendErr error
	err = l.Scan(q, func(r *audit.Record) bool {
		sendErr = stream.Send(recordToProto(r))
		return sendErr == nil
	})
	if err != nil {
		return err
	}
	return sendErr
}

// exportPageSize is how many records ExportRaw reads in one bbolt read
// transaction, so memory stays bounded and no transaction stays open
// while a slow client reads the stream.
const exportPageSize = 1000

func (as *auditService) ExportRaw(_ *mandatev1.ExportRawRequest, stream grpc.ServerStreamingServer[mandatev1.RawRecord]) error {
	l, err := as.log(stream.Context())
	if err != nil {
		return err
	}
	for from := uint64(0); ; {
		sent := 0
		next, err := l.RawRecordsPage(from, exportPageSize, func(seq uint64, data []byte, leaf audit.Hash) error {
			sent++
			return stream.Send(&mandatev1.RawRecord{Seq: seq, Data: data, LeafHash: append([]byte(nil), leaf[:]...)})
		})
		if err != nil {
			return err
		}
		if sent < exportPageSize {
			return nil
		}
		from = next
	}
}

func headToProto(h audit.TreeHead) *mandatev1.TreeHead {
	return &mandatev1.TreeHead{
		Size: h.Size, RootHash: append([]byte(nil), h.Root[:]...), Time: timestamppb.New(h.Time),
		Signature: h.Signature, SignedBytes: h.SignedBytes(),
	}
}

func (as *auditService) GetTreeHeads(ctx context.Context, req *mandatev1.GetTreeHeadsRequest) (*mandatev1.GetTreeHeadsResponse, error) {
	l, err := as.log(ctx)
	if err != nil {
		return nil, err
	}
	resp := &mandatev1.GetTreeHeadsResponse{PublicKey: l.PublicKey()}
	if !req.GetAll() {
		resp.Heads = []*mandatev1.TreeHead{headToProto(l.Head())}
		return resp, nil
	}
	heads, err := l.Heads()
	if err != nil {
		return nil, err
	}
	for _, h := range heads {
		resp.Heads = append(resp.Heads, headToProto(h))
	}
	return resp, nil
}

func proofToProto(p []audit.Hash) *mandatev1.ProofResponse {
	out := &mandatev1.ProofResponse{}
	for _, h := range p {
		out.Hashes = append(out.Hashes, append([]byte(nil), h[:]...))
	}
	return out
}

func (as *auditService) GetInclusionProof(ctx context.Context, req *mandatev1.GetInclusionProofRequest) (*mandatev1.ProofResponse, error) {
	l, err := as.log(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetTreeSize() == 0 || req.GetTreeSize() > l.Head().Size {
		return nil, invalidArgument("tree size %d is not between 1 and the log size %d", req.GetTreeSize(), l.Head().Size)
	}
	leaves, err := l.Leaves(req.GetTreeSize())
	if err != nil {
		return nil, err
	}
	proof, err := audit.InclusionProof(req.GetSeq(), leaves)
	if err != nil {
		return nil, invalidArgument("%v", err)
	}
	return proofToProto(proof), nil
}

func (as *auditService) GetConsistencyProof(ctx context.Context, req *mandatev1.GetConsistencyProofRequest) (*mandatev1.ProofResponse, error) {
	l, err := as.log(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetNewSize() > l.Head().Size {
		return nil, invalidArgument("new size %d exceeds the log size %d", req.GetNewSize(), l.Head().Size)
	}
	leaves, err := l.Leaves(req.GetNewSize())
	if err != nil {
		return nil, err
	}
	proof, err := audit.ConsistencyProof(req.GetOldSize(), leaves)
	if err != nil {
		return nil, invalidArgument("%v", err)
	}
	return proofToProto(proof), nil
}
