package eventstore

import (
	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/segment"
)

// stage holds what the writer has encoded but not yet published: the frames
// of one chunk (requests bound for the same segment and the same sync) and
// the stream states they lead to.
type stage struct {
	buf     []byte
	scratch []byte
	recBuf  []byte
	nextSeq uint64
	pending []stagedEvent // the request being encoded
	events  []stagedEvent
	reqs    []stagedRequest
	streams map[streamID]streamTip
	keys    map[string]int // idempotency key → index in reqs
	deleted map[streamID]bool
	newIDs  map[[16]byte][16]byte
}

func newStage() stage {
	return stage{streams: make(map[streamID]streamTip), keys: make(map[string]int), deleted: make(map[streamID]bool), newIDs: make(map[[16]byte][16]byte)}
}

type streamTip struct {
	version uint64
	hash    [32]byte
	deleted bool
}

type stagedEvent struct {
	rec segment.Record
	pos segment.Position // Offset relative to the request's scratch until placed
}

type stagedRequest struct {
	r        *request
	first    int // index into events
	n        int
	dupOf    int // -1, or index of the request with the same idempotency key
	syncOnly bool
	// err is why the request was rejected. It is answered with the chunk,
	// not at once: it may reflect the chunk's events (a version conflict
	// with an event staged before it), which must not be revealed before
	// they are durable and published.
	err error
}

func (st *stage) reset() {
	st.buf = st.buf[:0]
	clear(st.pending)
	st.pending = st.pending[:0]
	clear(st.events) // drop payload references
	st.events = st.events[:0]
	clear(st.reqs)
	st.reqs = st.reqs[:0]
	clear(st.streams)
	clear(st.keys)
	clear(st.deleted)
	clear(st.newIDs)
}

func receiptsOf(evs []stagedEvent) []batpak.Receipt {
	out := make([]batpak.Receipt, len(evs))
	for i := range evs {
		e := &evs[i]
		out[i] = batpak.Receipt{EventID: e.rec.ID, Sequence: e.rec.Seq, Version: e.rec.Version, Hash: e.rec.Hash}
	}
	return out
}
