package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"unsafe"
)

// The sequences section of a checkpoint: every stream's global sequences,
// in table order, so that an open uses them where they lie instead of
// linking every entry to its stream. A sequence takes one 32-bit word, or
// two (high word first) in a checkpoint whose last sequence does not fit
// in 32 bits; words are little-endian, as the store holds them, and
// start at a multiple of 8 bytes in the file. A CRC-32C of each seqChunk
// bytes of words follows them.
const seqChunk = 64 << 10

// chunkWriter yields a section of a checkpoint checked a chunk at a time:
// its bytes in parts of seqChunk bytes, then a CRC-32C of each.
type chunkWriter struct {
	buf   []byte
	sums  []byte
	yield func([]byte) bool
}

// filled yields buf once it holds a chunk; it reports false once the
// consumer stopped. Items never straddle two chunks: their sizes divide
// seqChunk.
func (s *chunkWriter) filled() bool {
	if len(s.buf) < seqChunk {
		return true
	}
	return s.flush()
}

func (s *chunkWriter) flush() bool {
	s.sums = binary.BigEndian.AppendUint32(s.sums, Checksum(s.buf))
	ok := s.yield(s.buf)
	s.buf = s.buf[:0]
	return ok
}

// finish yields the last bytes and the checksums.
func (s *chunkWriter) finish() bool {
	if len(s.buf) > 0 && !s.flush() {
		return false
	}
	return s.yield(s.sums)
}

// seqWriter yields the sequences section.
type seqWriter struct {
	chunkWriter
	wide bool // two words a sequence
}

// write adds the sequences w of one stream, one word each unless
// listWide, in the section's width; it reports false once the consumer
// stopped.
func (s *seqWriter) write(w []uint32, listWide bool) bool {
	switch {
	case s.wide == listWide:
		for _, v := range w {
			if !s.word(v) {
				return false
			}
		}
	case s.wide: // a narrow list in a wide checkpoint
		for _, v := range w {
			if !s.word(0) || !s.word(v) {
				return false
			}
		}
	default: // a wide list of sequences that all fit in a narrow checkpoint
		for i := 1; i < len(w); i += 2 {
			if !s.word(w[i]) {
				return false
			}
		}
	}
	return true
}

func (s *seqWriter) word(v uint32) bool {
	s.buf = binary.LittleEndian.AppendUint32(s.buf, v)
	return s.filled()
}

// seqSectionSize returns the size of the sequences section of a checkpoint
// of lastSeq events, and of its checksums.
func seqSectionSize(lastSeq uint64) (words, sums uint64) {
	words = 4 * lastSeq
	if lastSeq > math.MaxUint32 {
		words *= 2
	}
	return words, 4 * ((words + seqChunk - 1) / seqChunk)
}

// SeqWide reports whether the checkpoint holds two words a sequence.
func (f *CheckpointFile) SeqWide() bool { return f.LastSeq > math.MaxUint32 }

// Seqs returns the words of every stream's sequences, in table order:
// stream i's are the Version words (two per version if SeqWide) after
// those of the streams before it. They are the file's own bytes where
// they can be (see inPlace), else a copy. Check them with
// [CheckpointFile.SeqChecker] before trusting them.
func (f *CheckpointFile) Seqs() []uint32 {
	f.seqsOnce.Do(func() {
		if f.seqWords = inPlace[uint32](f.seqs); f.seqWords != nil {
			return
		}
		f.seqWords = make([]uint32, len(f.seqs)/4)
		for i := range f.seqWords {
			f.seqWords[i] = binary.LittleEndian.Uint32(f.seqs[4*i:])
		}
	})
	return f.seqWords
}

// CheckSeqs checks every checksum of the sequences section, with up to
// workers goroutines. It does not check what the words say: the caller,
// who knows the streams' entries, does.
func (f *CheckpointFile) CheckSeqs(workers int) error {
	return f.SeqChecker().CheckAll(workers)
}

