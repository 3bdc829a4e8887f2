package server

import (
	"context"
	"sync"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// view is what one request reads: a snapshot and the schema in force at it.
type view struct {
	snap   graph.Snapshot
	schema *schema.Schema
}

// viewFor picks the revision that the consistency requirement asks for.
// The embedded graph applies every write before acknowledging it, so the
// head is always the newest revision: minimize_latency, fully_consistent
// and at_least_as_fresh all read it.
func (s *Server) viewFor(ctx context.Context, c *v1.Consistency) (view, error) {
	now := s.cfg.Clock()
	snap := s.graph.HeadSnapshot(now)
	switch req := c.GetRequirement().(type) {
	case *v1.Consistency_AtLeastAsFresh:
		rev, err := decodeToken(req.AtLeastAsFresh)
		if err != nil {
			return view{}, err
		}
		if rev > snap.Revision {
			return view{}, failedPrecondition("zedtoken revision %d is newer than the head revision %d: the token was not issued by this datastore", rev, snap.Revision)
		}
	case *v1.Consistency_AtExactSnapshot:
		rev, err := decodeToken(req.AtExactSnapshot)
		if err != nil {
			return view{}, err
		}
		if snap, err = s.graph.Snapshot(rev, now); err != nil {
			return view{}, err
		}
	}
	sch, err := s.schemas.get(ctx, snap.SchemaText)
	if err != nil {
		return view{}, err
	}
	return view{snap: snap, schema: sch}, nil
}

// schemaCache keeps the compiled form of the schema texts in use, so a
// request compiles nothing unless the schema just changed.
type schemaCache struct {
	mu       sync.Mutex
	compiled map[string]*schema.Schema
}

const schemaCacheSize = 8

func (c *schemaCache) get(ctx context.Context, text string) (*schema.Schema, error) {
	if text == "" {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.compiled[text]; ok {
		return s, nil
	}
	s, err := schema.Compile(ctx, text)
	if err != nil {
		return nil, err
	}
	if c.compiled == nil || len(c.compiled) >= schemaCacheSize {
		c.compiled = make(map[string]*schema.Schema)
	}
	c.compiled[text] = s
	return s, nil
}
