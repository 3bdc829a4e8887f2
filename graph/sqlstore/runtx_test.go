package sqlstore

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mandate-iam/mandate/graph"
)

// These tests run runTx against a fake database, because no CockroachDB
// server can run here: they check the statements that cockroach-go's
// retry wrapper sends and how often the transaction function runs.

// fakeDB records the statements of the transactions it begins and fails
// them as scripted.
type fakeDB struct {
	begins      int
	beginErrs   []error
	releaseErrs []error
	statements  []string
}

func (d *fakeDB) Begin(ctx context.Context) (pgx.Tx, error) {
	return d.BeginTx(ctx, pgx.TxOptions{})
}

func (d *fakeDB) BeginTx(_ context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	d.begins++
	if len(d.beginErrs) > 0 {
		err := d.beginErrs[0]
		d.beginErrs = d.beginErrs[1:]
		if err != nil {
			return nil, err
		}
	}
	d.statements = append(d.statements, strings.TrimSpace("BEGIN "+string(opts.IsoLevel)))
	return &fakeTx{db: d}, nil
}

// fakeTx implements the pgx.Tx methods that runTx and cockroach-go call;
// the embedded nil interface panics on any other. Like pgx, it ignores a
// Rollback after the transaction ended.
type fakeTx struct {
	pgx.Tx
	db    *fakeDB
	ended bool
}

func (tx *fakeTx) Exec(_ context.Context, sql string, _ ...any) (pgconn.CommandTag, error) {
	tx.db.statements = append(tx.db.statements, sql)
	if sql == "RELEASE SAVEPOINT cockroach_restart" && len(tx.db.releaseErrs) > 0 {
		err := tx.db.releaseErrs[0]
		tx.db.releaseErrs = tx.db.releaseErrs[1:]
		return pgconn.CommandTag{}, err
	}
	return pgconn.CommandTag{}, nil
}

func (tx *fakeTx) Commit(context.Context) error {
	tx.db.statements = append(tx.db.statements, "COMMIT")
	tx.ended = true
	return nil
}

func (tx *fakeTx) Rollback(context.Context) error {
	if !tx.ended {
		tx.db.statements = append(tx.db.statements, "ROLLBACK")
		tx.ended = true
	}
	return nil
}

var errSerialization = &pgconn.PgError{Code: "40001", Message: "restart transaction"}

// errNotSent is a connection error that pgconn.SafeToRetry accepts,
// because the request never reached the server.
type errNotSent struct{}

func (errNotSent) Error() string     { return "connection refused" }
func (errNotSent) SafeToRetry() bool { return true }

// failing returns a transaction function that fails with the given errors
// on its first calls and succeeds afterwards, and a pointer to its call
// count.
func failing(errs ...error) (func(pgx.Tx) error, *int) {
	calls := 0
	return func(pgx.Tx) error {
		calls++
		if calls <= len(errs) {
			return errs[calls-1]
		}
		return nil
	}, &calls
}

func run(t *testing.T, db *fakeDB, dialect Dialect, fn func(pgx.Tx) error) (error, int) {
	t.Helper()
	retries := 0
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := runTx(ctx, db, dialect, pgx.TxOptions{IsoLevel: pgx.Serializable}, fn,
		func(int, error) { retries++ })
	return err, retries
}

func requireStatements(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("statements:\ngot  %q\nwant %q", got, want)
	}
}

func TestRunTxCockroachRetriesInSavepoint(t *testing.T) {
	db := &fakeDB{}
	fn, calls := failing(errSerialization)
	err, retries := run(t, db, CockroachDB, fn)
	if err != nil {
		t.Fatalf("runTx: %v", err)
	}
	if *calls != 2 {
		t.Fatalf("transaction function ran %d times, want 2", *calls)
	}
	if db.begins != 1 || retries != 0 {
		t.Fatalf("began %d transactions with %d new attempts, want 1 and 0: cockroach-go retries inside one", db.begins, retries)
	}
	requireStatements(t, db.statements,
		"BEGIN serializable",
		"SAVEPOINT cockroach_restart",
		"ROLLBACK TO SAVEPOINT cockroach_restart",
		"RELEASE SAVEPOINT cockroach_restart",
		"COMMIT")
}