// SeqChecker returns the checker of f's sequences section: f's, made on
// first use.
func (f *CheckpointFile) SeqChecker() *SeqChecker {
	f.checkerOnce.Do(func() {
		f.checker = &SeqChecker{words: f.Seqs(), chunkSums: newChunkSums("sequences", f.seqs, f.seqSums)}
	})
	return f.checker
}

// SeqChecker checks the words of a checkpoint's sequences section against
// their checksums a chunk (seqChunk bytes) at a time, when they are first
// used, and remembers each chunk's verdict: an open reads only the chunks
// of the streams it uses. It is safe for concurrent use; it keeps the
// section's bytes, not the rest of the checkpoint.
type SeqChecker struct {
	words []uint32 // [CheckpointFile.Seqs]
	chunkSums
}

// Check checks the chunks that hold w, a part of the words of
// [CheckpointFile.Seqs]; any other slice is an error.
func (c *SeqChecker) Check(w []uint32) error {
	if len(w) == 0 {
		return nil
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(c.words)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(w)))
	if p < base || (p-base)/4+uintptr(len(w)) > uintptr(len(c.words)) {
		return errors.New("segment: the words checked are not the checkpoint's sequences")
	}
	off := int(p - base) // of w's first word in the section, in bytes
	for k := off / seqChunk; k <= (off+4*len(w)-1)/seqChunk; k++ {
		if err := c.chunk(k); err != nil {
			return err
		}
	}
	return nil
}

// chunkSums checks a section of a checkpoint against the CRC-32C of each
// of its chunks (seqChunk bytes), each chunk once, remembering the verdict.
// It is safe for concurrent use.
type chunkSums struct {
	what    string          // the section, for errors
	raw     []byte          // the section's bytes in the file
	sums    []byte          // a CRC-32C per chunk
	verdict []atomic.Uint32 // per chunk: 0 not checked yet, chunkGood or chunkBad
}

func newChunkSums(what string, raw, sums []byte) chunkSums {
	return chunkSums{what: what, raw: raw, sums: sums, verdict: make([]atomic.Uint32, len(sums)/4)}
}

const (
	chunkGood = 1
	chunkBad  = 2
)

// CheckAll checks every chunk, with up to workers goroutines.
func (c *chunkSums) CheckAll(workers int) error {
	n := len(c.verdict)
	var next atomic.Int64
	var bad atomic.Int64
	bad.Store(-1)
	var wg sync.WaitGroup
	for range max(1, min(workers, n)) {
		wg.Go(func() {
			for k := int(next.Add(1) - 1); k < n && bad.Load() < 0; k = int(next.Add(1) - 1) {
				if c.chunk(k) != nil {
					bad.CompareAndSwap(-1, int64(k))
				}
			}
		})
	}
	wg.Wait()
	if k := bad.Load(); k >= 0 {
		return c.chunk(int(k))
	}
	return nil
}

// chunk checks chunk k, once.
func (c *chunkSums) chunk(k int) error {
	v := c.verdict[k].Load()
	if v == 0 {
		v = chunkBad
		if Checksum(c.raw[k*seqChunk:min(len(c.raw), (k+1)*seqChunk)]) == binary.BigEndian.Uint32(c.sums[4*k:]) {
			v = chunkGood
		}
		c.verdict[k].Store(v)
	}
	if v == chunkBad {
		return &CorruptError{Path: "checkpoint", Reason: fmt.Sprintf("%s chunk %d: checksum mismatch", c.what, k)}
	}
	return nil
}

// inPlace returns b's bytes as little-endian words of T, in place: where
// the host is little-endian and b starts at a multiple of T's size in
// memory (as a checkpoint's sequences and blocks' words do when it is
// mapped or read whole). Else it returns nil.
func inPlace[T uint32 | uint64](b []byte) []T {
	size := int(unsafe.Sizeof(T(0)))
	p := unsafe.Pointer(unsafe.SliceData(b))
	if !nativeLittle || len(b) < size || uintptr(p)%uintptr(size) != 0 {
		return nil
	}
	return unsafe.Slice((*T)(p), len(b)/size)
}

// nativeLittle reports whether the host stores integers little-endian.
var nativeLittle = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()
