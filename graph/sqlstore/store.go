package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/mandate-iam/mandate/graph"
)

// Config configures a Store.
type Config struct {
	// Dialect is the database behind URI.
	Dialect Dialect
	// URI is a PostgreSQL connection URI or key=value string, as pgx
	// parses it; pool settings such as pool_max_conns may be part of it.
	URI string
	// PollInterval is how often a process reads the change log when no
	// notification woke it. The default is 1s for PostgreSQL, where
	// LISTEN/NOTIFY wakes followers and polling is only a fallback, and
	// 200ms for CockroachDB, which only polls.
	PollInterval time.Duration
	// Logger receives a line for each retried transaction and each loss
	// and recovery of the notification connection.
	Logger zerolog.Logger
}

// changesPageSize bounds the commits one change log read returns.
const changesPageSize = 1000

// collectBatchSize bounds the change log entries one DELETE removes.
const collectBatchSize = 1000

// Store is a graph.SharedStore in a PostgreSQL or CockroachDB database.
// Every process of a cluster opens one Store on the same database.
type Store struct {
	pool    *pgxpool.Pool
	dialect Dialect
	sql     dialectSQL
	poll    time.Duration
	log     zerolog.Logger

	// ctx ends when the store closes; it bounds the calls of graph.Store,
	// which take no context.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// wakeMu guards wake, latest and fullPage. wake is closed and replaced
	// when a notification or a read shows a commit after latest. fullPage
	// is true when the last change log read returned a full page, which
	// suggests that more entries follow.
	wakeMu   sync.Mutex
	wake     chan struct{}
	latest   graph.Revision
	fullPage bool

	// retries counts transactions run again after a retryable error.
	retries atomic.Int64
}

var _ graph.SharedStore = (*Store)(nil)

