package graph

// State is the whole stored graph at one revision.
type State struct {
	Head          Revision
	SchemaText    string
	Relationships []*Relationship
	Records       []RecordChange
}

// Store is the durable source of truth behind a Graph. Commit must make a
// transaction durable before it returns, because the Graph acknowledges the
// write as soon as Commit succeeds.
type Store interface {
	// Load returns the stored state at the head revision: every
	// relationship, every record and the schema text.
	Load() (State, error)
	// Commit stores one transaction, whose revision is head+1.
	Commit(c Commit) error
	// Changes calls fn for stored commits after the given revision, in
	// revision order. It may stop before the head; callers continue from
	// the last revision they saw.
	Changes(after Revision, fn func(Commit) error) error
	// Close releases the store.
	Close() error
}
