package graph

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// ErrRevisionUnavailable is returned for a revision older than the
// retention window or newer than the head.
var ErrRevisionUnavailable = errors.New("revision unavailable")

// Options configures a Graph. The zero value keeps revisions for 24 hours
// and waits up to 5 seconds for a shared store's revisions.
type Options struct {
	// RetentionWindow is how long old revisions stay readable. A
	// SharedStore's change log entries are collected after the same time.
	RetentionWindow time.Duration
	// FreshnessTimeout bounds how long WaitForRevision and CatchUp read a
	// SharedStore before they fail with ErrNotCaughtUp.
	FreshnessTimeout time.Duration
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Logger receives a line for each error of the change log follower
	// and each reload of the index. The zero value logs nothing.
	Logger zerolog.Logger
}

// Graph is a revisioned relationship graph backed by a durable Store.
// It is safe for concurrent use.
type Graph struct {
	store Store
	// shared is store when it is a SharedStore, and nil otherwise.
	shared SharedStore
	// ix is replaced whole when a shared store's change log was collected
	// past this process's head; Snapshots keep the index they started on.
	ix   atomic.Pointer[index]
	opts Options

	// writeLock is held by a shared store's write transaction, from before
	// it requests the database's write lock until its commit is applied,
	// so that this process sends one writer at a time to the database.
	writeLock chan struct{}
	// applyLock is held by every code path that changes the index: a write
	// transaction, the change log follower, a catch-up and garbage
	// collection. It also guards lastGC and lastStoreGC.
	applyLock   chan struct{}
	lastGC      time.Time
	lastStoreGC time.Time

	// notifyMu guards notify, a channel closed and replaced after each
	// applied commit to wake watchers.
	notifyMu sync.Mutex
	notify   chan struct{}

	// stopFollow ends the change log follower, which closes followDone.
	stopFollow context.CancelFunc
	followDone chan struct{}
}

