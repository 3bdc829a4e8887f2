package sqlstore

import (
	"fmt"
	"strings"
)

// Every SQL statement of the store is in this file. The statements that
// PostgreSQL and CockroachDB both accept are plain constants; the few that
// differ are fields of dialectSQL, filled in by sqlFor.

// Dialect is the SQL database a Store talks to.
type Dialect int

const (
	// Postgres is PostgreSQL; the tests run against PostgreSQL 15.
	Postgres Dialect = iota + 1
	// CockroachDB is CockroachDB, through its PostgreSQL wire protocol.
	CockroachDB
)

// ParseDialect returns the dialect named "postgres" or "cockroachdb".
func ParseDialect(name string) (Dialect, error) {
	switch strings.ToLower(name) {
	case "postgres", "postgresql":
		return Postgres, nil
	case "cockroachdb", "cockroach":
		return CockroachDB, nil
	}
	return 0, fmt.Errorf("invalid datastore dialect %q: use postgres or cockroachdb", name)
}

func (d Dialect) String() string {
	switch d {
	case Postgres:
		return "postgres"
	case CockroachDB:
		return "cockroachdb"
	}
	return fmt.Sprintf("Dialect(%d)", int(d))
}

// notifyChannel is the PostgreSQL LISTEN/NOTIFY channel that write
// transactions notify with their revision.
const notifyChannel = "mandate_changelog"

// migrationLockID is the key of the PostgreSQL advisory lock that keeps two
// `mandate migrate` runs from migrating at once. It is the ASCII of
// "mandate" read as an integer.
const migrationLockID = 0x6d616e64617465

// The tables. mandate_head has exactly one row, with id 1: the revision of
// the newest commit and the schema text in force at it. Write transactions
// lock that row, so they serialize across every process. The current
// relationships and records have one row each; mandate_changelog has one
// row per revision, with the commit encoded by graph.MarshalCommit.
var migrationStatements = map[int][]string{
	1: {
		`CREATE TABLE IF NOT EXISTS mandate_head (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	revision BIGINT NOT NULL,
	schema_text TEXT NOT NULL
)`,
		`INSERT INTO mandate_head (id, revision, schema_text) VALUES (1, 0, '') ON CONFLICT (id) DO NOTHING`,
		`CREATE TABLE IF NOT EXISTS mandate_relationships (
	resource_type TEXT NOT NULL,
	resource_id TEXT NOT NULL,
	relation TEXT NOT NULL,
	subject_type TEXT NOT NULL,
	subject_id TEXT NOT NULL,
	subject_relation TEXT NOT NULL,
	caveat_name TEXT NOT NULL,
	caveat_context TEXT,
	expiration TIMESTAMPTZ,
	PRIMARY KEY (resource_type, resource_id, relation, subject_type, subject_id, subject_relation)
)`,
		`CREATE TABLE IF NOT EXISTS mandate_records (
	kind TEXT NOT NULL,
	id TEXT NOT NULL,
	data BYTEA NOT NULL,
	PRIMARY KEY (kind, id)
)`,
		`CREATE TABLE IF NOT EXISTS mandate_changelog (
	revision BIGINT PRIMARY KEY,
	committed_at TIMESTAMPTZ NOT NULL,
	payload BYTEA NOT NULL
)`,
		`CREATE INDEX IF NOT EXISTS mandate_changelog_committed_at ON mandate_changelog (committed_at)`,
	},
}

// migrationNames describes each migration for `mandate migrate` output.
var migrationNames = map[int]string{
	1: "create the head, relationships, records and change log tables",
}

