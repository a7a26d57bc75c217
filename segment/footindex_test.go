package segment_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/batpak-go/batpak/segment"
)

// ixBytes builds index encodings by hand, as docs/format.md describes them.
type ixBytes []byte

func (b ixBytes) uv(vs ...uint64) ixBytes {
	for _, v := range vs {
		b = binary.AppendUvarint(b, v)
	}
	return b
}

func (b ixBytes) sv(vs ...int64) ixBytes {
	for _, v := range vs {
		b = binary.AppendVarint(b, v)
	}
	return b
}

func (b ixBytes) raw(p ...byte) ixBytes { return append(b, p...) }

// idTime is the id's first six bytes, a UUIDv7's unix milliseconds.
func idTime(id [16]byte) int64 {
	return int64(binary.BigEndian.Uint64(append([]byte{0, 0}, id[:6]...)))
}

// v7 returns an id whose first six bytes hold ms and the rest fill.
func v7(ms uint64, fill byte) [16]byte {
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], ms<<16|0x7000|uint64(fill))
	for i := 8; i < 16; i++ {
		id[i] = fill + byte(i)
	}
	return id
}

// TestIndexEncodingGolden pins the encoding to docs/format.md, field by
// field, for entries that use every shortcut and every escape.
func TestIndexEncodingGolden(t *testing.T) {
	id1, id2, id3, id4 := v7(1000, 1), v7(1000, 2), v7(1002, 3), v7(1002, 4)
	ix := &segment.Index{
		Strings: []string{"bank", "acct:1", "acct:2"},
		Entries: []segment.IndexEntry{
			// The first entry: its sequence, segment, kind and version are
			// written; its offset is the first frame's.
			{Seq: 10, Version: 5, Timestamp: 1_000_000_000, ID: id1, Correlation: id1, Kind: 0x1001,
				Entity: 1, Scope: 0, Segment: 3, Offset: segment.HeaderSize, Length: 300},
			// A new stream at version 1, the correlation of the entry
			// before, a causation written out.
			{Seq: 11, Version: 1, Timestamp: 1_000_000_007, ID: id2, Correlation: id1, Causation: id1, Kind: 0x1001,
				Entity: 2, Scope: 0, Segment: 3, Offset: 332, Length: 310},
			// A known stream's next version after a 40-byte gap (a batch
			// marker), another kind, both ids of the entry before.
			{Seq: 12, Version: 6, Timestamp: 1_000_002_007, ID: id3, Correlation: id1, Causation: id1, Kind: 0x1002,
				Entity: 1, Scope: 0, Segment: 3, Offset: 682, Length: 200},
			// A stub in the same hole frame: flags, the same position, a
			// sequence gap, the stream's next version, no timestamp.
			{Seq: 20, Version: 2, Timestamp: 0, ID: id4, Correlation: id4, Kind: 0x1002, Flags: 0x8000,
				Entity: 2, Scope: 0, Segment: 3, Offset: 682, Length: 200},
		},
		Tails:   []segment.StreamTail{{Entity: 1, Scope: 0, Version: 6, LastHash: [32]byte{1}}},
		Keys:    []segment.IdempotencyRecord{{Key: "req", First: 11, Count: 2}},
		Deleted: []segment.StreamRef{{Entity: 2, Scope: 0}},
	}
	const (
		kind, version, offset, corr, sameCorr, cause, sameCause, flags, samePos, seq, seg = 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024
	)
	want := ixBytes{}.uv(3, 4, 1, 1, 1).
		uv(4).raw([]byte("bank")...).uv(6).raw([]byte("acct:1")...).uv(6).raw([]byte("acct:2")...).
		// entry 1
		uv(kind|version|seq|seg).sv(9).sv(1000).raw(id1[6:]...).sv(1_000_000_000).uv(0, 1, 0).uv(5).uv(0x1001).uv(3).uv(300).
		// entry 2
		uv(sameCorr|cause).sv(0).raw(id2[6:]...).raw(id1[:]...).sv(7).uv(1, 2, 0).uv(310).
		// entry 3
		uv(kind|offset|sameCorr|sameCause).sv(2).raw(id3[6:]...).sv(2000).uv(0).uv(0x1002).sv(40).uv(200).
		// entry 4
		uv(flags|samePos|seq).sv(7).sv(0).raw(id4[6:]...).sv(-1_000_002_007).uv(1).uv(0x8000).
		// tail, key, deleted stream
		uv(1, 0, 6).raw(ix.Tails[0].LastHash[:]...).
		uv(3).raw([]byte("req")...).uv(11, 2).
		uv(2, 0)
	got := segment.AppendIndex(nil, ix)
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding\n got % x\nwant % x", got, []byte(want))
	}
	back, err := segment.DecodeIndex(got)
	if err != nil || !indexEqual(back, ix) {
		t.Fatalf("decoded %+v, %v", back, err)
	}
}

