package eventstore

import (
	"slices"
	"strings"
	"time"

	"github.com/batpak-go/batpak/kind"
)

// Region selects events for [Store.Query], [Store.Subscribe] and
// [Store.Cursor]. Every set field narrows the selection; the zero Region
// selects everything.
type Region struct {
	Entity       string      // exactly this stream
	EntityPrefix string      // streams whose entity starts with this
	Scope        string      // only this scope
	Kinds        []kind.Kind // any of these kinds
	FromSequence uint64      // global sequence ≥ FromSequence
	ToSequence   uint64      // global sequence ≤ ToSequence (0: no bound)
	After        time.Time   // timestamp ≥ After
	Before       time.Time   // timestamp < Before
}

// Match reports whether rec lies in the region.
func (r *Region) Match(rec *Record) bool {
	return r.matchEntity(rec.Coordinate.Entity) &&
		(r.Scope == "" || r.Scope == rec.Coordinate.Scope) &&
		r.matchKind(rec.Kind) &&
		r.matchSeq(rec.Sequence) &&
		r.matchTime(rec.Timestamp.UnixMicro())
}

func (r *Region) matchEntity(e string) bool {
	return (r.Entity == "" || r.Entity == e) && strings.HasPrefix(e, r.EntityPrefix)
}

func (r *Region) matchKind(k kind.Kind) bool {
	return len(r.Kinds) == 0 || slices.Contains(r.Kinds, k)
}

func (r *Region) matchSeq(seq uint64) bool {
	return seq >= r.FromSequence && (r.ToSequence == 0 || seq <= r.ToSequence)
}

func (r *Region) matchTime(us int64) bool {
	return (r.After.IsZero() || us >= r.After.UnixMicro()) && (r.Before.IsZero() || us < r.Before.UnixMicro())
}

// entryMatcher evaluates a Region against index entries without reading
// frames; per-stream and per-scope answers are cached.
type entryMatcher struct {
	r       Region
	ix      *memIndex
	streams map[uint32]bool
	scopes  map[uint32]bool
}

func newEntryMatcher(r Region, ix *memIndex) *entryMatcher {
	return &entryMatcher{r: r, ix: ix, streams: make(map[uint32]bool), scopes: make(map[uint32]bool)}
}

func (m *entryMatcher) match(seq uint64, e *entry) bool {
	if !m.r.matchSeq(seq) || !m.r.matchKind(kind.Kind(e.kind)) || !m.r.matchTime(e.ts) {
		return false
	}
	if m.r.Entity != "" || m.r.EntityPrefix != "" {
		ok, seen := m.streams[e.stream]
		if !seen {
			m.ix.mu.RLock()
			ok = m.r.matchEntity(m.ix.streams[e.stream].entity)
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
