package graph

import (
	"context"
	"time"
)

// Commit is one committed write transaction, as the change log stores it.
type Commit struct {
	Revision Revision
	At       time.Time
	Changes  []Change
	Records  []RecordChange
	// Schema is the new schema text, or nil when the schema did not change.
	Schema *string
}

// Changes calls fn for commits after the given revision, in revision order.
// It may stop before the head; call it again from the last revision seen.
func (g *Graph) Changes(after Revision, fn func(Commit) error) error {
	return g.store.Changes(after, fn)
}

// WaitForChange blocks until the head is newer than rev or ctx ends.
func (g *Graph) WaitForChange(ctx context.Context, rev Revision) error {
	for {
		g.notifyMu.Lock()
		ch := g.notify
		g.notifyMu.Unlock()
		if g.Head() > rev {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// broadcast wakes every WaitForChange caller.
func (g *Graph) broadcast() {
	g.notifyMu.Lock()
	close(g.notify)
	g.notify = make(chan struct{})
	g.notifyMu.Unlock()
}
