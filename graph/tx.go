package graph

import (
	"errors"
	"fmt"
)

// Op is the kind of one change in a transaction.
type Op int

const (
	// OpTouch creates the relationship or replaces its caveat and expiration.
	OpTouch Op = iota + 1
	// OpDelete removes the relationship.
	OpDelete
)

// Change is one committed mutation.
type Change struct {
	Op           Op
	Relationship *Relationship
}

// ErrAlreadyExists is returned by Tx.Create for a relationship that exists.
var ErrAlreadyExists = errors.New("relationship already exists")

// Tx is a write transaction. It reads the head revision plus its own
// buffered changes, and is committed by Graph.Update when its function
// returns nil.
type Tx struct {
	snap    Snapshot
	changes []Change
	pending map[Key]int // index into changes of the last change to a key
	records []RecordChange
	schema  *string
}

// Snapshot returns the head revision the transaction started from, without
// the transaction's own changes.
func (tx *Tx) Snapshot() Snapshot { return tx.snap }

// Get returns the relationship with key k as the transaction sees it.
func (tx *Tx) Get(k Key) *Relationship {
	if i, ok := tx.pending[k]; ok {
		if tx.changes[i].Op == OpDelete {
			return nil
		}
		return tx.changes[i].Relationship
	}
	return tx.snap.Find(k)
}

// Create adds r, or returns an error wrapping ErrAlreadyExists.
func (tx *Tx) Create(r *Relationship) error {
	if tx.Get(r.Key) != nil {
		return fmt.Errorf("create %s: %w", r.Key, ErrAlreadyExists)
	}
	tx.add(Change{Op: OpTouch, Relationship: r})
	return nil
}

// Touch adds r or replaces the relationship with its key.
func (tx *Tx) Touch(r *Relationship) { tx.add(Change{Op: OpTouch, Relationship: r}) }

// Delete removes the relationship with key k, and reports whether it existed.
func (tx *Tx) Delete(k Key) bool {
	existing := tx.Get(k)
	if existing == nil {
		return false
	}
	tx.add(Change{Op: OpDelete, Relationship: existing})
	return true
}

// SetSchema replaces the schema text.
func (tx *Tx) SetSchema(text string) { tx.schema = &text }

// Changes returns the number of buffered relationship and record changes.
func (tx *Tx) Changes() int { return len(tx.changes) + len(tx.records) }

func (tx *Tx) add(c Change) {
	if tx.pending == nil {
		tx.pending = make(map[Key]int)
	}
	if i, ok := tx.pending[c.Relationship.Key]; ok {
		tx.changes[i] = c
		return
	}
	tx.pending[c.Relationship.Key] = len(tx.changes)
	tx.changes = append(tx.changes, c)
}
