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
		out = append(out, batpak.Receipt{EventID: rec.ID, Sequence: seq, Version: rec.Version, Hash: rec.Hash})
	}
	return result{receipts: out}
}