// Open connects to the database and checks that `mandate migrate` has
// created the tables this version needs. For PostgreSQL it also starts
// listening for commit notifications.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Dialect != Postgres && cfg.Dialect != CockroachDB {
		return nil, fmt.Errorf("open %s datastore: unknown dialect", cfg.Dialect)
	}
	pool, err := connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	version, err := schemaVersion(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open %s datastore: read schema version: %w", cfg.Dialect, err)
	}
	if err := checkSchemaVersion(cfg.Dialect, version); err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{
		pool:    pool,
		dialect: cfg.Dialect,
		sql:     sqlFor(cfg.Dialect),
		poll:    cfg.PollInterval,
		log:     cfg.Logger,
		wake:    make(chan struct{}),
	}
	if s.poll <= 0 {
		s.poll = time.Second
		if cfg.Dialect == CockroachDB {
			s.poll = 200 * time.Millisecond
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.sql.notify != "" {
		s.wg.Add(1)
		go s.listen()
	}
	return s, nil
}

// connect opens a connection pool and pings the database.
func connect(ctx context.Context, cfg Config) (*pgxpool.Pool, error) {
	poolCfg, err := pgxpool.ParseConfig(cfg.URI)
	if err != nil {
		// pgx's parse errors quote the URI, and its password masking is
		// best effort, so the error is not passed on.
		return nil, fmt.Errorf("open %s datastore: invalid datastore URI: it is not a postgres:// URI or key=value connection string", cfg.Dialect)
	}
	if poolCfg.MaxConns < 4 {
		// A write holds one connection while its catch-up reads the change
		// log on another, and the follower and readers need more.
		poolCfg.MaxConns = 4
	}
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, fmt.Errorf("open %s datastore: %w", cfg.Dialect, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open %s datastore at %s:%d: %w", cfg.Dialect, poolCfg.ConnConfig.Host, poolCfg.ConnConfig.Port, err)
	}
	return pool, nil
}

// Dialect returns the database dialect of the store.
func (s *Store) Dialect() Dialect { return s.dialect }

// Retries returns how many transactions the store ran again after a
// retryable error since it opened.
func (s *Store) Retries() int64 { return s.retries.Load() }

// Close stops listening for notifications and closes the connections.
func (s *Store) Close() error {
	s.cancel()
	s.wg.Wait()
	s.pool.Close()
	return nil
}

// Load implements graph.Store. It reads the head, the schema text, every
// relationship and every record in one read-only transaction, so they
// belong to one revision.
func (s *Store) Load() (graph.State, error) {
	var st graph.State
	opts := pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	if s.dialect == CockroachDB {
		opts.IsoLevel = pgx.Serializable
	}
	err := s.runTx(s.ctx, opts, func(tx pgx.Tx) error {
		st = graph.State{}
		var head int64
		if err := tx.QueryRow(s.ctx, sqlSelectHeadAndSchema).Scan(&head, &st.SchemaText); err != nil {
			return fmt.Errorf("read head: %w", err)
		}
		st.Head = graph.Revision(head)
		rels, err := queryRelationships(s.ctx, tx)
		if err != nil {
			return err
		}
		st.Relationships = rels
		records, err := queryRecords(s.ctx, tx)
		if err != nil {
			return err
		}
		st.Records = records
		return nil
	})
	if err != nil {
		return graph.State{}, fmt.Errorf("load %s datastore: %w", s.dialect, err)
	}
	s.observe(st.Head)
	return st, nil
}

func queryRelationships(ctx context.Context, tx pgx.Tx) ([]*graph.Relationship, error) {
	rows, err := tx.Query(ctx, sqlSelectRelationships)
	if err != nil {
		return nil, fmt.Errorf("read relationships: %w", err)
	}
	defer rows.Close()
	var out []*graph.Relationship
	for rows.Next() {
		var (
			r          graph.Relationship
			caveatJSON *string
			expiration *time.Time
		)
		err := rows.Scan(&r.ResourceType, &r.ResourceID, &r.Relation,
			&r.Subject.Type, &r.Subject.ID, &r.Subject.Relation, &r.Caveat, &caveatJSON, &expiration)
		if err != nil {
			return nil, fmt.Errorf("read relationships: %w", err)
		}
		if caveatJSON != nil {
			if err := json.Unmarshal([]byte(*caveatJSON), &r.CaveatContext); err != nil {
				return nil, fmt.Errorf("read relationship %s: caveat context: %w", r.Key, err)
			}
		}
		if expiration != nil {
			r.Expiration = expiration.UTC()
		}
		out = append(out, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read relationships: %w", err)
	}
	return out, nil
}

func queryRecords(ctx context.Context, tx pgx.Tx) ([]graph.RecordChange, error) {
	rows, err := tx.Query(ctx, sqlSelectRecords)
	if err != nil {
		return nil, fmt.Errorf("read records: %w", err)
	}
	defer rows.Close()
	var out []graph.RecordChange
	for rows.Next() {
		var rc graph.RecordChange
		if err := rows.Scan(&rc.Key.Kind, &rc.Key.ID, &rc.Data); err != nil {
			return nil, fmt.Errorf("read records: %w", err)
		}
		out = append(out, rc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read records: %w", err)
	}
	return out, nil
}

// Head implements graph.SharedStore.
func (s *Store) Head(ctx context.Context) (graph.Revision, error) {
	var head int64
	if err := s.pool.QueryRow(ctx, sqlSelectHead).Scan(&head); err != nil {
		return 0, fmt.Errorf("read %s datastore head: %w", s.dialect, err)
	}
	s.observe(graph.Revision(head))
	return graph.Revision(head), nil
}

// Changes implements graph.Store.
func (s *Store) Changes(after graph.Revision, fn func(graph.Commit) error) error {
	return s.ChangesContext(s.ctx, after, fn)
}

// ChangesContext implements graph.SharedStore. It returns at most
// changesPageSize commits. The rows are read before fn is called, so a
// slow fn does not hold a connection.
func (s *Store) ChangesContext(ctx context.Context, after graph.Revision, fn func(graph.Commit) error) error {
	rows, err := s.pool.Query(ctx, sqlSelectChanges, int64(after), changesPageSize)
	if err != nil {
		return fmt.Errorf("read %s change log after revision %d: %w", s.dialect, after, err)
	}
	type entry struct {
		rev     int64
		payload []byte
	}
	var entries []entry
	for rows.Next() {
		var e entry
		if err := rows.Scan(&e.rev, &e.payload); err != nil {
			rows.Close()
			return fmt.Errorf("read %s change log after revision %d: %w", s.dialect, after, err)
		}
		entries = append(entries, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s change log after revision %d: %w", s.dialect, after, err)
	}

	s.wakeMu.Lock()
	s.fullPage = len(entries) == changesPageSize
	s.wakeMu.Unlock()
	if len(entries) == 0 {
		return nil
	}
	// Writers serialize on the head row and each adds the entry of head+1,
	// so the log has no gaps except where collection deleted entries.
	if first := graph.Revision(entries[0].rev); first != after+1 {
		return fmt.Errorf("read %s change log after revision %d: the oldest kept entry is revision %d: %w",
			s.dialect, after, first, graph.ErrChangesCollected)
	}
	s.observe(graph.Revision(entries[len(entries)-1].rev))

	for _, e := range entries {
		c, err := graph.UnmarshalCommit(graph.Revision(e.rev), e.payload)
		if err != nil {
			return err
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

// CollectChanges implements graph.SharedStore.
func (s *Store) CollectChanges(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, sqlCollectChanges, before.UTC(), collectBatchSize)
		if err != nil {
			return total, fmt.Errorf("collect %s change log before %s: %w", s.dialect, before.UTC().Format(time.RFC3339), err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < collectBatchSize {
			return total, nil
		}
	}
}

// observe records that the store has commits up to rev and wakes
// WaitForCommits callers when that is news.
func (s *Store) observe(rev graph.Revision) {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	if rev <= s.latest {
		return
	}
	s.latest = rev
	close(s.wake)
	s.wake = make(chan struct{})
}

// WaitForCommits implements graph.SharedStore.
func (s *Store) WaitForCommits(ctx context.Context, after graph.Revision) error {
	s.wakeMu.Lock()
	wake, latest, fullPage := s.wake, s.latest, s.fullPage
	s.wakeMu.Unlock()
	if latest > after || fullPage {
		return nil
	}
	t := time.NewTimer(s.poll)
	defer t.Stop()
	select {
	case <-wake:
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
	}
	return nil
}
