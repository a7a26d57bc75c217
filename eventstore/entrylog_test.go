package eventstore

import (
	"math"
	"testing"

	"github.com/batpak-go/batpak/segment"
)

// testEntry is the entry the log tests store at seq.
func testEntry(seq uint64) entry {
	return entry{Pos: segment.Position{Segment: uint32(seq >> 12), Offset: uint32(seq&4095) * 200, Length: 200}, Stream: uint32(seq % 1000), Kind: uint16(seq % 3)}
}

// TestEntryLogAppendPacks checks that the append that fills a chunk packs
// it, and that a snapshot taken before still reads its plain chunk.
func TestEntryLogAppendPacks(t *testing.T) {
	var l entryLog
	var before entryLog
	for seq := uint64(1); seq <= 2*entryChunk+10; seq++ {
		if seq == entryChunk {
			before = l
		}
		l.append(testEntry(seq))
	}
	if len(l.packed) != 2 || l.tail == nil {
		t.Fatalf("%d packed chunks, tail %v; want 2 and a tail", len(l.packed), l.tail != nil)
	}
	if len(before.packed) != 0 || before.len() != entryChunk-1 {
		t.Fatalf("snapshot has %d packed chunks and %d entries", len(before.packed), before.len())
	}
	for seq := uint64(1); seq <= l.len(); seq++ {
		if got := l.at(seq); got != testEntry(seq) {
			t.Fatalf("seq %d: %+v, want %+v", seq, got, testEntry(seq))
		}
		if seq <= before.len() && before.at(seq) != testEntry(seq) {
			t.Fatalf("snapshot: seq %d: %+v", seq, before.at(seq))
		}
	}
}

// TestEntryLogUpdates checks the copy-on-write of withUpdates on packed
// chunks and the plain tail: the log it came from, and any snapshot,
// never see a change, and chunks without updates are shared.
func TestEntryLogUpdates(t *testing.T) {
	var l entryLog
	for seq := uint64(1); seq <= 3*entryChunk+100; seq++ {
		l.append(testEntry(seq))
	}
	moved := func(seq uint64) entry {
		e := testEntry(seq)
		e.Pos = segment.Position{Segment: 1 << 31, Offset: math.MaxUint32 - uint32(seq), Length: 77}
		e.Flags |= segment.EntryDeleted
		return e
	}
	seqs := []uint64{1, 2, entryChunk, 2*entryChunk + 1, 3*entryChunk + 1, 3*entryChunk + 100}
	updates := make(map[uint64]entry)
	for _, seq := range seqs {
		updates[seq] = moved(seq)
	}
	updated := l.withUpdates(updates)
	if updated.packed[1] != l.packed[1] {
		t.Error("a chunk without updates was copied")
	}
	if updated.packed[0] == l.packed[0] || updated.packed[2] == l.packed[2] || updated.tail == l.tail {
		t.Error("an updated chunk is shared with the old log")
	}
	updated.append(testEntry(updated.len() + 1))
	for seq := uint64(1); seq <= l.len(); seq++ {
		if got := l.at(seq); got != testEntry(seq) {
			t.Fatalf("old log: seq %d: %+v, want %+v", seq, got, testEntry(seq))
		}
		want := testEntry(seq)
		if _, ok := updates[seq]; ok {
			want = moved(seq)
		}
		if got := updated.at(seq); got != want {
			t.Fatalf("updated log: seq %d: %+v, want %+v", seq, got, want)
		}
	}
	if got := updated.at(updated.len()); got != testEntry(updated.len()) {
		t.Errorf("append after the updates: %+v", got)
	}
}
