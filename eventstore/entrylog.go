package eventstore

import "github.com/batpak-go/batpak/segment"

// entryChunkBits sets the chunk size of an entryLog: 16,384 entries, so
// that one block of a checkpoint decodes into one chunk.
const entryChunkBits = segment.CheckpointBlockBits

const entryChunk = 1 << entryChunkBits

// entryLog is the append-only array of index entries, stored in fixed-size
// chunks so it grows without ever copying (a million entries would
// otherwise be copied several times over as a slice grows). A copy of the
// struct is a consistent snapshot: published entries are never modified,
// and appends only write past every snapshot's length.
type entryLog struct {
	chunks []*[entryChunk]entry
	n      uint64
}

// len returns the number of entries: the last sequence.
func (l *entryLog) len() uint64 { return l.n }

// at returns the entry of global sequence seq (1 ≤ seq ≤ len()).
func (l *entryLog) at(seq uint64) *entry {
	i := seq - 1
	return &l.chunks[i>>entryChunkBits][i&(entryChunk-1)]
}

// append adds e as sequence len()+1.
func (l *entryLog) append(e entry) {
	if l.n>>entryChunkBits == uint64(len(l.chunks)) {
		l.chunks = append(l.chunks, new([entryChunk]entry))
	}
	l.chunks[l.n>>entryChunkBits][l.n&(entryChunk-1)] = e
	l.n++
}

// slabChunks is how many chunks newEntryChunks allocates at once.
const slabChunks = 8

// newEntryChunks returns n zeroed chunks, for a log filled at once (from a
// checkpoint). They are cut from slabs of slabChunks chunks backed by huge
// pages where the kernel allows: filling them then takes few page faults.
// A slab is freed once none of its chunks is in use any more.
func newEntryChunks(n int) []*[entryChunk]entry {
	chunks := make([]*[entryChunk]entry, n)
	for first := 0; first < n; first += slabChunks {
		k := min(slabChunks, n-first)
		slab := makeHuge[entry](k * entryChunk)
		for j := range k {
			chunks[first+j] = (*[entryChunk]entry)(slab[j*entryChunk:])
		}
	}
	return chunks
}

// withUpdates returns a copy of l in which the entries of the given
// sequences are replaced. Chunks holding none of them are shared; the
// others are copied, so snapshots taken before never see a change.
func (l entryLog) withUpdates(updates map[uint64]entry) entryLog {
	chunks := append([]*[entryChunk]entry(nil), l.chunks...)
	copied := make(map[uint64]bool)
	for seq, e := range updates {
		i := seq - 1
		c := i >> entryChunkBits
		if !copied[c] {
			nc := new([entryChunk]entry)
			*nc = *chunks[c]
			chunks[c] = nc
			copied[c] = true
		}
		chunks[c][i&(entryChunk-1)] = e
	}
	return entryLog{chunks: chunks, n: l.n}
}
