package eventstore

import (
	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

// entryMatcher evaluates a Region against index entries without reading
// frames, per-stream answers cached, all but its time bounds: the index
// does not keep timestamps, so a reader checks those on the record
// ([batpak.Region.MatchTime]).
type entryMatcher struct {
	r       batpak.Region
	ix      *memIndex
	streams map[uint32]bool
}

func newEntryMatcher(r batpak.Region, ix *memIndex) *entryMatcher {
	return &entryMatcher{r: r, ix: ix, streams: make(map[uint32]bool)}
}

func (m *entryMatcher) match(seq uint64, e entry) bool {
	if !m.r.MatchSequence(seq) || !m.r.MatchKind(kind.Kind(e.Kind)) {
		return false
	}
	if m.r.Entity == "" && m.r.EntityPrefix == "" && m.r.Scope == "" {
		return true
	}
	ok, seen := m.streams[e.Stream]
	if !seen {
		m.ix.mu.RLock()
		id := m.ix.streams.id(m.ix.streams.at(e.Stream))
		ok = m.r.MatchStream(batpak.Coordinate{Entity: id.entity, Scope: id.scope})
		m.ix.mu.RUnlock()
		m.streams[e.Stream] = ok
	}
	return ok
}
