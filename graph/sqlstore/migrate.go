package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SchemaVersion is the newest migration that this version of Mandate
// contains. Open rejects a database at any other version.
var SchemaVersion = latestMigration()

func latestMigration() int {
	latest := 0
	for v := range migrationStatements {
		latest = max(latest, v)
	}
	return latest
}

// ErrNotMigrated is returned by Open when the database lacks migrations
// that this version needs.
var ErrNotMigrated = errors.New("datastore not migrated")

// Migration is one applied schema change.
type Migration struct {
	Version int
	Name    string
}

// Migrate connects to the database and applies every migration it lacks,
// in version order, and returns the ones it applied. It is safe to run
// from several processes at once and to run again.
func Migrate(ctx context.Context, cfg Config) ([]Migration, error) {
	pool, err := connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	dsql := sqlFor(cfg.Dialect)
	if dsql.migrateInTransaction {
		var applied []Migration
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			applied = nil
			if _, err := tx.Exec(ctx, dsql.lockMigrations); err != nil {
				return fmt.Errorf("lock migrations: %w", err)
			}
			var err error
			applied, err = migrate(ctx, tx)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("migrate %s datastore: %w", cfg.Dialect, err)
		}
		return applied, nil
	}
	applied, err := migrate(ctx, pool)
	if err != nil {
		return nil, fmt.Errorf("migrate %s datastore: %w", cfg.Dialect, err)
	}
	return applied, nil
}

// execer runs statements, in a transaction or one by one.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func migrate(ctx context.Context, db execer) ([]Migration, error) {
	if _, err := db.Exec(ctx, sqlCreateMigrationsTable); err != nil {
		return nil, fmt.Errorf("create mandate_migrations: %w", err)
	}
	rows, err := db.Query(ctx, sqlAppliedMigrations)
	if err != nil {
		return nil, fmt.Errorf("read mandate_migrations: %w", err)
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, fmt.Errorf("read mandate_migrations: %w", err)
	}
	versions := make([]int, 0, len(migrationStatements))
	for v := range migrationStatements {
		versions = append(versions, v)
	}
	slices.Sort(versions)
	var applied []Migration
	for _, v := range versions {
		if slices.Contains(done, int32(v)) {
			continue
		}
		for i, stmt := range migrationStatements[v] {
			if _, err := db.Exec(ctx, stmt); err != nil {
				return nil, fmt.Errorf("migration %d, statement %d: %w", v, i+1, err)
			}
		}
		if _, err := db.Exec(ctx, sqlRecordMigration, v, migrationNames[v]); err != nil {
			return nil, fmt.Errorf("record migration %d: %w", v, err)
		}
		applied = append(applied, Migration{Version: v, Name: migrationNames[v]})
	}
	return applied, nil
}

// schemaVersion returns the newest migration applied to the database, or
// 0 when it has no mandate_migrations table.
func schemaVersion(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	var version int32
	err := pool.QueryRow(ctx, sqlSchemaVersion).Scan(&version)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return int(version), nil
}

func checkSchemaVersion(d Dialect, version int) error {
	switch {
	case version == 0:
		return fmt.Errorf("%w: the %s database has no Mandate tables; run `mandate migrate --datastore %s --datastore-uri URI` first",
			ErrNotMigrated, d, d)
	case version < SchemaVersion:
		return fmt.Errorf("%w: the %s database is at schema version %d, and this version of Mandate needs %d; run `mandate migrate --datastore %s --datastore-uri URI`",
			ErrNotMigrated, d, version, SchemaVersion, d)
	case version > SchemaVersion:
		return fmt.Errorf("the %s database is at schema version %d, newer than this version of Mandate knows (%d); upgrade Mandate",
			d, version, SchemaVersion)
	}
	return nil
}
