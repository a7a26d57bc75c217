package batpak

import (
	"slices"
	"strings"
	"time"

	"github.com/batpak-go/batpak/kind"
)

// Region selects events for [Store.Query], [Store.Subscribe] and
// [Store.Cursor]. Every set field narrows the selection; the zero Region
// selects everything. Entity without Scope matches that entity in every
// scope; a scoped view ([Store] backends' Scope) sets Scope itself.
type Region struct {
	Entity       string      // exactly this entity
	EntityPrefix string      // entities that start with this
	Scope        string      // only this scope
	Kinds        []kind.Kind // any of these kinds
	FromSequence uint64      // global sequence ≥ FromSequence
	ToSequence   uint64      // global sequence ≤ ToSequence (0: no bound)
	After        time.Time   // timestamp ≥ After
	Before       time.Time   // timestamp < Before
}

// Match reports whether rec lies in the region.
func (r *Region) Match(rec *Record) bool {
	return r.MatchStream(rec.Coordinate) &&
		r.MatchKind(rec.Kind) &&
		r.MatchSequence(rec.Sequence) &&
		r.MatchTime(rec.Timestamp.UnixMicro())
}

// MatchStream reports whether events of the stream c can lie in the
// region. Backends that filter index entries before decoding them use it
// and the other Match methods, so every backend selects alike.
func (r *Region) MatchStream(c Coordinate) bool {
	return (r.Entity == "" || r.Entity == c.Entity) && strings.HasPrefix(c.Entity, r.EntityPrefix) &&
		(r.Scope == "" || r.Scope == c.Scope)
}

// MatchKind reports whether events of kind k can lie in the region.
func (r *Region) MatchKind(k kind.Kind) bool {
	return len(r.Kinds) == 0 || slices.Contains(r.Kinds, k)
}

// MatchSequence reports whether the event at global sequence seq can lie
// in the region.
func (r *Region) MatchSequence(seq uint64) bool {
	return seq >= r.FromSequence && (r.ToSequence == 0 || seq <= r.ToSequence)
}

// MatchTime reports whether an event stamped us (Unix microseconds, the
// stored precision) can lie in the region.
func (r *Region) MatchTime(us int64) bool {
	return (r.After.IsZero() || us >= r.After.UnixMicro()) && (r.Before.IsZero() || us < r.Before.UnixMicro())
}
