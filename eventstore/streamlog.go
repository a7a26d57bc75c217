package eventstore

import (
	"runtime"
	"sync/atomic"

	"github.com/batpak-go/batpak/internal/huge"
	"github.com/batpak-go/batpak/segment"
)

// stream is the state of one stream: 56 bytes.
type stream struct {
	entity string
	seqs   []uint32      // with stateWide, its seqList (see list)
	scope  uint32        // index into streamLog.scopes
	state  atomic.Uint32 // stateDeleted, stateWide
	hashAt uint32        // where its last hash is: see streamLog.lastHash
}

const (
	stateDeleted = 1 << iota // a tombstone deleted the stream
	stateWide                // seqs holds 64-bit sequences
)

// isDeleted reports whether a tombstone deleted the stream.
func (s *stream) isDeleted() bool { return s.state.Load()&stateDeleted != 0 }

// markDeleted records that a tombstone deleted the stream.
func (s *stream) markDeleted() { s.state.Or(stateDeleted) }

// version returns the stream's version: its number of events.
func (s *stream) version() uint64 { return uint64(s.list().len()) }

// list returns the stream's sequences. Caller holds mu, or the commit
// mutex.
func (s *stream) list() seqList { return seqList{w: s.seqs, wide: s.state.Load()&stateWide != 0} }

// add appends seq to the stream's sequences. Caller holds mu for writing.
func (s *stream) add(seq uint64) {
	l := s.list()
	l.add(seq)
	s.seqs = l.w
	if l.wide {
		s.state.Or(stateWide)
	}
}

// streamChunk is the number of streams in a chunk of a streamLog.
const streamChunk = 512

// streamLog holds the streams, numbered from 0, in chunks that never move:
// a *stream stays valid as the log grows, and a copy of the log (a view)
// sees the streams that existed when it was taken. Streams are values, not
// pointers to separate allocations. It also holds the scopes the streams
// name by number.
type streamLog struct {
	chunks []*[streamChunk]stream
	n      uint32
	scopes []string
	// base holds the checkpoint the log was loaded from, whose words the
	// streams' sequences are (see indexFromCheckpoint): it is released
	// once no copy of this log or of the entry log is left.
	base *mapped
	// ckptHashes holds, in base, the last hashes of the checkpoint's
	// streams until they change.
	ckptHashes *segment.LastHashes
	// hashes holds the last hashes that changed since, or of streams
	// that no checkpoint held; every copy of the log shares it.
	hashes *hashSlab
}

// mapped is a checkpoint's bytes (a mapping, or a copy), released by the
// garbage collector once nothing refers to it: memory that slices point
// into, which the collector itself does not track.
type mapped struct {
	data []byte
}

// keep makes release run once m is no longer referenced.
func (m *mapped) keep(release func() error) {
	runtime.AddCleanup(m, func(release func() error) { _ = release() }, release)
}

// A stream's hashAt is 0 while it has no events, hashInSlab plus the
// number of its slot in the log's hashes, or its number plus 1 while its
// last hash is the checkpoint's (a checkpoint's stream keeps its number).
const hashInSlab = 1 << 31

// hashSlab holds last hashes in chunks that never move. Its slots are
// added under the index's lock for writing and read under it.
type hashSlab struct {
	chunks []*[streamChunk][32]byte
	n      uint32
}

// slot returns slot i.
func (hs *hashSlab) slot(i uint32) *[32]byte { return &hs.chunks[i/streamChunk][i%streamChunk] }

// lastHash returns the hash of st's last event (zeros if it has none). It
// reports false for a checkpoint's hash in a chunk that fails its
// checksum: memIndex.lastHashLocked then reads it from the stream's last
// frame. Caller holds the index's lock, or the commit mutex.
func (l *streamLog) lastHash(st *stream) ([32]byte, bool) {
	switch at := st.hashAt; {
	case at == 0:
		return [32]byte{}, true
	case at&hashInSlab != 0:
		return *l.hashes.slot(at &^ hashInSlab), true
	default:
		h, err := l.ckptHashes.At(int(at - 1))
		return h, err == nil
	}
}

// setLastHash records h as the hash of st's last event. Caller holds the
// index's lock for writing.
func (l *streamLog) setLastHash(st *stream, h *[32]byte) {
	if st.hashAt&hashInSlab == 0 {
		hs := l.hashes
		if hs.n%streamChunk == 0 {
			hs.chunks = append(hs.chunks, new([streamChunk][32]byte))
		}
		st.hashAt = hashInSlab | hs.n
		hs.n++
	}
	*l.hashes.slot(st.hashAt &^ hashInSlab) = *h
}

func (l *streamLog) len() uint32 { return l.n }

// at returns stream i; i < len().
func (l *streamLog) at(i uint32) *stream { return &l.chunks[i/streamChunk][i%streamChunk] }

// push adds a stream and returns its number and itself.
func (l *streamLog) push() (uint32, *stream) {
	i := l.n
	if i%streamChunk == 0 && int(i/streamChunk) == len(l.chunks) {
		l.chunks = append(l.chunks, new([streamChunk]stream))
	}
	l.n++
	return i, l.at(i)
}

// pushEmpty adds n zero streams in one allocation, to be filled in place
// (by several goroutines at once, each its own); the log must be empty.
func (l *streamLog) pushEmpty(n uint32) {
	all := huge.Make[stream]((int(n) + streamChunk - 1) / streamChunk * streamChunk)
	for k := 0; k < len(all); k += streamChunk {
		l.chunks = append(l.chunks, (*[streamChunk]stream)(all[k:k+streamChunk]))
	}
	l.n = n
}

// id returns the id of st, one of the log's streams.
func (l *streamLog) id(st *stream) streamID {
	return streamID{scope: l.scopes[st.scope], entity: st.entity}
}