func TestRunTxCockroachRetriesFailedRelease(t *testing.T) {
	db := &fakeDB{releaseErrs: []error{errSerialization}}
	fn, calls := failing()
	if err, _ := run(t, db, CockroachDB, fn); err != nil {
		t.Fatalf("runTx: %v", err)
	}
	if *calls != 2 {
		t.Fatalf("transaction function ran %d times, want 2", *calls)
	}
	requireStatements(t, db.statements,
		"BEGIN serializable",
		"SAVEPOINT cockroach_restart",
		"RELEASE SAVEPOINT cockroach_restart",
		"ROLLBACK TO SAVEPOINT cockroach_restart",
		"RELEASE SAVEPOINT cockroach_restart",
		"COMMIT")
}

func TestRunTxCockroachReturnsOtherErrors(t *testing.T) {
	db := &fakeDB{}
	fn, calls := failing(graph.ErrAlreadyExists)
	err, retries := run(t, db, CockroachDB, fn)
	if !errors.Is(err, graph.ErrAlreadyExists) {
		t.Fatalf("runTx: got error %v, want the function's ErrAlreadyExists", err)
	}
	if *calls != 1 || retries != 0 {
		t.Fatalf("transaction function ran %d times with %d retries, want 1 and 0", *calls, retries)
	}
	requireStatements(t, db.statements, "BEGIN serializable", "SAVEPOINT cockroach_restart", "ROLLBACK")
}

func TestRunTxPostgresStartsNewTransaction(t *testing.T) {
	db := &fakeDB{}
	fn, calls := failing(errSerialization)
	err, retries := run(t, db, Postgres, fn)
	if err != nil {
		t.Fatalf("runTx: %v", err)
	}
	if *calls != 2 || db.begins != 2 || retries != 1 {
		t.Fatalf("function ran %d times in %d transactions with %d retries, want 2, 2 and 1", *calls, db.begins, retries)
	}
	requireStatements(t, db.statements, "BEGIN serializable", "ROLLBACK", "BEGIN serializable", "COMMIT")
}

func TestRunTxPostgresGivesUp(t *testing.T) {
	db := &fakeDB{}
	errs := make([]error, maxTxAttempts+1)
	for i := range errs {
		errs[i] = errSerialization
	}
	fn, calls := failing(errs...)
	err, retries := run(t, db, Postgres, fn)
	if !errors.Is(err, errSerialization) {
		t.Fatalf("runTx: got error %v, want the serialization failure", err)
	}
	if *calls != maxTxAttempts || retries != maxTxAttempts-1 {
		t.Fatalf("function ran %d times with %d retries, want %d and %d", *calls, retries, maxTxAttempts, maxTxAttempts-1)
	}
}

func TestRunTxPostgresReturnsOtherErrors(t *testing.T) {
	db := &fakeDB{}
	fn, calls := failing(graph.ErrAlreadyExists)
	err, retries := run(t, db, Postgres, fn)
	if !errors.Is(err, graph.ErrAlreadyExists) {
		t.Fatalf("runTx: got error %v, want the function's ErrAlreadyExists", err)
	}
	if *calls != 1 || retries != 0 {
		t.Fatalf("transaction function ran %d times with %d retries, want 1 and 0", *calls, retries)
	}
}

func TestRunTxRetriesUnsentBegin(t *testing.T) {
	for _, dialect := range []Dialect{Postgres, CockroachDB} {
		t.Run(dialect.String(), func(t *testing.T) {
			db := &fakeDB{beginErrs: []error{errNotSent{}}}
			fn, calls := failing()
			err, retries := run(t, db, dialect, fn)
			if err != nil {
				t.Fatalf("runTx: %v", err)
			}
			if *calls != 1 || db.begins != 2 || retries != 1 {
				t.Fatalf("function ran %d times, %d begins, %d retries; want 1, 2 and 1", *calls, db.begins, retries)
			}
		})
	}
}

