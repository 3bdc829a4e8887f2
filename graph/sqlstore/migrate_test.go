package sqlstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mandate-iam/mandate/graph/sqlstore"
	"github.com/mandate-iam/mandate/graph/sqlstore/pgtest"
)

func TestOpenRequiresMigration(t *testing.T) {
	uri := pgtest.Schema(t)
	ctx := testCtx(t)
	_, err := sqlstore.Open(ctx, sqlstore.Config{Dialect: sqlstore.Postgres, URI: uri})
	if !errors.Is(err, sqlstore.ErrNotMigrated) {
		t.Fatalf("open an unmigrated database: got error %v, want ErrNotMigrated", err)
	}
	if !strings.Contains(err.Error(), "mandate migrate --datastore postgres") {
		t.Fatalf("open an unmigrated database: error %q does not name the migrate command", err)
	}
}

func TestMigrateTwice(t *testing.T) {
	uri := pgtest.Schema(t)
	ctx := testCtx(t)
	cfg := sqlstore.Config{Dialect: sqlstore.Postgres, URI: uri}
	applied, err := sqlstore.Migrate(ctx, cfg)
	if err != nil {
		t.Fatalf("first migrate: %v", err)
	}
	if len(applied) != sqlstore.SchemaVersion || applied[len(applied)-1].Version != sqlstore.SchemaVersion {
		t.Fatalf("first migrate: applied %v, want versions 1 to %d", applied, sqlstore.SchemaVersion)
	}
	applied, err = sqlstore.Migrate(ctx, cfg)
	if err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if len(applied) != 0 {
		t.Fatalf("second migrate: applied %v, want nothing", applied)
	}
	store, err := sqlstore.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open after migrating: %v", err)
	}
	store.Close()
}

func TestMigrateConcurrently(t *testing.T) {
	uri := pgtest.Schema(t)
	ctx := testCtx(t)
	cfg := sqlstore.Config{Dialect: sqlstore.Postgres, URI: uri}
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			applied, err := sqlstore.Migrate(ctx, cfg)
			if err != nil {
				t.Errorf("migrate: %v", err)
				return
			}
			mu.Lock()
			total += len(applied)
			mu.Unlock()
		})
	}
	wg.Wait()
	if total != sqlstore.SchemaVersion {
		t.Fatalf("4 concurrent migrate runs applied %d migrations in all, want %d", total, sqlstore.SchemaVersion)
	}
}

func TestOpenRejectsNewerSchema(t *testing.T) {
	uri := migratedDatabase(t, sqlstore.Postgres)
	ctx := testCtx(t)
	conn, err := pgx.Connect(ctx, uri)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `INSERT INTO mandate_migrations (version, name) VALUES (999, 'from a newer Mandate')`); err != nil {
		t.Fatalf("record a newer migration: %v", err)
	}
	_, err = sqlstore.Open(ctx, sqlstore.Config{Dialect: sqlstore.Postgres, URI: uri})
	if err == nil || !strings.Contains(err.Error(), "upgrade Mandate") {
		t.Fatalf("open a database of a newer Mandate: got error %v, want one asking to upgrade", err)
	}
}

func TestOpenRejectsBadURI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := sqlstore.Open(ctx, sqlstore.Config{Dialect: sqlstore.Postgres, URI: "postgres://user:secret@[::1"})
	if err == nil {
		t.Fatalf("open with a malformed URI: no error")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("open with a malformed URI: error %q repeats the password", err)
	}
}
