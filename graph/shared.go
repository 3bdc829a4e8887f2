package graph

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// SharedStore is a Store that several processes write to at once, such as
// a SQL database behind several Mandate servers. Another process may commit
// between any two of this process's reads, so a Graph over a SharedStore
// does three things that it skips for a plain Store:
//
//   - Update runs inside Write, which holds the database's write lock, and
//     first applies to the index every commit up to the store's head, so
//     that the transaction's reads and preconditions see the newest state.
//   - A background goroutine follows the change log and applies the commits
//     of other processes, waking WaitForChange callers.
//   - WaitForRevision and CatchUp read the store when the index is behind.
type SharedStore interface {
	Store

	// Write runs build in one database transaction that holds the store's
	// write lock, so that writers in every process serialize. build gets
	// the store's head revision and returns the commit to store, whose
	// revision must be head+1, or nil to store nothing. Write returns an
	// error from build unchanged or wrapped with %w.
	//
	// Write may call build more than once when the database requests a
	// retry of the transaction. It may replace relationships in the
	// returned commit with the values the store keeps, for example an
	// expiration rounded to the database's precision, and the Graph
	// applies the commit as Write leaves it.
	Write(ctx context.Context, build func(head Revision) (*Commit, error)) error

	// Head returns the newest revision committed to the store.
	Head(ctx context.Context) (Revision, error)

	// ChangesContext is Changes with a context. It returns an error
	// wrapping ErrChangesCollected when the commit right after the given
	// revision was already collected.
	ChangesContext(ctx context.Context, after Revision, fn func(Commit) error) error

	// WaitForCommits returns at once when the store has seen a commit
	// after the given revision, and otherwise blocks until a commit may
	// have happened, a poll interval has passed, or ctx ends. A nil error
	// does not promise a new commit.
	WaitForCommits(ctx context.Context, after Revision) error

	// CollectChanges deletes the change log entries committed before t,
	// except the entry of the head revision, and returns how many it
	// deleted.
	CollectChanges(ctx context.Context, before time.Time) (int64, error)
}

// ErrChangesCollected is returned by a SharedStore's change log reads when
// the commits after the requested revision were garbage collected. A Graph
// that gets it reloads its index from the store's current state.
var ErrChangesCollected = fmt.Errorf("change log entries were collected: %w", ErrRevisionUnavailable)

// ErrNotCaughtUp is returned when this process could not apply a revision
// that the store has, within Options.FreshnessTimeout, for example because
// the database is unreachable. Retrying later may succeed.
var ErrNotCaughtUp = errors.New("index not caught up with the store")
