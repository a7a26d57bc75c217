package eventstore

import (
	"math"
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/batpak-go/batpak/internal/huge"
	"github.com/batpak-go/batpak/segment"
)

// stream is the state of one stream: 40 bytes, 10 million of them in a
// store of 10 million streams, so its fields are packed by hand: its
// entity is a pointer and a length, not a string, and its sequences a
// pointer and two counts, not a slice.
type stream struct {
	name  *byte         // the entity's bytes: see entity
	words *uint32       // the sequences' words, n of c: see list
	n, c  uint32        // in sequences, each two words with stateWide
	scope uint32        // index into streamLog.scopes
	state atomic.Uint32 // stateDeleted, stateWide
	// hashAt is where its last hash is: see streamLog.lastHash.
	hashAt  uint32
	nameLen uint16
}

const (
	stateDeleted = 1 << iota // a tombstone deleted the stream
	stateWide                // words holds 64-bit sequences
)

// maxStreamEvents is the most events a stream holds (stream.n is 32
// bits): an append past it fails with ErrStreamFull.
const maxStreamEvents = math.MaxUint32

// entity returns the stream's entity.
func (s *stream) entity() string { return unsafe.String(s.name, s.nameLen) }

// setEntity records the stream's entity, whose bytes are never modified
// (at most [segment.MaxIndexString] of them: a coordinate's limit).
func (s *stream) setEntity(e string) { s.name, s.nameLen = unsafe.StringData(e), uint16(len(e)) }

// isDeleted reports whether a tombstone deleted the stream.
func (s *stream) isDeleted() bool { return s.state.Load()&stateDeleted != 0 }

// markDeleted records that a tombstone deleted the stream.
func (s *stream) markDeleted() { s.state.Or(stateDeleted) }

// version returns the stream's version: its number of events.
func (s *stream) version() uint64 { return uint64(s.n) }

// list returns the stream's sequences. Caller holds mu, or the commit
// mutex.
func (s *stream) list() seqList {
	wide := s.state.Load()&stateWide != 0
	k := uint64(1)
	if wide {
		k = 2
	}
	return seqList{w: unsafe.Slice(s.words, k*uint64(s.c))[:k*uint64(s.n)], wide: wide}
}

// setList makes l the stream's sequences. Caller holds mu for writing.
func (s *stream) setList(l seqList) {
	k := 1
	if l.wide {
		k = 2
		s.state.Or(stateWide)
	} else {
		s.state.And(^uint32(stateWide))
	}
	s.words, s.n, s.c = unsafe.SliceData(l.w), uint32(len(l.w)/k), uint32(min(cap(l.w)/k, math.MaxUint32))
}

// loadList makes w, n sequences in the state's width, the sequences of a
// stream being loaded: the caller sets its state, and no one else sees it
// yet.
func (s *stream) loadList(w []uint32, n uint32) { s.words, s.n, s.c = unsafe.SliceData(w), n, n }

// add appends seq to the stream's sequences, of fewer than
// maxStreamEvents. Caller holds mu for writing.
func (s *stream) add(seq uint64) {
	l := s.list()
	l.add(seq)
	s.setList(l)
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
	return streamID{scope: l.scopes[st.scope], entity: st.entity()}
}
