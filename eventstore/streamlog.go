package eventstore

import (
	"runtime"
	"sync/atomic"

	"github.com/batpak-go/batpak/internal/huge"
)

// stream is the state of one stream: 80 bytes.
type stream struct {
	entity   string
	seqs     []uint32 // with stateWide, its seqList (see list)
	lastHash [32]byte
	scope    uint32        // index into streamLog.scopes
	state    atomic.Uint32 // stateDeleted, stateWide
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
}

// mapped is a file's mapping, released by the garbage collector once
// nothing refers to it: memory that slices point into, which the
// collector itself does not track.
type mapped struct {
	size int // never zero: AddCleanup needs an object of some size
}

// keepMapped returns a mapped whose release is called once it is no
// longer referenced.
func keepMapped(size int, release func() error) *mapped {
	m := &mapped{size: size}
	runtime.AddCleanup(m, func(release func() error) { _ = release() }, release)
	return m
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

// preallocate makes room for n streams in one allocation; the log must be
// empty.
func (l *streamLog) preallocate(n int) {
	all := huge.Make[stream]((n + streamChunk - 1) / streamChunk * streamChunk)
	for k := 0; k < len(all); k += streamChunk {
		l.chunks = append(l.chunks, (*[streamChunk]stream)(all[k:k+streamChunk]))
	}
}

// id returns the id of st, one of the log's streams.
func (l *streamLog) id(st *stream) streamID {
	return streamID{scope: l.scopes[st.scope], entity: st.entity}
}
