package graph

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// This file keeps the index of a Graph over a SharedStore current with the
// commits of other processes. Every path reads the store's change log in
// revision order and applies each commit whose revision is the index head
// plus one; the change log, never a notification, decides what is applied.

// follow applies the commits of other processes until ctx ends. It wakes
// when the store reports a commit, or after the store's poll interval.
func (g *Graph) follow(ctx context.Context) {
	defer close(g.followDone)
	log := g.opts.Logger
	failures := 0
	for {
		err := g.followOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			// Log the first failure and then every hundredth, so that a
			// database outage does not flood the log.
			if failures == 1 || failures%100 == 0 {
				log.Error().Err(err).Int("failures", failures).Uint64("head_revision", uint64(g.Head())).
					Msg("follow change log failed; retrying")
			}
			sleepContext(ctx, followBackoff(failures))
			continue
		}
		if failures > 0 {
			log.Info().Int("failures", failures).Uint64("head_revision", uint64(g.Head())).
				Msg("follow change log recovered")
			failures = 0
		}
		g.maybeCollectStore(ctx)
		if err := g.shared.WaitForCommits(ctx, g.Head()); err != nil && ctx.Err() == nil {
			log.Error().Err(err).Msg("wait for change log commits failed")
			sleepContext(ctx, followBackoff(1))
		}
	}
}

// followBackoff returns the pause after the given number of consecutive
// failures: 50ms, doubling up to 2s.
func followBackoff(failures int) time.Duration {
	d := 50 * time.Millisecond
	for i := 1; i < failures && d < 2*time.Second; i++ {
		d *= 2
	}
	return min(d, 2*time.Second)
}

func sleepContext(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// followOnce applies one read of the change log, bounded by
// FreshnessTimeout so that a hung database does not hold applyLock.
func (g *Graph) followOnce(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, g.opts.FreshnessTimeout)
	defer cancel()
	if err := g.lockApply(ctx); err != nil {
		return err
	}
	defer g.unlockApply()
	_, err := g.readChangesLocked(ctx)
	return err
}

// maybeCollectStore deletes change log entries older than the retention
// window, at most once a minute.
func (g *Graph) maybeCollectStore(ctx context.Context) {
	if err := g.lockApply(ctx); err != nil {
		return
	}
	now := g.opts.Clock()
	due := now.Sub(g.lastStoreGC) >= time.Minute
	if due {
		g.lastStoreGC = now
	}
	g.unlockApply()
	if !due {
		return
	}
	n, err := g.shared.CollectChanges(ctx, now.Add(-g.opts.RetentionWindow))
	if err != nil {
		g.opts.Logger.Error().Err(err).Msg("collect change log failed")
		return
	}
	if n > 0 {
		g.opts.Logger.Info().Int64("deleted", n).Dur("retention_window", g.opts.RetentionWindow).
			Msg("collected change log")
	}
}

// readChangesLocked applies the commits that one read of the change log
// returns after the index head, and returns how many it applied. When the
// change log no longer holds the commit after the head, it reloads the
// index from the store's current state and counts that as one. The caller
// holds applyLock.
func (g *Graph) readChangesLocked(ctx context.Context) (int, error) {
	applied := 0
	err := g.shared.ChangesContext(ctx, g.Head(), func(c Commit) error {
		head := g.Head()
		if c.Revision <= head {
			return nil
		}
		if c.Revision != head+1 {
			return fmt.Errorf("change log skips from revision %d to %d: %w", head, c.Revision, ErrChangesCollected)
		}
		g.index().apply(c)
		applied++
		return nil
	})
	if applied > 0 {
		g.broadcast()
		g.maybeCollectLocked(g.opts.Clock())
	}
	if errors.Is(err, ErrChangesCollected) {
		if err := g.reloadLocked(); err != nil {
			return applied, err
		}
		return applied + 1, nil
	}
	return applied, err
}