// appendedIndex is the footer of a segment written by appends: n events of
// 200-byte payloads round-robin over streams, consecutive sequences,
// contiguous frames, UUIDv7 ids a few µs apart.
func appendedIndex(n, streams int) *segment.Index {
	var st segment.StringTable
	ix := &segment.Index{}
	off, ts := uint32(segment.HeaderSize), int64(1_700_000_000_000_000)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range n {
		var id [16]byte
		binary.BigEndian.PutUint64(id[:8], uint64(ts/1000)<<16|0x7000|rng.Uint64N(1<<12))
		binary.BigEndian.PutUint64(id[8:], rng.Uint64()>>2|1<<63)
		length := uint32(370 + rng.IntN(10))
		ix.Entries = append(ix.Entries, segment.IndexEntry{
			Seq: 1_000_000 + uint64(i), Version: 40 + uint64(i/streams), Timestamp: ts, ID: id, Correlation: id,
			Kind: 0x1001, Entity: st.ID(fmt.Sprintf("account:%d", i%streams)), Scope: st.ID("bank"),
			Segment: 17, Offset: off, Length: length,
		})
		off += length
		ts += int64(1 + rng.IntN(60))
	}
	ix.Strings = st.Strings
	return ix
}

// TestIndexEntrySize: an entry of a segment written by appends takes the
// id's ten random bytes and about ten bytes more.
func TestIndexEntrySize(t *testing.T) {
	ix := appendedIndex(10_000, 100)
	size := len(segment.AppendIndex(nil, ix)) - len(segment.AppendIndex(nil, &segment.Index{Strings: ix.Strings}))
	if per := float64(size) / float64(len(ix.Entries)); per > 20 {
		t.Errorf("%.1f bytes per entry, want at most 20", per)
	}
}

// randomIndex draws every field from a few values, so that shortcuts and
// escapes mix, and sometimes from the whole range of its type.
func randomIndex(rng *rand.Rand) *segment.Index {
	pick := func(vals ...uint64) uint64 {
		if rng.IntN(8) == 0 {
			return rng.Uint64()
		}
		return vals[rng.IntN(len(vals))]
	}
	ids := [][16]byte{{}, v7(5, 1), v7(6, 2), v7(1<<48-1, 3), id16(0xF0)}
	ix := &segment.Index{Strings: []string{"a", "b", "", "c"}}
	var prev segment.IndexEntry
	for range rng.IntN(40) {
		e := segment.IndexEntry{
			Seq:         pick(prev.Seq+1, prev.Seq+1, prev.Seq, 0, math.MaxUint64),
			Version:     pick(1, 2, 3, prev.Version+1, math.MaxUint64),
			Timestamp:   int64(pick(0, uint64(prev.Timestamp)+1, 1<<63, 1<<63-1)),
			ID:          ids[rng.IntN(len(ids))],
			Correlation: ids[rng.IntN(len(ids))],
			Causation:   ids[rng.IntN(len(ids))],
			Kind:        uint16(pick(0, 1, 0x1001, uint64(prev.Kind))),
			Flags:       uint16(pick(0, 0, 0x8000, 0xC000)),
			Entity:      uint32(rng.IntN(4)),
			Scope:       uint32(rng.IntN(4)),
			Segment:     uint32(pick(0, 1, uint64(prev.Segment), math.MaxUint32)),
			Offset:      uint32(pick(segment.HeaderSize, uint64(prev.Offset), uint64(prev.Offset+prev.Length), math.MaxUint32)),
			Length:      uint32(pick(0, 1, 300, uint64(prev.Length), math.MaxUint32)),
		}
		if rng.IntN(3) == 0 {
			e.Correlation = e.ID
		}
		if rng.IntN(3) == 0 {
			e.Correlation, e.Causation = prev.Correlation, prev.Causation
		}
		ix.Entries = append(ix.Entries, e)
		prev = e
	}
	return ix
}

func TestIndexRoundTripRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 5000 {
		ix := randomIndex(rng)
		b := segment.AppendIndex(nil, ix)
		got, err := segment.DecodeIndex(b)
		if err != nil {
			t.Fatalf("index %d: %v\n%+v", i, err, ix.Entries)
		}
		if !indexEqual(got, ix) {
			t.Fatalf("index %d: round trip mismatch:\n got %+v\nwant %+v", i, got.Entries, ix.Entries)
		}
		if !bytes.Equal(segment.AppendIndex(nil, got), b) {
			t.Fatalf("index %d: encoding is not canonical", i)
		}
	}
}