const (
	sqlCreateMigrationsTable = `CREATE TABLE IF NOT EXISTS mandate_migrations (
	version INTEGER PRIMARY KEY,
	name TEXT NOT NULL,
	applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`
	sqlAppliedMigrations = `SELECT version FROM mandate_migrations ORDER BY version`
	sqlRecordMigration   = `INSERT INTO mandate_migrations (version, name) VALUES ($1, $2) ON CONFLICT (version) DO NOTHING`
	sqlSchemaVersion     = `SELECT COALESCE(MAX(version), 0) FROM mandate_migrations`

	sqlSelectHead          = `SELECT revision FROM mandate_head WHERE id = 1`
	sqlSelectHeadAndSchema = `SELECT revision, schema_text FROM mandate_head WHERE id = 1`
	sqlSelectHeadForUpdate = `SELECT revision FROM mandate_head WHERE id = 1 FOR UPDATE`
	// sqlUpdateHead sets the head revision, and the schema text unless $2
	// is NULL.
	sqlUpdateHead = `UPDATE mandate_head SET revision = $1, schema_text = COALESCE($2, schema_text) WHERE id = 1`

	sqlUpsertRelationship = `INSERT INTO mandate_relationships
	(resource_type, resource_id, relation, subject_type, subject_id, subject_relation, caveat_name, caveat_context, expiration)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (resource_type, resource_id, relation, subject_type, subject_id, subject_relation)
DO UPDATE SET caveat_name = excluded.caveat_name, caveat_context = excluded.caveat_context, expiration = excluded.expiration`
	sqlDeleteRelationship = `DELETE FROM mandate_relationships
WHERE resource_type = $1 AND resource_id = $2 AND relation = $3
	AND subject_type = $4 AND subject_id = $5 AND subject_relation = $6`
	sqlSelectRelationships = `SELECT resource_type, resource_id, relation, subject_type, subject_id, subject_relation,
	caveat_name, caveat_context, expiration
FROM mandate_relationships`

	sqlUpsertRecord  = `INSERT INTO mandate_records (kind, id, data) VALUES ($1, $2, $3) ON CONFLICT (kind, id) DO UPDATE SET data = excluded.data`
	sqlDeleteRecord  = `DELETE FROM mandate_records WHERE kind = $1 AND id = $2`
	sqlSelectRecords = `SELECT kind, id, data FROM mandate_records`

	sqlInsertChange  = `INSERT INTO mandate_changelog (revision, committed_at, payload) VALUES ($1, $2, $3)`
	sqlSelectChanges = `SELECT revision, payload FROM mandate_changelog WHERE revision > $1 ORDER BY revision LIMIT $2`
	// sqlCollectChanges deletes up to $2 change log entries committed
	// before $1, never the head's, oldest first.
	sqlCollectChanges = `DELETE FROM mandate_changelog WHERE revision IN (
	SELECT revision FROM mandate_changelog
	WHERE committed_at < $1 AND revision < (SELECT revision FROM mandate_head WHERE id = 1)
	ORDER BY revision
	LIMIT $2
)`
)

// dialectSQL holds the statements that differ between dialects. An empty
// statement is one the dialect skips.
type dialectSQL struct {
	// lockHead runs first in every write transaction, before the
	// transaction's snapshot is taken. PostgreSQL takes the snapshot of a
	// SERIALIZABLE transaction at its first query, so locking the table
	// before it means the snapshot includes every earlier writer's commit
	// and the writer never fails with a serialization error. CockroachDB
	// has no LOCK TABLE; its SELECT ... FOR UPDATE and transaction retries
	// serialize writers instead.
	lockHead string
	// notify wakes the change log followers of other processes after a
	// commit. CockroachDB has no LISTEN/NOTIFY, so its followers poll.
	notify string
	// lockMigrations keeps concurrent migrate runs apart, inside the
	// migration transaction.
	lockMigrations string
	// migrateInTransaction is true when DDL runs in one transaction with
	// the version rows. CockroachDB runs each schema change as its own
	// statement, as its documentation recommends, which the IF NOT EXISTS
	// clauses make safe to repeat.
	migrateInTransaction bool
}

func sqlFor(d Dialect) dialectSQL {
	switch d {
	case CockroachDB:
		return dialectSQL{}
	default:
		return dialectSQL{
			lockHead:             `LOCK TABLE mandate_head IN EXCLUSIVE MODE`,
			notify:               `SELECT pg_notify('` + notifyChannel + `', $1)`,
			lockMigrations:       fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d)`, migrationLockID),
			migrateInTransaction: true,
		}
	}
}
