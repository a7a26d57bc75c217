package shred

import (
	"context"
	"sync"

	"github.com/batpak-go/batpak"
)

// MemoryKeys is a [KeyStore] in memory: memstore's, and the tests'.
type MemoryKeys struct {
	mu sync.Mutex
	m  map[batpak.Subject]Entry
}

// NewMemoryKeys returns an empty key store.
func NewMemoryKeys() *MemoryKeys { return &MemoryKeys{m: make(map[batpak.Subject]Entry)} }

// Load returns the entry of s.
func (m *MemoryKeys) Load(_ context.Context, s batpak.Subject) (*Entry, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.m[s]
	return &e, ok, nil
}

// Create stores e unless its subject has an entry.
func (m *MemoryKeys) Create(_ context.Context, e *Entry) (*Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.m[e.Subject]; ok {
		return &old, nil
	}
	m.m[e.Subject] = *e
	return e, nil
}

// Forget replaces the entry of s by a tombstone.
func (m *MemoryKeys) Forget(_ context.Context, s batpak.Subject) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[s] = Entry{Subject: s, Forgotten: true}
	return nil
}
