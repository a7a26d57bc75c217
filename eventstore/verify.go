package eventstore

import "github.com/batpak-go/batpak/segment"

// VerifyChain recomputes the hash of every event of entity's stream and
// checks each link to the previous event. It returns a [*ChainError] for
// the first event that does not verify.
func (s *Store) VerifyChain(entity string) error {
	var prev [32]byte
	h := newChainHasher()
	var want uint64 = 1
	for rec, err := range s.ReadStream(entity, 1) {
		if err != nil {
			return err
		}
		broken := func(reason string) error {
			return &ChainError{Entity: entity, Version: rec.Version, Sequence: rec.Sequence, Reason: reason}
		}
		if rec.Version != want {
			return broken("version out of order")
		}
		if rec.PrevHash != prev {
			return broken("previous hash does not match the previous event")
		}
		sr := segment.Record{
			Kind: uint16(rec.Kind), Version: rec.Version, Timestamp: rec.Timestamp.UnixMicro(),
			ID: rec.ID, Correlation: rec.CorrelationID, Causation: rec.CausationID,
			Entity: rec.Coordinate.Entity, Scope: rec.Coordinate.Scope,
			PrevHash: rec.PrevHash, Metadata: rec.Metadata, Payload: rec.Payload,
		}
		if h.sum(&sr) != rec.Hash {
			return broken("hash does not match the event's content")
		}
		prev = rec.Hash
		want++
	}
	return nil
}
