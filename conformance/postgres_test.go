package conformance

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authzed/spicedb/pkg/validationfile"

	"github.com/mandate-iam/mandate/graph/sqlstore"
	"github.com/mandate-iam/mandate/graph/sqlstore/pgtest"
)

// TestSpiceDBTestConfigsOnPostgres runs the assertions of every SpiceDB
// test config against a Mandate server whose graph lives in PostgreSQL,
// one database schema per file, so the shared-store write and read paths
// give the same answers as the embedded store.
func TestSpiceDBTestConfigsOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL; skipped with -short")
	}
	pg := pgtest.Start(t)
	dir := filepath.Join(spicedbModuleDir(t), "internal", "services", "integrationtesting", "testconfigs")
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("list validation files in %s: %v (%d found)", dir, err, len(paths))
	}
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			contents, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read %s: %v", path, err)
			}
			vf, err := validationfile.DecodeValidationFile(contents)
			if err != nil {
				t.Fatalf("decode %s: %v", path, err)
			}
			ctx := context.Background()
			cfg := sqlstore.Config{Dialect: sqlstore.Postgres, URI: pg.CreateSchema(t)}
			if _, err := sqlstore.Migrate(ctx, cfg); err != nil {
				t.Fatalf("migrate: %v", err)
			}
			store, err := sqlstore.Open(ctx, cfg)
			if err != nil {
				t.Fatalf("open PostgreSQL store: %v", err)
			}
			client := startServerOn(t, store)
			loadValidationFile(ctx, t, client, vf)
			runAssertions(ctx, t, client, vf.Assertions)
		})
	}
}
