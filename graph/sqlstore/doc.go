// Package sqlstore is a graph.SharedStore in PostgreSQL or CockroachDB, so
// that several Mandate servers can share one database.
//
// # Tables
//
// mandate_head has one row: the newest revision and the schema text at it.
// mandate_relationships and mandate_records hold the current state, one
// row per relationship or record. mandate_changelog holds one row per
// revision, with the commit as graph.MarshalCommit encodes it.
// mandate_migrations lists the applied migrations; `mandate migrate` runs
// them, and Open fails with ErrNotMigrated while any is missing.
//
// # Writes
//
// A write is one SERIALIZABLE transaction. It locks the head row (on
// PostgreSQL, first the whole head table with LOCK TABLE, before the
// transaction takes its snapshot), so writers of every server serialize
// and each allocates the revision head+1. Inside the lock the Graph
// applies the change log up to the head, runs the caller's transaction
// against that state, and the store writes the relationship and record
// rows, the new head and the change log row together. On PostgreSQL the
// transaction also sends NOTIFY mandate_changelog with the revision.
//
// # Reads
//
// Every server keeps its in-memory index current by reading the change
// log in revision order after its own head. A LISTEN connection (on
// PostgreSQL) or a poll interval (on CockroachDB, and on PostgreSQL as a
// fallback) wakes it to read. The change log, never a notification,
// decides what is applied. Entries older than the retention window are
// deleted, but never the head's; a server whose head fell behind the
// oldest kept entry reloads the current state instead.
//
// # What is tested
//
// PostgreSQL 15 is tested for real: the storetest conformance suite, two
// and three Graphs on one database under concurrent writes and token
// reads, a late-starting server, a server reloading after the change log
// was collected past its head, migrations, and a crash and restart of the
// PostgreSQL server under load.
//
// No CockroachDB server can run on the machines that test this code, so
// the CockroachDB dialect is tested only in parts. Its statements and
// cockroach-go's retry wrapper (SAVEPOINT cockroach_restart) run the
// conformance suite against PostgreSQL with one writing handle, and a fake
// transaction checks the retry statements after a serialization failure.
// Not tested: the statements on CockroachDB itself, its retries under real
// contention, running the migration DDL as separate statements there, and
// the performance of the single head row, which every write updates.
package sqlstore
