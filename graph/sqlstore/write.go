package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cockroachdb/cockroach-go/v2/crdb/crdbpgxv5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mandate-iam/mandate/graph"
)

// Commit implements graph.Store. Graph uses Write instead; Commit serves
// callers that hold a whole commit, whose revision must be the head plus
// one.
func (s *Store) Commit(c graph.Commit) error {
	return s.Write(s.ctx, func(head graph.Revision) (*graph.Commit, error) {
		if c.Revision != head+1 {
			return nil, fmt.Errorf("commit revision %d: store head is %d", c.Revision, head)
		}
		return &c, nil
	})
}

// Write implements graph.SharedStore. The transaction locks the head row
// (and, on PostgreSQL, first the head table), reads the head, calls build,
// and writes the commit's relationship and record rows, the new head and
// the change log entry of head+1. On PostgreSQL it also notifies the other
// processes with the new revision, which PostgreSQL delivers at commit.
func (s *Store) Write(ctx context.Context, build func(head graph.Revision) (*graph.Commit, error)) error {
	var committed graph.Revision
	err := s.runTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable}, func(tx pgx.Tx) error {
		committed = 0
		if s.sql.lockHead != "" {
			if _, err := tx.Exec(ctx, s.sql.lockHead); err != nil {
				return fmt.Errorf("lock head: %w", err)
			}
		}
		var head int64
		if err := tx.QueryRow(ctx, sqlSelectHeadForUpdate).Scan(&head); err != nil {
			return fmt.Errorf("read head: %w", err)
		}
		c, err := build(graph.Revision(head))
		if err != nil || c == nil {
			return err
		}
		if c.Revision != graph.Revision(head)+1 {
			return fmt.Errorf("commit revision %d: store head is %d", c.Revision, head)
		}
		roundExpirations(c)
		if err := s.writeCommit(ctx, tx, c); err != nil {
			return err
		}
		committed = c.Revision
		return nil
	})
	if err != nil {
		return err
	}
	if committed > 0 {
		s.observe(committed)
	}
	return nil
}

// writeCommit sends the rows of one commit in a single batch.
func (s *Store) writeCommit(ctx context.Context, tx pgx.Tx, c *graph.Commit) error {
	payload, err := graph.MarshalCommit(*c)
	if err != nil {
		return err
	}
	b := &pgx.Batch{}
	for _, ch := range c.Changes {
		r := ch.Relationship
		k := r.Key
		switch ch.Op {
		case graph.OpTouch:
			var caveatJSON *string
			if len(r.CaveatContext) > 0 {
				js, err := json.Marshal(r.CaveatContext)
				if err != nil {
					return fmt.Errorf("encode caveat context of %s: %w", k, err)
				}
				text := string(js)
				caveatJSON = &text
			}
			var expiration *time.Time
			if !r.Expiration.IsZero() {
				e := r.Expiration.UTC()
				expiration = &e
			}
			b.Queue(sqlUpsertRelationship, k.ResourceType, k.ResourceID, k.Relation,
				k.Subject.Type, k.Subject.ID, k.Subject.Relation, r.Caveat, caveatJSON, expiration)
		case graph.OpDelete:
			b.Queue(sqlDeleteRelationship, k.ResourceType, k.ResourceID, k.Relation,
				k.Subject.Type, k.Subject.ID, k.Subject.Relation)
		default:
			return fmt.Errorf("commit revision %d: unknown operation %d on %s", c.Revision, ch.Op, k)
		}
	}
	for _, rc := range c.Records {
		if rc.Data == nil {
			b.Queue(sqlDeleteRecord, rc.Key.Kind, rc.Key.ID)
		} else {
			b.Queue(sqlUpsertRecord, rc.Key.Kind, rc.Key.ID, rc.Data)
		}
	}
	b.Queue(sqlUpdateHead, int64(c.Revision), c.Schema)
	b.Queue(sqlInsertChange, int64(c.Revision), c.At.UTC(), payload)
	if s.sql.notify != "" {
		b.Queue(s.sql.notify, strconv.FormatUint(uint64(c.Revision), 10))
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("write revision %d: %w", c.Revision, err)
	}
	return nil
}

// roundExpirations truncates expirations to the microsecond, the precision
// of TIMESTAMPTZ in both dialects, so that the process that writes a
// relationship holds the same value as the processes that read it back.
// Relationships are copied, not changed, because the caller may share them.
func roundExpirations(c *graph.Commit) {
	for i := range c.Changes {
		r := c.Changes[i].Relationship
		if r.Expiration.IsZero() {
			continue
		}
		if rounded := r.Expiration.Truncate(time.Microsecond); !rounded.Equal(r.Expiration) {
			copied := *r
			copied.Expiration = rounded
			c.Changes[i].Relationship = &copied
		}
	}
}

// maxTxAttempts bounds how often runTx starts a transaction. On
// CockroachDB each attempt may itself retry up to cockroach-go's default
// of 50 times inside the transaction.
const maxTxAttempts = 5

// txBeginner starts transactions; *pgxpool.Pool is one, and tests pass
// fakes.
type txBeginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// runTx runs fn in a transaction of the store's pool.
func (s *Store) runTx(ctx context.Context, opts pgx.TxOptions, fn func(pgx.Tx) error) error {
	return runTx(ctx, s.pool, s.dialect, opts, fn, func(attempt int, err error) {
		s.retries.Add(1)
		s.log.Warn().Err(err).Int("attempt", attempt).Str("dialect", s.dialect.String()).
			Msg("retrying datastore transaction")
	})
}

// runTx runs fn in a transaction and commits it, retrying as the dialect
// needs, and calls onRetry before each new attempt.
//
// PostgreSQL: a serialization failure (SQLSTATE 40001) or deadlock (40P01)
// aborts the whole transaction, so runTx starts a new one, up to
// maxTxAttempts times.
//
// CockroachDB: cockroach-go's crdbpgx.ExecuteTx retries fn inside the
// transaction, rolling back to its savepoint on 40001 and re-running fn.
// runTx starts a new transaction only after an error that pgconn reports
// as safe to retry, which means nothing reached the server.
//
// Either way fn may run several times; an error from fn that is not
// retryable ends runTx and is returned unchanged.
func runTx(ctx context.Context, db txBeginner, dialect Dialect, opts pgx.TxOptions,
	fn func(pgx.Tx) error, onRetry func(attempt int, err error)) error {
	for attempt := 1; ; attempt++ {
		var err error
		if dialect == CockroachDB {
			err = crdbpgx.ExecuteTx(ctx, db, opts, fn)
		} else {
			err = pgx.BeginTxFunc(ctx, db, opts, fn)
		}
		if err == nil || attempt >= maxTxAttempts || !retryable(dialect, err) || ctx.Err() != nil {
			return err
		}
		onRetry(attempt, err)
		t := time.NewTimer(time.Duration(attempt) * 10 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// retryable reports whether a failed transaction may run again: nothing
// of it was committed, and another attempt may succeed.
func retryable(dialect Dialect, err error) bool {
	if pgconn.SafeToRetry(err) {
		return true
	}
	if dialect == CockroachDB {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	return false
}
