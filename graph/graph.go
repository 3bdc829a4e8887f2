package graph

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrRevisionUnavailable is returned for a revision older than the
// retention window or newer than the head.
var ErrRevisionUnavailable = errors.New("revision unavailable")

// Options configures a Graph. The zero value keeps revisions for 24 hours.
type Options struct {
	// RetentionWindow is how long old revisions stay readable.
	RetentionWindow time.Duration
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
}

// Graph is a revisioned relationship graph backed by a durable Store.
// It is safe for concurrent use.
type Graph struct {
	store Store
	ix    *index
	opts  Options

	// writeMu serializes write transactions, from reading the head to
	// applying the commit to the index.
	writeMu sync.Mutex
	lastGC  time.Time

	// notifyMu guards notify, a channel closed and replaced after each
	// commit to wake watchers.
	notifyMu sync.Mutex
	notify   chan struct{}
}

// Open loads every relationship from store and returns a Graph over it.
func Open(store Store, opts Options) (*Graph, error) {
	if opts.RetentionWindow <= 0 {
		opts.RetentionWindow = 24 * time.Hour
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	ix := newIndex()
	state, err := store.Load()
	if err != nil {
		return nil, fmt.Errorf("open graph: %w", err)
	}
	head := state.Head
	// Loaded state is visible from the head on; history from before the
	// restart is not rebuilt, so older revisions read as unavailable.
	// NOTE: the store's change log could rebuild it within the window.
	for _, r := range state.Relationships {
		ix.putLocked(r, head)
	}
	for _, rc := range state.Records {
		ix.applyRecordLocked(rc, head)
	}
	ix.head, ix.oldest = head, head
	ix.schemas = []schemaVersion{{rev: head, text: state.SchemaText}}
	ix.revTimes = []revisionTime{{rev: head, at: opts.Clock()}}
	return &Graph{store: store, ix: ix, opts: opts, lastGC: opts.Clock(), notify: make(chan struct{})}, nil
}

// Close closes the store.
func (g *Graph) Close() error { return g.store.Close() }

// Head returns the newest committed revision.
func (g *Graph) Head() Revision {
	g.ix.mu.RLock()
	defer g.ix.mu.RUnlock()
	return g.ix.head
}

// Snapshot returns a reader at rev, with now used to hide expired
// relationships. It fails with ErrRevisionUnavailable when rev is outside
// the retained range.
func (g *Graph) Snapshot(rev Revision, now time.Time) (Snapshot, error) {
	g.ix.mu.RLock()
	defer g.ix.mu.RUnlock()
	if rev > g.ix.head {
		return Snapshot{}, fmt.Errorf("revision %d is newer than the head %d: %w", rev, g.ix.head, ErrRevisionUnavailable)
	}
	if rev < g.ix.oldest {
		return Snapshot{}, fmt.Errorf("revision %d is older than the oldest retained revision %d: %w", rev, g.ix.oldest, ErrRevisionUnavailable)
	}
	return Snapshot{ix: g.ix, Revision: rev, Now: now, SchemaText: g.ix.schemaAtLocked(rev)}, nil
}

// HeadSnapshot returns a reader at the head revision.
func (g *Graph) HeadSnapshot(now time.Time) Snapshot {
	g.ix.mu.RLock()
	defer g.ix.mu.RUnlock()
	return Snapshot{ix: g.ix, Revision: g.ix.head, Now: now, SchemaText: g.ix.schemaAtLocked(g.ix.head)}
}

// Update runs fn in a write transaction and commits its changes under a new
// revision. If fn returns an error, nothing is written. If fn makes no
// change, the head revision is returned and no revision is created.
func (g *Graph) Update(ctx context.Context, fn func(*Tx) error) (Revision, error) {
	g.writeMu.Lock()
	defer g.writeMu.Unlock()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now := g.opts.Clock()
	tx := &Tx{snap: g.HeadSnapshot(now)}
	if err := fn(tx); err != nil {
		return 0, err
	}
	if tx.Changes() == 0 && tx.schema == nil {
		return tx.snap.Revision, nil
	}
	commit := Commit{Revision: tx.snap.Revision + 1, At: now, Changes: tx.changes, Records: tx.records, Schema: tx.schema}
	if err := g.store.Commit(commit); err != nil {
		return 0, fmt.Errorf("commit revision %d: %w", commit.Revision, err)
	}
	rev := commit.Revision
	g.ix.apply(commit)
	g.broadcast()
	g.maybeCollectLocked(now)
	return rev, nil
}

// maybeCollectLocked drops versions older than the retention window, at
// most once a minute. The caller holds writeMu.
func (g *Graph) maybeCollectLocked(now time.Time) {
	if now.Sub(g.lastGC) < time.Minute {
		return
	}
	g.lastGC = now
	if keep := g.ix.revisionBefore(now.Add(-g.opts.RetentionWindow)); keep > 0 {
		g.ix.collect(keep)
	}
}