func TestDialectStatements(t *testing.T) {
	pg := sqlFor(Postgres)
	if pg.lockHead != "LOCK TABLE mandate_head IN EXCLUSIVE MODE" {
		t.Fatalf("postgres lock statement: got %q", pg.lockHead)
	}
	if !strings.Contains(pg.notify, "pg_notify('mandate_changelog', $1)") {
		t.Fatalf("postgres notify statement: got %q", pg.notify)
	}
	if !strings.Contains(pg.lockMigrations, "pg_advisory_xact_lock") || !pg.migrateInTransaction {
		t.Fatalf("postgres migrations: lock %q, in transaction %v", pg.lockMigrations, pg.migrateInTransaction)
	}

	crdb := sqlFor(CockroachDB)
	if crdb != (dialectSQL{}) {
		t.Fatalf("cockroachdb statements: got %+v, want none of PostgreSQL's own", crdb)
	}

	// The statements both dialects run must avoid what CockroachDB lacks.
	shared := []string{
		sqlCreateMigrationsTable, sqlAppliedMigrations, sqlRecordMigration, sqlSchemaVersion,
		sqlSelectHead, sqlSelectHeadAndSchema, sqlSelectHeadForUpdate, sqlUpdateHead,
		sqlUpsertRelationship, sqlDeleteRelationship, sqlSelectRelationships,
		sqlUpsertRecord, sqlDeleteRecord, sqlSelectRecords,
		sqlInsertChange, sqlSelectChanges, sqlCollectChanges,
	}
	for v, stmts := range migrationStatements {
		if migrationNames[v] == "" {
			t.Fatalf("migration %d has no name", v)
		}
		shared = append(shared, stmts...)
	}
	for _, stmt := range shared {
		for _, postgresOnly := range []string{"LOCK TABLE", "pg_notify", "pg_advisory", "LISTEN", "SERIAL", "RETURNING"} {
			if strings.Contains(strings.ToUpper(stmt), strings.ToUpper(postgresOnly)) {
				t.Fatalf("shared statement uses %s:\n%s", postgresOnly, stmt)
			}
		}
	}
}

func TestParseDialect(t *testing.T) {
	for name, want := range map[string]Dialect{
		"postgres": Postgres, "PostgreSQL": Postgres, "cockroachdb": CockroachDB, "cockroach": CockroachDB,
	} {
		got, err := ParseDialect(name)
		if err != nil || got != want {
			t.Fatalf("ParseDialect(%q): got %v, %v; want %v", name, got, err, want)
		}
	}
	if _, err := ParseDialect("mysql"); err == nil || !strings.Contains(err.Error(), `"mysql"`) {
		t.Fatalf("ParseDialect(mysql): got error %v, want one naming the value", err)
	}
}

func TestRoundExpirations(t *testing.T) {
	exact := time.Date(2031, 5, 6, 7, 8, 9, 123456000, time.UTC)
	fine := &graph.Relationship{Expiration: exact.Add(789 * time.Nanosecond)}
	whole := &graph.Relationship{Expiration: exact}
	never := &graph.Relationship{}
	c := &graph.Commit{Changes: []graph.Change{
		{Op: graph.OpTouch, Relationship: fine},
		{Op: graph.OpTouch, Relationship: whole},
		{Op: graph.OpTouch, Relationship: never},
	}}
	roundExpirations(c)
	if got := c.Changes[0].Relationship.Expiration; !got.Equal(exact) {
		t.Fatalf("rounded expiration: got %s, want %s", got, exact)
	}
	if c.Changes[0].Relationship == fine || !fine.Expiration.Equal(exact.Add(789*time.Nanosecond)) {
		t.Fatalf("rounding changed the caller's relationship instead of a copy")
	}
	if c.Changes[1].Relationship != whole || c.Changes[2].Relationship != never {
		t.Fatalf("rounding copied relationships that needed no change")
	}
}

func TestCheckSchemaVersion(t *testing.T) {
	if err := checkSchemaVersion(Postgres, SchemaVersion); err != nil {
		t.Fatalf("current version: %v", err)
	}
	older := []int{0}
	if SchemaVersion > 1 {
		older = append(older, SchemaVersion-1)
	}
	for _, version := range older {
		err := checkSchemaVersion(Postgres, version)
		if !errors.Is(err, ErrNotMigrated) || !strings.Contains(err.Error(), "mandate migrate --datastore postgres") {
			t.Fatalf("version %d: got error %v, want ErrNotMigrated naming the migrate command", version, err)
		}
	}
	err := checkSchemaVersion(CockroachDB, SchemaVersion+1)
	if err == nil || errors.Is(err, ErrNotMigrated) || !strings.Contains(err.Error(), "upgrade Mandate") {
		t.Fatalf("newer version: got error %v, want one asking to upgrade Mandate", err)
	}
}