// Open loads every relationship from store and returns a Graph over it.
// For a SharedStore it also starts the goroutine that follows the change
// log; Close stops it.
func Open(store Store, opts Options) (*Graph, error) {
	if opts.RetentionWindow <= 0 {
		opts.RetentionWindow = 24 * time.Hour
	}
	if opts.FreshnessTimeout <= 0 {
		opts.FreshnessTimeout = 5 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	state, err := store.Load()
	if err != nil {
		return nil, fmt.Errorf("open graph: %w", err)
	}
	now := opts.Clock()
	g := &Graph{
		store:       store,
		opts:        opts,
		writeLock:   make(chan struct{}, 1),
		applyLock:   make(chan struct{}, 1),
		lastGC:      now,
		lastStoreGC: now,
		notify:      make(chan struct{}),
	}
	g.ix.Store(indexFromState(state, now))
	if shared, ok := store.(SharedStore); ok {
		g.shared = shared
		ctx, cancel := context.WithCancel(context.Background())
		g.stopFollow, g.followDone = cancel, make(chan struct{})
		go g.follow(ctx)
	}
	return g, nil
}

// indexFromState builds an index whose only readable revision is the
// state's head. History from before the load is not rebuilt, so older
// revisions read as unavailable.
// NOTE: the store's change log could rebuild it within the window.
func indexFromState(state State, now time.Time) *index {
	ix := newIndex()
	head := state.Head
	for _, r := range state.Relationships {
		ix.putLocked(r, head)
	}
	for _, rc := range state.Records {
		ix.applyRecordLocked(rc, head)
	}
	ix.head, ix.oldest = head, head
	ix.schemas = []schemaVersion{{rev: head, text: state.SchemaText}}
	ix.revTimes = []revisionTime{{rev: head, at: now}}
	return ix
}

// Close stops the change log follower, if any, and closes the store.
func (g *Graph) Close() error {
	if g.stopFollow != nil {
		g.stopFollow()
		<-g.followDone
	}
	return g.store.Close()
}

func (g *Graph) index() *index { return g.ix.Load() }

// Head returns the newest revision this process has applied. For a
// SharedStore, other processes may have committed newer ones; CatchUp
// applies them.
func (g *Graph) Head() Revision {
	ix := g.index()
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.head
}

// Snapshot returns a reader at rev, with now used to hide expired
// relationships. It fails with ErrRevisionUnavailable when rev is outside
// the retained range.
func (g *Graph) Snapshot(rev Revision, now time.Time) (Snapshot, error) {
	ix := g.index()
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if rev > ix.head {
		return Snapshot{}, fmt.Errorf("revision %d is newer than the head %d: %w", rev, ix.head, ErrRevisionUnavailable)
	}
	if rev < ix.oldest {
		return Snapshot{}, fmt.Errorf("revision %d is older than the oldest retained revision %d: %w", rev, ix.oldest, ErrRevisionUnavailable)
	}
	return Snapshot{ix: ix, Revision: rev, Now: now, SchemaText: ix.schemaAtLocked(rev)}, nil
}

// HeadSnapshot returns a reader at the head revision.
func (g *Graph) HeadSnapshot(now time.Time) Snapshot {
	ix := g.index()
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return Snapshot{ix: ix, Revision: ix.head, Now: now, SchemaText: ix.schemaAtLocked(ix.head)}
}

// Update runs fn in a write transaction and commits its changes under a new
// revision. If fn returns an error, nothing is written and Update returns
// that error. If fn makes no change, the head revision is returned and no
// revision is created.
//
// For a SharedStore, fn reads the store's head revision, which may be newer
// than what this process had applied, and fn may run more than once when
// the database requests a retry. fn must therefore act only through tx and
// overwrite, not accumulate, any result it passes out.
func (g *Graph) Update(ctx context.Context, fn func(*Tx) error) (Revision, error) {
	if g.shared != nil {
		return g.updateShared(ctx, fn)
	}
	if err := g.lockApply(ctx); err != nil {
		return 0, err
	}
	defer g.unlockApply()
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
	g.applyLocked(commit, now)
	return commit.Revision, nil
}

// updateShared is Update for a SharedStore: it takes the database's write
// lock, applies the commits of other processes up to the store's head, runs
// fn against that head, commits, and applies the commit.
func (g *Graph) updateShared(ctx context.Context, fn func(*Tx) error) (Revision, error) {
	if err := acquire(ctx, g.writeLock); err != nil {
		return 0, err
	}
	defer func() { <-g.writeLock }()

	// applyLock is taken only once the database's write lock is held, so
	// that the follower and readers catching up are not blocked while this
	// process waits for writers in other processes.
	applyHeld := false
	defer func() {
		if applyHeld {
			g.unlockApply()
		}
	}()
	var (
		commit    *Commit
		unchanged Revision
		now       time.Time
	)
	err := g.shared.Write(ctx, func(head Revision) (*Commit, error) {
		commit = nil
		if !applyHeld {
			if err := g.lockApply(ctx); err != nil {
				return nil, err
			}
			applyHeld = true
		}
		if err := g.catchUpLocked(ctx, head); err != nil {
			return nil, fmt.Errorf("catch up to revision %d before writing: %w", head, err)
		}
		now = g.opts.Clock()
		tx := &Tx{snap: g.HeadSnapshot(now)}
		if tx.snap.Revision != head {
			return nil, fmt.Errorf("index head %d differs from the store head %d after catching up", tx.snap.Revision, head)
		}
		if err := fn(tx); err != nil {
			return nil, err
		}
		if tx.Changes() == 0 && tx.schema == nil {
			unchanged = head
			return nil, nil
		}
		commit = &Commit{Revision: head + 1, At: now, Changes: tx.changes, Records: tx.records, Schema: tx.schema}
		return commit, nil
	})
	if err != nil {
		return 0, err
	}
	if commit == nil {
		return unchanged, nil
	}
	g.applyLocked(*commit, now)
	return commit.Revision, nil
}

// applyLocked adds one commit to the index, wakes watchers and collects old
// revisions when due. The caller holds applyLock.
func (g *Graph) applyLocked(c Commit, now time.Time) {
	g.index().apply(c)
	g.broadcast()
	g.maybeCollectLocked(now)
}

// maybeCollectLocked drops versions older than the retention window, at
// most once a minute. The caller holds applyLock.
func (g *Graph) maybeCollectLocked(now time.Time) {
	if now.Sub(g.lastGC) < time.Minute {
		return
	}
	g.collectIndexLocked(now)
}

func (g *Graph) collectIndexLocked(now time.Time) {
	g.lastGC = now
	ix := g.index()
	if keep := ix.revisionBefore(now.Add(-g.opts.RetentionWindow)); keep > 0 {
		ix.collect(keep)
	}
}

// CollectGarbage drops the index versions older than the retention window
// now, without waiting for the next write, and for a SharedStore deletes
// the change log entries older than the window. Writes and the change log
// follower also do this on their own, at most once a minute.
func (g *Graph) CollectGarbage(ctx context.Context) error {
	if err := g.lockApply(ctx); err != nil {
		return err
	}
	now := g.opts.Clock()
	g.collectIndexLocked(now)
	g.lastStoreGC = now
	g.unlockApply()
	if g.shared == nil {
		return nil
	}
	if _, err := g.shared.CollectChanges(ctx, now.Add(-g.opts.RetentionWindow)); err != nil {
		return fmt.Errorf("collect change log: %w", err)
	}
	return nil
}

// lockApply takes applyLock unless ctx ends first.
func (g *Graph) lockApply(ctx context.Context) error { return acquire(ctx, g.applyLock) }

func (g *Graph) unlockApply() { <-g.applyLock }

// acquire takes a one-slot semaphore unless ctx ends first.
func acquire(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	default:
	}
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Store returns the store the graph was opened on.
func (g *Graph) Store() Store { return g.store }
