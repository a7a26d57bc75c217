package eventstore

import (
	"context"
	"fmt"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/segment"
)

// DeleteStream deletes entity's stream with a durable tombstone: its events
// disappear from every read at once, later appends to it fail with
// [ErrStreamDeleted], and [Store.Compact] removes them from the segment
// files (stubs keep sequences and the hash chain verifiable). Deleting a
// stream twice is not an error; deleting one that never existed is
// [ErrNotFound].
func (s *Store) DeleteStream(ctx context.Context, coord batpak.Coordinate) error {
	if err := coord.Validate(); err != nil {
		return err
	}
	_, err := s.submit(ctx, &request{delete: coord})
	return err
}

// encodeTombstone validates and encodes a tombstone request.
func (p *commitPipeline) encodeTombstone(st *stage, r *request) error {
	st.scratch = st.scratch[:0]
	clear(st.pending)
	st.pending = st.pending[:0]
	tip, err := p.tip(st, nil, idOf(r.delete))
	if err != nil {
		return err
	}
	if tip.version == 0 {
		return fmt.Errorf("%w: stream %s", batpak.ErrNotFound, r.delete)
	}
	if tip.deleted {
		return nil // the scratch stays empty: nothing to write
	}
	m := segment.Record{Seq: st.nextSeq - 1, Kind: segment.KindTombstone, Timestamp: p.env.cfg.clock().UnixMicro(),
		Entity: r.delete.Entity, Scope: r.delete.Scope}
	st.recBuf = segment.AppendRecord(st.recBuf[:0], &m)
	st.scratch, _ = segment.AppendFrame(st.scratch, st.recBuf)
	return nil
}
