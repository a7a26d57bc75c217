package eventstore

import (
	"fmt"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/segment"
)

// publish makes a durable chunk visible: index entries, stream tips,
// correlation and causation links and idempotency keys, then wakes cursors.
func (s *Store) publish(st *stage) {
	ix := s.ix
	ix.mu.Lock()
	for i := range st.events {
		ev := &st.events[i]
		r := &ev.rec
		ix.add(r.Seq, entry{id: r.ID, corr: r.Correlation, cause: r.Causation, ts: r.Timestamp, version: r.Version, pos: ev.pos, kind: r.Kind},
			r.Entity, r.Scope, r.Hash)
	}
	for id := range st.deleted {
		if str := ix.lookup(id); str != nil {
			str.deleted.Store(true)
		}
	}
	for _, q := range st.reqs {
		if q.r.key == "" || q.dupOf >= 0 || q.syncOnly || q.err != nil || q.n == 0 {
			continue
		}
		k := segment.IdempotencyRecord{Key: q.r.key, First: st.events[q.first].rec.Seq, Count: uint32(q.n)}
		ix.keys[k.Key] = k
		s.activeKeys = append(s.activeKeys, k)
	}
	ix.mu.Unlock()
	s.stats.appendedEvents.Add(uint64(len(st.events)))
	s.wake()
}

// originalReceipts rebuilds the receipts of an earlier request from the
// index and the frames (for the hashes).
func (s *Store) originalReceipts(k segment.IdempotencyRecord) result {
	s.stats.idempotentHits.Add(1)
	entries := s.ix.snapshot()
	out := make([]batpak.Receipt, 0, k.Count)
	for seq := k.First; seq < k.First+uint64(k.Count); seq++ {
		if seq == 0 || seq > entries.len() {
			return result{err: fmt.Errorf("eventstore: idempotency key %q points at missing sequence %d", k.Key, seq)}
		}
		e := entries.at(seq)
		if !entries.visible(e) {
			return result{err: fmt.Errorf("%w: the events of idempotency key %q were deleted", batpak.ErrNotFound, k.Key)}
		}
		rec, err := s.readEntry(&entries, seq, e)
		if err != nil {
			return result{err: err}
		}
		out = append(out, batpak.Receipt{EventID: e.id, Sequence: seq, Version: e.version, Hash: rec.Hash})
	}
	return result{receipts: out}
}
