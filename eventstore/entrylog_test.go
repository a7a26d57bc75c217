package eventstore

import (
	"runtime"
	"testing"
	"weak"
)

// TestEntryChunksShareSlabs checks that chunks cut from one slab are
// independent for copy-on-write updates, and that a slab is freed once
// no log uses its chunks any more.
func TestEntryChunksShareSlabs(t *testing.T) {
	first, last := checkSlabUpdates(t)
	runtime.GC()
	if first.Value() != nil || last.Value() != nil {
		t.Error("slabs still in use after the logs were dropped")
	}
}

// checkSlabUpdates updates a log of slab chunks and returns weak pointers
// to its first and last chunks.
func checkSlabUpdates(t *testing.T) (first, last weak.Pointer[[entryChunk]entry]) {
	n := slabChunks + 2
	l := entryLog{chunks: newEntryChunks(n), n: uint64(n) * entryChunk}
	for seq := uint64(1); seq <= l.len(); seq++ {
		l.at(seq).stream = uint32(seq)
	}
	updated := l.withUpdates(map[uint64]entry{2: {stream: 100}, entryChunk + 1: {stream: 200}})
	for seq, want := range map[uint64]uint32{1: 1, 2: 2, entryChunk + 1: entryChunk + 1, entryChunk + 2: entryChunk + 2} {
		if got := l.at(seq).stream; got != want {
			t.Errorf("snapshot: seq %d has stream %d, want %d", seq, got, want)
		}
	}
	for seq, want := range map[uint64]uint32{1: 1, 2: 100, entryChunk + 1: 200, 2*entryChunk + 1: 2*entryChunk + 1} {
		if got := updated.at(seq).stream; got != want {
			t.Errorf("updated: seq %d has stream %d, want %d", seq, got, want)
		}
	}
	updated.append(entry{stream: 7})
	if got := updated.at(updated.len()).stream; got != 7 || updated.len() != l.len()+1 {
		t.Errorf("append after the slabs: stream %d at %d", got, updated.len())
	}
	return weak.Make(l.chunks[0]), weak.Make(l.chunks[n-1])
}
