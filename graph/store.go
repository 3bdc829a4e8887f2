package graph

import "time"

// Store is the durable source of truth behind a Graph. Commit must make a
// transaction durable before it returns, because the Graph acknowledges the
// write as soon as Commit succeeds.
type Store interface {
	// Load calls fn for every stored relationship and returns the head
	// revision and the schema text in force at it.
	Load(fn func(*Relationship)) (head Revision, schemaText string, err error)
	// Commit stores one transaction under rev, which is head+1. A nil
	// schemaText leaves the schema unchanged.
	Commit(rev Revision, at time.Time, changes []Change, schemaText *string) error
	// Changes calls fn for stored commits after the given revision, in
	// revision order. It may stop before the head; callers continue from
	// the last revision they saw.
	Changes(after Revision, fn func(Commit) error) error
	// Close releases the store.
	Close() error
}
