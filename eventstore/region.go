package eventstore

import (
	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

// entryMatcher evaluates a Region against index entries without reading
// frames; per-stream and per-scope answers are cached.
type entryMatcher struct {
	r       batpak.Region
	ix      *memIndex
	streams map[uint32]bool
	scopes  map[uint32]bool
}

func newEntryMatcher(r batpak.Region, ix *memIndex) *entryMatcher {
	return &entryMatcher{r: r, ix: ix, streams: make(map[uint32]bool), scopes: make(map[uint32]bool)}
}

func (m *entryMatcher) match(seq uint64, e *entry) bool {
	if !m.r.MatchSequence(seq) || !m.r.MatchKind(kind.Kind(e.kind)) || !m.r.MatchTime(e.ts) {
		return false
	}
	if m.r.Entity != "" || m.r.EntityPrefix != "" {
		ok, seen := m.streams[e.stream]
		if !seen {
			m.ix.mu.RLock()
			ok = m.r.MatchStream(batpak.Coordinate{Entity: m.ix.streams[e.stream].entity, Scope: m.r.Scope})
			m.ix.mu.RUnlock()
			m.streams[e.stream] = ok
		}
		if !ok {
			return false
		}
	}
	if m.r.Scope != "" {
		ok, seen := m.scopes[e.scope]
		if !seen {
			m.ix.mu.RLock()
			ok = m.ix.scopes[e.scope] == m.r.Scope
			m.ix.mu.RUnlock()
			m.scopes[e.scope] = ok
		}
		if !ok {
			return false
		}
	}
	return true
}
