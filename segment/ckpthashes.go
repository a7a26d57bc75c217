package segment

import (
	"fmt"
	"sync"
)

// The last hashes section of a checkpoint: each stream's last hash (zeros
// for a stream without events), 32 bytes each in table order, then a
// CRC-32C of each seqChunk bytes of them, then zeros up to a multiple of 8
// bytes. An open does not read it: a stream's last hash is checked, with
// the chunk that holds it, when it is first used ([LastHashes.At]), so
// the rows an open reads are 4 to 6 bytes plus the name each (uvarints),
// not 47 as in format 7.

// hashSectionSize returns the size of the last hashes of n streams, and of
// their checksums.
func hashSectionSize(n int) (hashes, sums int) {
	hashes = 32 * n
	return hashes, 4 * ((hashes + seqChunk - 1) / seqChunk)
}

// writeHashes yields the last hashes section of c's streams, its padding
// after the checksums included, the section starting at offset at of the
// file; it reports false once the consumer stopped.
func writeHashes(c *Checkpoint, at int, yield func([]byte) bool) bool {
	w := chunkWriter{buf: make([]byte, 0, seqChunk), yield: yield}
	for i := range c.Streams {
		w.buf = append(w.buf, c.Streams[i].LastHash[:]...)
		if !w.filled() {
			return false
		}
	}
	if len(w.buf) > 0 && !w.flush() {
		return false
	}
	hashes, sums := hashSectionSize(len(c.Streams))
	return yield(append(w.sums, make([]byte, pad8(at+hashes+sums))...))
}

// LastHashes is the last hashes section of a checkpoint, each chunk
// checked against its checksum when first used. It is safe for concurrent
// use; it keeps the section's bytes, not the rest of the checkpoint.
type LastHashes struct {
	chunkSums
	once sync.Once
}

// LastHashes returns the checker of f's last hashes: f's, made on first
// use.
func (f *CheckpointFile) LastHashes() *LastHashes {
	h := &f.lastHashes
	h.once.Do(func() { h.chunkSums = newChunkSums("last hashes", f.hashes, f.hashSums) })
	return h
}

// At returns the last hash of stream i, once the chunk that holds it is
// checked; a chunk that fails its checksum fails every hash in it (with
// an error matching [ErrCorrupt]), every time.
func (h *LastHashes) At(i int) ([32]byte, error) {
	if i < 0 || 32*i >= len(h.raw) {
		return [32]byte{}, fmt.Errorf("segment: last hash of stream %d of %d", i, len(h.raw)/32)
	}
	if err := h.chunk(32 * i / seqChunk); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.raw[32*i:]), nil
}
