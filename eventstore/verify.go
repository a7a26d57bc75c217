package eventstore

import (
	"context"
	"fmt"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/segment"
)

// VerifyChain recomputes the hash of every event of the stream coord and
// checks each link to the previous event. Events removed by compaction are
// checked by their stubs' links (their content is gone). It returns a
// [*batpak.ChainError] for the first event that does not verify.
func (s *Store) VerifyChain(ctx context.Context, coord batpak.Coordinate) error {
	if err := s.checkRead(ctx); err != nil {
		return err
	}
	s.compactMu.RLock() // positions and files agree for the whole walk
	defer s.compactMu.RUnlock()
	seqs := s.ix.streamSeqs(coord)
	v := s.ix.snapshot()
	h := newChainHasher()
	var prev [32]byte
	for i := range seqs.len() {
		seq := seqs.at(i)
		e := v.at(seq)
		want := uint64(i + 1)
		broken := func(reason string) error {
			return &batpak.ChainError{Stream: coord, Version: want, Sequence: seq, Reason: reason}
		}
		sr, err := s.chainRecord(seq, e)
		if err != nil {
			return err
		}
		switch {
		case sr.Version != want:
			return broken("version out of order")
		case sr.PrevHash != prev:
			return broken("previous hash does not match the previous event")
		case sr.Kind != segment.KindHole && h.Sum(sr) != sr.Hash:
			return broken("hash does not match the event's content")
		}
		prev = sr.Hash
	}
	return nil
}

// chainRecord returns what the chain needs of event seq: the record, or for
// a removed event a record made from its stub (with Kind KindHole).
func (s *Store) chainRecord(seq uint64, e entry) (*segment.Record, error) {
	var rec segment.Record
	if err := s.reader.Read(e.Pos, &rec); err != nil {
		return nil, err
	}
	if e.Flags&segment.EntryDeleted == 0 {
		if rec.Seq != seq || rec.IsMarker() {
			return nil, &segment.CorruptError{Segment: e.Pos.Segment, Path: s.segmentPath(e.Pos.Segment), Offset: int64(e.Pos.Offset),
				Reason: fmt.Sprintf("frame holds sequence %d, the index says %d", rec.Seq, seq)}
		}
		return &rec, nil
	}
	stubs, err := segment.DecodeStubs(rec.Payload)
	if rec.Kind != segment.KindHole || err != nil {
		return nil, fmt.Errorf("eventstore: sequence %d: no stub at its position", seq)
	}
	for _, st := range stubs {
		if st.Seq == seq {
			return &segment.Record{Seq: seq, Kind: segment.KindHole, Version: st.Version, Entity: st.Entity, Scope: st.Scope,
				PrevHash: st.PrevHash, Hash: st.Hash}, nil
		}
	}
	return nil, fmt.Errorf("eventstore: sequence %d: no stub at its position", seq)
}
