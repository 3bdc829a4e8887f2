package graph

import (
	"fmt"
	"sync"
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
func (m *MemoryStore) Load() (State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.commits) > 0 {
		return State{}, fmt.Errorf("load memory store: a memory store can only be opened once")
	}
	return State{}, nil
}

// Commit implements Store.
func (m *MemoryStore) Commit(c Commit) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if want := Revision(len(m.commits)) + 1; c.Revision != want {
		return fmt.Errorf("commit revision %d: store head is %d", c.Revision, want-1)
	}
	m.commits = append(m.commits, c)
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
