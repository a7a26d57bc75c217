package eventstore

import (
	"fmt"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/segment"
)

// An append carrying an idempotency key that was already committed is
// answered with the receipts of the request that committed it, rebuilt
// from the index, and writes nothing.

// originalReceipts rebuilds the receipts of an earlier request from the
// index and the frames (for the hashes). Events that compaction removed
// since (retention) still answer: their stubs keep their hashes, so a
// retried request gets the same receipts whenever it comes; only a
// deleted stream's key answers ErrNotFound.
func (s *Store) originalReceipts(k segment.IdempotencyRecord) result {
	s.stats.idempotentHits.Add(1)
	entries := s.ix.snapshot()
	out := make([]batpak.Receipt, 0, k.Count)
	for seq := k.First; seq < k.First+uint64(k.Count); seq++ {
		if seq == 0 || seq > entries.len() {
			return result{err: fmt.Errorf("eventstore: idempotency key %q points at missing sequence %d", k.Key, seq)}
		}
		e := entries.at(seq)
		if entries.streams[e.stream].deleted.Load() {
			return result{err: fmt.Errorf("%w: the events of idempotency key %q were deleted", batpak.ErrNotFound, k.Key)}
		}
		hash, err := s.hashOf(&entries, seq, e)
		if err != nil {
			return result{err: err}
		}
		out = append(out, batpak.Receipt{EventID: e.id, Sequence: seq, Version: e.version, Hash: hash})
	}
	return result{receipts: out}
}

// hashOf returns the hash of event seq: from its frame, or for an event
// compaction removed, from its stub.
func (s *Store) hashOf(v *view, seq uint64, e *entry) ([32]byte, error) {
	if e.flags&segment.EntryDeleted == 0 {
		rec, err := s.readEntry(v, seq, e)
		return rec.Hash, err
	}
	s.compactMu.RLock() // the stub's position and its file agree
	defer s.compactMu.RUnlock()
	cur := s.ix.snapshot()
	sr, err := s.chainRecord(seq, cur.at(seq))
	if err != nil {
		return [32]byte{}, err
	}
	return sr.Hash, nil
}
