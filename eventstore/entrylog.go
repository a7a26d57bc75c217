package eventstore

import "github.com/batpak-go/batpak/segment"

// entryChunkBits sets the chunk size of an entryLog: 16,384 entries, so
// that one block of a checkpoint decodes into one chunk.
const entryChunkBits = segment.CheckpointBlockBits

const entryChunk = 1 << entryChunkBits

// entryLog is the append-only array of index entries, stored in fixed-size
// chunks so it grows without ever copying (a million entries would
// otherwise be copied several times over as a slice grows). Full chunks
// are packed ([segment.PackedBlock], as a checkpoint holds them); the last one, while appends fill it, is a
// plain array. A copy of the struct is a consistent snapshot: published
// entries are never modified, appends only write past every snapshot's
// length, and the plain chunk a snapshot holds stays as it is when the
// log packs it and moves on.
type entryLog struct {
	packed []*segment.PackedBlock // chunks 0 … len(packed)-1, full
	tail   *[entryChunk]entry     // chunk len(packed), or nil if no entry is past the packed ones
	n      uint64
	// base holds the checkpoint the log was loaded from: the words of
	// its packed chunks lie there (see segment.CheckpointFile.Block).
	base *mapped
}

// len returns the number of entries: the last sequence.
func (l *entryLog) len() uint64 { return l.n }

// at returns the entry of global sequence seq (1 ≤ seq ≤ len()).
func (l *entryLog) at(seq uint64) entry {
	i := seq - 1
	if c := i >> entryChunkBits; c < uint64(len(l.packed)) {
		return l.packed[c].At(uint32(i & (entryChunk - 1)))
	}
	return l.tail[i&(entryChunk-1)]
}

// append adds e as sequence len()+1. The append that fills the last
// chunk packs it.
func (l *entryLog) append(e entry) {
	if l.tail == nil {
		l.tail = new([entryChunk]entry)
	}
	l.tail[l.n&(entryChunk-1)] = e
	l.n++
	if l.n&(entryChunk-1) == 0 {
		l.packed = append(l.packed, segment.PackBlock(l.tail))
		l.tail = nil
	}
}

// withUpdates returns a copy of l in which the entries of the given
// sequences are replaced. Chunks holding none of them are shared; the
// others are unpacked, changed and packed again, or copied if plain, so
// snapshots taken before never see a change.
func (l entryLog) withUpdates(updates map[uint64]entry) entryLog {
	byChunk := make(map[uint64][]uint64)
	for seq := range updates {
		c := (seq - 1) >> entryChunkBits
		byChunk[c] = append(byChunk[c], seq)
	}
	out := l
	out.packed = append([]*segment.PackedBlock(nil), l.packed...)
	for c, seqs := range byChunk {
		nc := new([entryChunk]entry)
		if c < uint64(len(l.packed)) {
			l.packed[c].Unpack(nc)
		} else {
			*nc = *l.tail
		}
		for _, seq := range seqs {
			nc[(seq-1)&(entryChunk-1)] = updates[seq]
		}
		if c < uint64(len(l.packed)) {
			out.packed[c] = segment.PackBlock(nc)
		} else {
			out.tail = nc
		}
	}
	return out
}

// streamsOf fills dst with the streams of the entries from sequence first,
// the first of a chunk, on: len(dst) of them, within the log.
func (l *entryLog) streamsOf(first uint64, dst []uint32) {
	if c := (first - 1) >> entryChunkBits; c < uint64(len(l.packed)) {
		l.packed[c].Streams(dst)
		return
	}
	for j := range dst {
		dst[j] = l.tail[j].Stream
	}
}
