package graph

import (
	"fmt"
	"sync"
	"time"
)

// MemoryStore is a Store that keeps everything in process memory. It is
// not durable: it is meant for tests, benchmarks and throwaway servers.
type MemoryStore struct {
	mu      sync.Mutex
	commits []Commit
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

// Load implements Store. A new MemoryStore is empty.
func (m *MemoryStore) Load(fn func(*Relationship)) (Revision, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.commits) > 0 {
		return 0, "", fmt.Errorf("load memory store: a memory store can only be opened once")
	}
	return 0, "", nil
}

// Commit implements Store.
func (m *MemoryStore) Commit(rev Revision, at time.Time, changes []Change, schemaText *string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if want := Revision(len(m.commits)) + 1; rev != want {
		return fmt.Errorf("commit revision %d: store head is %d", rev, want-1)
	}
	m.commits = append(m.commits, Commit{Revision: rev, At: at, Changes: changes, Schema: schemaText})
	return nil
}

// Changes implements Store.
func (m *MemoryStore) Changes(after Revision, fn func(Commit) error) error {
	m.mu.Lock()
	var pending []Commit
	if int(after) < len(m.commits) {
		pending = append(pending, m.commits[after:]...)
	}
	m.mu.Unlock()
	for _, c := range pending {
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

// Close implements Store.
func (m *MemoryStore) Close() error { return nil }
