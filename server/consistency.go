package server

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"unsafe"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// view is what one request reads: a snapshot and the schema in force at it.
type view struct {
	snap   graph.Snapshot
	schema *schema.Schema
}

// viewFor picks the revision that the consistency requirement selects:
//
//   - minimize_latency (or none): the newest revision this process has
//     applied;
//   - at_least_as_fresh: that head, once this process has applied the
//     token's revision, which another server of a shared datastore may have
//     written;
//   - at_exact_snapshot: the token's revision, once applied;
//   - fully_consistent: the head after catching up with the datastore's
//     head, so every write acknowledged before the request is visible.
//
// On the embedded datastore every write is applied before it is
// acknowledged, so the waits and the catch-up return at once.
func (s *Server) viewFor(ctx context.Context, c *v1.Consistency) (view, error) {
	now := s.cfg.Clock()
	var snap graph.Snapshot
	switch req := c.GetRequirement().(type) {
	case *v1.Consistency_AtLeastAsFresh:
		rev, err := decodeToken(req.AtLeastAsFresh)
		if err != nil {
			return view{}, err
		}
		if err := s.graph.WaitForRevision(ctx, rev); err != nil {
			return view{}, freshnessError(rev, err)
		}
		snap = s.graph.HeadSnapshot(now)
	case *v1.Consistency_AtExactSnapshot:
		rev, err := decodeToken(req.AtExactSnapshot)
		if err != nil {
			return view{}, err
		}
		if err := s.graph.WaitForRevision(ctx, rev); err != nil {
			return view{}, freshnessError(rev, err)
		}
		if snap, err = s.graph.Snapshot(rev, now); err != nil {
			return view{}, err
		}
	case *v1.Consistency_FullyConsistent:
		if _, err := s.graph.CatchUp(ctx); err != nil {
			return view{}, freshnessError(0, err)
		}
		snap = s.graph.HeadSnapshot(now)
	default:
		snap = s.graph.HeadSnapshot(now)
	}
	sch, err := s.schemas.get(ctx, snap.SchemaText)
	if err != nil {
		return view{}, err
	}
	return view{snap: snap, schema: sch}, nil
}

// freshnessError maps a failed wait for a ZedToken's revision (rev, or 0
// for the datastore head) to a gRPC status. A token newer than the
// datastore's head was not issued by this datastore, which retrying cannot
// fix. A wait that ran out of time may succeed later.
func freshnessError(rev graph.Revision, err error) error {
	switch {
	case errors.Is(err, graph.ErrRevisionUnavailable):
		return failedPrecondition("invalid zedtoken: %v; the token was not issued by this datastore", err)
	case errors.Is(err, graph.ErrNotCaughtUp) && rev > 0:
		return status.Errorf(codes.Unavailable, "zedtoken revision %d is not yet applied on this server; retry the request: %v", rev, err)
	case errors.Is(err, graph.ErrNotCaughtUp):
		return status.Errorf(codes.Unavailable, "could not read the datastore head for a fully consistent request; retry the request: %v", err)
	}
	return err
}

// schemaCache keeps the compiled form of the schema texts in use, so a
// request compiles nothing unless the schema just changed.
type schemaCache struct {
	// last is the most recently returned schema. The index hands every
	// snapshot of one schema version the same string, so comparing the
	// string's data pointer and length finds it without hashing or
	// comparing the text.
	last atomic.Pointer[schema.Schema]

	mu       sync.Mutex
	compiled map[string]*schema.Schema
}

const schemaCacheSize = 8

func (c *schemaCache) get(ctx context.Context, text string) (*schema.Schema, error) {
	if text == "" {
		return nil, nil
	}
	if s := c.last.Load(); s != nil && sameString(s.Text, text) {
		return s, nil
	}
	c.mu.Lock()
	s, ok := c.compiled[text]
	c.mu.Unlock()
	if ok {
		c.last.Store(s)
		return s, nil
	}
	// Compiling a large schema takes seconds, so it runs without the lock;
	// two requests may compile the same text at once.
	s, err := schema.Compile(ctx, text)
	if err != nil {
		return nil, err
	}
	c.put(s)
	return s, nil
}

// put adds a compiled schema, such as one WriteSchema just compiled.
func (c *schemaCache) put(s *schema.Schema) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.compiled == nil || len(c.compiled) >= schemaCacheSize {
		c.compiled = make(map[string]*schema.Schema)
	}
	c.compiled[s.Text] = s
	c.last.Store(s)
}

// sameString reports whether a and b share their bytes, which implies that
// they are equal. Equal strings in different memory report false.
func sameString(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}