// TestDecodeIndexRejectsEntries feeds entries that break one rule each.
func TestDecodeIndexRejectsEntries(t *testing.T) {
	const (
		kind, version, offset, corr, sameCorr, cause, sameCause, flags, samePos, seq, seg = 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024
	)
	zeros := make([]byte, 16)
	// index returns an index of the strings "a" and "b" and n entries
	// encoded in body.
	index := func(n uint64, body ixBytes) []byte {
		return append(ixBytes(counts(2, n, 0, 0)).uv(1).raw('a').uv(1).raw('b'), body...)
	}
	// first begins a first entry with head h: id zero, timestamp zero, a
	// new stream a/a.
	first := func(h uint64) ixBytes { return ixBytes{}.uv(h).sv(0).raw(zeros[:10]...).sv(0).uv(0, 0, 0) }
	// next begins a later entry of stream 0 with head h.
	next := func(h uint64) ixBytes { return ixBytes{}.uv(h).sv(0).raw(zeros[:10]...).sv(0).uv(0) }
	ok := first(0).uv(10)
	if _, err := segment.DecodeIndex(index(1, ok)); err != nil {
		t.Fatalf("the valid base entry does not decode: %v", err)
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"head bit beyond the last", index(1, first(2048).uv(10))},
		{"head malformed", index(1, ixBytes{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}.raw(zeros...))},
		{"correlation present and the same", index(2, append(ok, next(corr|sameCorr).raw(zeros...).uv(10)...))},
		{"causation present and the same", index(2, append(ok, next(cause|sameCause).raw(zeros...).uv(10)...))},
		{"same position and an offset", index(2, append(ok, next(samePos|offset).sv(0)...))},
		{"same correlation on the first entry", index(1, first(sameCorr).uv(10))},
		{"same causation on the first entry", index(1, first(sameCause).uv(10))},
		{"same position on the first entry", index(1, first(samePos).raw(zeros[:4]...))},
		{"stream number skips ahead", index(2, append(ok, ixBytes{}.uv(0).sv(0).raw(zeros[:10]...).sv(0).uv(2, 1, 0).uv(10)...))},
		{"stream introduced twice", index(2, append(ok, ixBytes{}.uv(0).sv(0).raw(zeros[:10]...).sv(0).uv(1, 0, 0).uv(10)...))},
		{"entity out of range", index(1, ixBytes{}.uv(0).sv(0).raw(zeros[:10]...).sv(0).uv(0, 2, 0).uv(10))},
		{"scope out of range", index(1, ixBytes{}.uv(0).sv(0).raw(zeros[:10]...).sv(0).uv(0, 0, 1<<32).uv(10))},
		{"kind beyond 16 bits", index(1, first(kind).uv(1<<16).uv(10))},
		{"flags beyond 16 bits", index(1, first(flags).uv(1<<16).uv(10))},
		{"segment beyond 32 bits", index(1, first(seg).uv(1<<32).uv(10))},
		{"offset below zero", index(1, first(offset).sv(-segment.HeaderSize-1).uv(10))},
		{"offset beyond 32 bits", index(1, first(offset).sv(1<<32-segment.HeaderSize).uv(10))},
		{"offset delta huge", index(1, first(offset).sv(math.MaxInt64).uv(10))},
		{"offset delta hugely negative", index(1, first(offset).sv(math.MinInt64).uv(10))},
		{"length beyond 32 bits", index(1, first(0).uv(1<<32))},
		{"id time below zero", index(1, ixBytes{}.uv(0).sv(-1).raw(zeros[:10]...).sv(0).uv(0, 0, 0).uv(10))},
		{"id time beyond 48 bits", index(1, ixBytes{}.uv(0).sv(1<<48).raw(zeros[:10]...).sv(0).uv(0, 0, 0).uv(10))},
		{"id time delta huge", index(1, ixBytes{}.uv(0).sv(math.MaxInt64).raw(zeros[:10]...).sv(0).uv(0, 0, 0).uv(10))},
		{"id cut short", index(1, ixBytes{}.uv(0).sv(0).raw(zeros[:9]...))},
		{"correlation cut short", index(1, first(corr).raw(zeros[:15]...))},
		{"length missing", index(1, first(0))},
		{"tail scope out of range", append(ixBytes(counts(1, 0, 1, 0)).uv(1).raw('a'), ixBytes{}.uv(0, 1, 1).raw(make([]byte, 32)...)...)},
		{"tail hash cut short", append(ixBytes(counts(1, 0, 1, 0)).uv(1).raw('a'), ixBytes{}.uv(0, 0, 1).raw(make([]byte, 31)...)...)},
		{"key count beyond 32 bits", ixBytes(counts(0, 0, 0, 1)).uv(1).raw('k').uv(1, 1<<32)},
		{"deleted stream out of range", ixBytes{}.uv(1, 0, 0, 0, 1).uv(1).raw('a').uv(0, 1)},
		{"deleted count beyond the bytes", ixBytes{}.uv(1, 0, 0, 0, 3).uv(1).raw('a').uv(0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix, err := segment.DecodeIndex(tt.in)
			if err == nil {
				t.Fatalf("DecodeIndex accepted bad input: %+v", ix)
			}
			var de *segment.DecodeError
			if ix != nil || !errors.As(err, &de) || de.What != "index" || !errors.Is(err, segment.ErrCorrupt) {
				t.Errorf("DecodeIndex = %v, %v; want nil and a *DecodeError about the index", ix != nil, err)
			}
		})
	}
}