// reloadLocked replaces the index with one built from the store's current
// state. Revisions before that state's head become unreadable on this
// process. The caller holds applyLock.
func (g *Graph) reloadLocked() error {
	old := g.Head()
	state, err := g.store.Load()
	if err != nil {
		return fmt.Errorf("reload index after revision %d: %w", old, err)
	}
	if state.Head < old {
		return fmt.Errorf("reload index: the store head %d is older than this process's head %d", state.Head, old)
	}
	g.ix.Store(indexFromState(state, g.opts.Clock()))
	g.broadcast()
	g.opts.Logger.Warn().Uint64("from_revision", uint64(old)).Uint64("to_revision", uint64(state.Head)).
		Msg("reloaded index from the store because the change log after this node's head was collected")
	return nil
}

// catchUpLocked applies commits until the index head is at least target.
// The caller holds applyLock.
func (g *Graph) catchUpLocked(ctx context.Context, target Revision) error {
	for g.Head() < target {
		n, err := g.readChangesLocked(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("change log ends at revision %d, before revision %d", g.Head(), target)
		}
	}
	return nil
}

// catchUpTo applies commits until the index head is at least target or the
// change log has nothing more, and reports whether it reached target.
func (g *Graph) catchUpTo(ctx context.Context, target Revision) (bool, error) {
	if err := g.lockApply(ctx); err != nil {
		return false, err
	}
	defer g.unlockApply()
	for g.Head() < target {
		n, err := g.readChangesLocked(ctx)
		if err != nil {
			return false, err
		}
		if n == 0 {
			return false, nil
		}
	}
	return true, nil
}

// WaitForRevision returns once this process has applied rev. Over a
// SharedStore it reads the store's change log until it has, for at most
// Options.FreshnessTimeout. It fails with an error wrapping
// ErrRevisionUnavailable when rev is newer than the store's head, which
// means no process of this store issued it, and with one wrapping
// ErrNotCaughtUp when the store could not be read in time.
func (g *Graph) WaitForRevision(ctx context.Context, rev Revision) error {
	head := g.Head()
	if rev <= head {
		return nil
	}
	if g.shared == nil {
		return fmt.Errorf("revision %d is newer than the head %d: %w", rev, head, ErrRevisionUnavailable)
	}
	waitCtx, cancel := context.WithTimeout(ctx, g.opts.FreshnessTimeout)
	defer cancel()
	for {
		reached, err := g.catchUpTo(waitCtx, rev)
		if reached {
			return nil
		}
		if err == nil {
			var storeHead Revision
			storeHead, err = g.shared.Head(waitCtx)
			if err == nil && storeHead < rev {
				return fmt.Errorf("revision %d is newer than the head %d of the store: %w", rev, storeHead, ErrRevisionUnavailable)
			}
		}
		if err != nil {
			return g.notCaughtUp(ctx, rev, err)
		}
		// The store has rev, so its change log entry is visible to the
		// next read.
	}
}

// CatchUp reads the store's head revision, applies every commit up to it
// and returns it, for reads that must see every acknowledged write. For a
// Store that is not shared, it returns Head.
func (g *Graph) CatchUp(ctx context.Context) (Revision, error) {
	if g.shared == nil {
		return g.Head(), nil
	}
	waitCtx, cancel := context.WithTimeout(ctx, g.opts.FreshnessTimeout)
	defer cancel()
	head, err := g.shared.Head(waitCtx)
	if err != nil {
		return 0, g.notCaughtUp(ctx, 0, err)
	}
	reached, err := g.catchUpTo(waitCtx, head)
	if err == nil && !reached {
		err = fmt.Errorf("change log ends at revision %d, before the store head %d", g.Head(), head)
	}
	if err != nil {
		return 0, g.notCaughtUp(ctx, head, err)
	}
	return head, nil
}

// notCaughtUp wraps a failed catch-up in ErrNotCaughtUp, unless the
// caller's own context ended, whose error it returns as it is.
func (g *Graph) notCaughtUp(ctx context.Context, rev Revision, cause error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	what := "the store head"
	if rev > 0 {
		what = fmt.Sprintf("revision %d", rev)
	}
	return fmt.Errorf("%w: %s is not applied on this node (head %d) after %s: %v",
		ErrNotCaughtUp, what, g.Head(), g.opts.FreshnessTimeout, cause)
}
