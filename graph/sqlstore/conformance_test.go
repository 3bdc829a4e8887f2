package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/graph/sqlstore"
	"github.com/mandate-iam/mandate/graph/sqlstore/pgtest"
	"github.com/mandate-iam/mandate/graph/storetest"
)

// migratedDatabase creates a schema on the shared PostgreSQL server and
// runs the migrations in it.
func migratedDatabase(t *testing.T, dialect sqlstore.Dialect) string {
	t.Helper()
	uri := pgtest.Schema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := sqlstore.Migrate(ctx, sqlstore.Config{Dialect: dialect, URI: uri}); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return uri
}

// openStore opens a store on uri.
func openStore(t *testing.T, dialect sqlstore.Dialect, uri string) *sqlstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := sqlstore.Open(ctx, sqlstore.Config{Dialect: dialect, URI: uri, PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("open %s store: %v", dialect, err)
	}
	return store
}

func TestPostgresConformance(t *testing.T) {
	storetest.RunStoreTests(t, storetest.Backend{
		NewDataSet: func(t *testing.T) func(t *testing.T) graph.Store {
			uri := migratedDatabase(t, sqlstore.Postgres)
			return func(t *testing.T) graph.Store { return openStore(t, sqlstore.Postgres, uri) }
		},
		Durable: true,
		Shared:  true,
	})
}

// TestCockroachDialectOnPostgres runs the suite with the CockroachDB
// dialect's statements and cockroach-go's retry wrapper against
// PostgreSQL. It checks that path's SQL and its polling change stream,
// but not CockroachDB itself. The tests with several writing handles are
// left out: PostgreSQL keeps a transaction's snapshot across ROLLBACK TO
// SAVEPOINT, so the savepoint retries that resolve write conflicts on
// CockroachDB fail again on PostgreSQL.
func TestCockroachDialectOnPostgres(t *testing.T) {
	storetest.RunStoreTests(t, storetest.Backend{
		NewDataSet: func(t *testing.T) func(t *testing.T) graph.Store {
			uri := migratedDatabase(t, sqlstore.CockroachDB)
			return func(t *testing.T) graph.Store { return openStore(t, sqlstore.CockroachDB, uri) }
		},
		Durable: true,
	})
}
