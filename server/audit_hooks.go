package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"sync/atomic"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/mandate-iam/mandate/audit"
	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/identity"
)

// newRecord starts an audit record for the request in ctx, read at v.
func (s *Server) newRecord(ctx context.Context, kind string, v view) *audit.Record {
	p := principalFrom(ctx)
	rec := &audit.Record{
		Time:      s.cfg.Clock(),
		Kind:      kind,
		Principal: p.String(),
		Revision:  uint64(v.snap.Revision),
		RequestID: requestID(ctx),
	}
	if v.snap.SchemaText != "" {
		rec.SchemaHash = schemaHash(v.snap.SchemaText)
	}
	if p.AgentID != "" {
		if a, err := identity.Get(v.snap, p.AgentID); err == nil {
			rec.Purpose = a.Purpose
		}
	}
	return rec
}

// schemaHashEntry is a schema text with its short hash.
type schemaHashEntry struct {
	text, hash string
}

// lastSchemaHash caches the hash of the schema text seen last, because
// every decision record carries it and the schema rarely changes.
var lastSchemaHash atomic.Pointer[schemaHashEntry]

// schemaHash returns the first 8 bytes of the SHA-256 of a schema text,
// in hex.
func schemaHash(text string) string {
	if e := lastSchemaHash.Load(); e != nil && e.text == text {
		return e.hash
	}
	sum := sha256.Sum256([]byte(text))
	e := &schemaHashEntry{text: text, hash: hex.EncodeToString(sum[:8])}
	lastSchemaHash.Store(e)
	return e.hash
}

// requestID returns the caller's x-request-id, or a new random id.
func requestID(ctx context.Context) string {
	if ids := metadata.ValueFromIncomingContext(ctx, "x-request-id"); len(ids) > 0 && len(ids[0]) <= 128 {
		return ids[0]
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// recordDecisions makes the records durable before the caller answers.
// When the log cannot write, the decision is withheld (fail closed)
// unless the operator chose to fail open, in which case the error is
// logged and the decision goes out unrecorded.
func (s *Server) recordDecisions(ctx context.Context, recs ...*audit.Record) error {
	if s.cfg.Audit == nil || len(recs) == 0 {
		return nil
	}
	// Each record drew its own random id when the caller sent no
	// x-request-id, and the records of one request must share one.
	for _, rec := range recs[1:] {
		rec.RequestID = recs[0].RequestID
	}
	var err error
	if len(recs) == 1 {
		err = s.cfg.Audit.Append(ctx, recs[0])
	} else {
		err = s.cfg.Audit.AppendBatch(ctx, recs)
	}
	if err == nil {
		return nil
	}
	if s.cfg.AuditFailOpen {
		s.log.Error().Err(err).Int("records", len(recs)).Msg("audit log write failed; answering anyway (fail open)")
		return nil
	}
	s.log.Error().Err(err).Int("records", len(recs)).Msg("audit log write failed; decision withheld (fail closed)")
	return status.Error(codes.Unavailable, "the audit log cannot record this decision, so it is withheld; retry later")
}

// describeCheck fills the decision fields of a check record.
func describeCheck(rec *audit.Record, in checkInput, res engine.ChainResult) *audit.Record {
	rec.Resource = in.resource.Type + ":" + in.resource.ID
	rec.Permission = in.permission
	rec.Subject = in.subject.String()
	rec.Result = res.Membership.String()
	rec.Why = res.Why
	if res.LimitedBy != "" {
		rec.Why = "denied by " + res.LimitedBy
	}
	if res.Chain != nil {
		rec.Delegation = in.subject.ID
		for _, p := range res.Chain.Principals {
			rec.Actors = append(rec.Actors, p.String())
		}
	}
	if len(res.MissingContext) > 0 {
		rec.Detail = map[string]string{"missing_context": joinComma(res.MissingContext)}
	}
	return rec
}

func joinComma(items []string) string {
	out := ""
	for i, s := range items {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}

// recordEvent appends the record of a change that is already committed.
// The change cannot be withheld any more, so a failure is logged, not
// returned.
// NOTE: a crash between the commit and this append loses the event's
// record; the change itself stays in the store's change log.
func (s *Server) recordEvent(ctx context.Context, rec *audit.Record) {
	if s.cfg.Audit == nil {
		return
	}
	// The change is committed whether or not the client still waits, so
	// its record must not be dropped when the client goes away.
	if err := s.cfg.Audit.Append(context.WithoutCancel(ctx), rec); err != nil {
		s.log.Error().Err(err).Str("kind", rec.Kind).Str("request_id", rec.RequestID).
			Msg("audit log write failed for a committed change")
	}
}

// eventRecord starts the record of a committed change at revision rev.
func (s *Server) eventRecord(ctx context.Context, kind string, rev uint64) *audit.Record {
	v := view{snap: s.graph.HeadSnapshot(s.cfg.Clock())}
	rec := s.newRecord(ctx, kind, v)
	rec.Revision = rev
	rec.Result = "ok"
	return rec
}

// recordRefusal audits a call refused for its caller: one that failed
// authentication, or asked for something its principal may not do.
func (s *Server) recordRefusal(ctx context.Context, method string, err error) {
	if s.cfg.Audit == nil || err == nil {
		return
	}
	code := status.Code(toStatus(err))
	if code != codes.Unauthenticated && code != codes.PermissionDenied {
		return
	}
	rec := s.newRecord(ctx, audit.KindRefused, view{snap: s.graph.HeadSnapshot(s.cfg.Clock())})
	if code == codes.Unauthenticated {
		rec.Principal = "unauthenticated"
	}
	rec.Result = code.String()
	rec.Why = loggedMessage(toStatus(err))
	rec.Detail = map[string]string{"method": method}
	s.recordEvent(ctx, rec)
}
