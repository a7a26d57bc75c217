package segment_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/batpak-go/batpak/segment"
)

// normIndex returns ix with empty tables as nil, for comparisons.
func normIndex(ix *segment.Index) segment.Index {
	c := *ix
	if len(c.Strings) == 0 {
		c.Strings = nil
	}
	if len(c.Entries) == 0 {
		c.Entries = nil
	}
	if len(c.Tails) == 0 {
		c.Tails = nil
	}
	if len(c.Keys) == 0 {
		c.Keys = nil
	}
	return c
}

func indexEqual(a, b *segment.Index) bool { return reflect.DeepEqual(normIndex(a), normIndex(b)) }

func id16(b byte) [16]byte {
	var id [16]byte
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}

func sampleIndex() *segment.Index {
	var st segment.StringTable
	root := segment.IndexEntry{
		Seq: 1, Version: 1, Timestamp: 1_700_000_000_000_000,
		ID: id16(0x10), Correlation: id16(0x10), // root: correlation == ID, no causation
		Kind: 0x1001, Flags: 0, Entity: st.ID("account:1"), Scope: st.ID("bank:eu"),
		Segment: 1, Offset: 32, Length: 180,
	}
	child := segment.IndexEntry{
		Seq: 2, Version: 2, Timestamp: -5,
		ID: id16(0x20), Correlation: id16(0x10), Causation: id16(0x10), // both present
		Kind: 0xD002, Flags: 3, Entity: st.ID("account:1"), Scope: st.ID("bank:eu"),
		Segment: 1, Offset: 212, Length: 190,
	}
	corrOnly := segment.IndexEntry{
		Seq: 3, Version: 1, Timestamp: 0,
		ID: id16(0x30), Correlation: id16(0x40), // distinct correlation, no causation
		Kind: 0x2001, Flags: 0xFFFF, Entity: st.ID("account:2"), Scope: st.ID(""),
		Segment: 1, Offset: 402, Length: 1 << 20,
	}
	causeOnly := segment.IndexEntry{
		Seq: 4, Version: 3, Timestamp: 42,
		ID: id16(0x50), Correlation: id16(0x50), Causation: id16(0x60), // correlation == ID but a cause
		Kind: 0x2002, Entity: st.ID("compte:é"), Scope: st.ID("bank:eu"),
		Segment: 1, Offset: 0xFFFFFFF0, Length: 0xFFFFFFFF,
	}
	return &segment.Index{
		Entries: []segment.IndexEntry{root, child, corrOnly, causeOnly},
		Tails: []segment.StreamTail{
			{Entity: 0, Version: 2, LastHash: [32]byte{1, 2, 3}},
			{Entity: 2, Version: 1, LastHash: [32]byte{31: 0xff}},
		},
		Keys: []segment.IdempotencyRecord{
			{Key: "req-1", First: 1, Count: 2},
			{Key: "", First: 3, Count: 0},
			{Key: strings.Repeat("k", 65535), First: 1 << 63, Count: 0xFFFFFFFF},
		},
		Strings: st.Strings,
	}
}

func TestIndexRoundTrip(t *testing.T) {
	full := sampleIndex()
	tests := []struct {
		name string
		ix   *segment.Index
	}{
		{"empty", &segment.Index{}},
		{"full", full},
		{"strings only", &segment.Index{Strings: []string{"", "a", strings.Repeat("x", 65535)}}},
		{"entries only root", &segment.Index{Strings: full.Strings[:2], Entries: full.Entries[:1]}},
		{"keys only", &segment.Index{Keys: full.Keys}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := segment.AppendIndex([]byte{0xAB}, tt.ix)
			if b[0] != 0xAB {
				t.Fatal("AppendIndex clobbered dst")
			}
			got, err := segment.DecodeIndex(b[1:])
			if err != nil {
				t.Fatalf("DecodeIndex: %v", err)
			}
			if !indexEqual(got, tt.ix) {
				t.Errorf("round trip mismatch:\n got %+v\nwant %+v", normIndex(got), normIndex(tt.ix))
			}
			// The decoded index does not alias the input.
			for i := range b {
				b[i] = 0
			}
			if !indexEqual(got, tt.ix) {
				t.Errorf("decoded index aliases its input")
			}
		})
	}
}

// TestIndexEntryOptionalIDs checks the sizes implied by an entry's head: a
// correlation equal to the id and a zero causation are not written, any
// other costs its 16 bytes, unless it equals the entry before's.
func TestIndexEntryOptionalIDs(t *testing.T) {
	strs := []string{"s", "e"}
	root := segment.IndexEntry{Seq: 1, Version: 1, ID: id16(0x10), Correlation: id16(0x10), Entity: 1, Segment: 1, Offset: 32, Length: 100}
	size := func(entries ...segment.IndexEntry) int {
		return len(segment.AppendIndex(nil, &segment.Index{Strings: strs, Entries: entries}))
	}
	corr, cause, both := root, root, root
	corr.Correlation = id16(0x40)
	cause.Causation = id16(0x50)
	both.Correlation, both.Causation = id16(0x40), id16(0x50)
	if r, c, k, b := size(root), size(corr), size(cause), size(both); c != r+16 || k != r+16 || b != r+32 {
		t.Errorf("index sizes: root %d, corr %d, cause %d, both %d", r, c, k, b)
	}
	// A second entry sharing the first's correlation and causation writes neither.
	next := both
	next.Seq, next.Version, next.ID, next.Offset = 2, 2, id16(0x20), 132
	plain := root
	plain.Seq, plain.Version, plain.ID, plain.Correlation, plain.Offset = 2, 2, id16(0x20), id16(0x20), 132
	if a, b := size(both, next)-size(both), size(both, plain)-size(both); a != b {
		t.Errorf("an entry sharing the ids of the entry before takes %d bytes, a root %d", a, b)
	}
}

func TestStringTable(t *testing.T) {
	var st segment.StringTable
	for i, s := range []string{"a", "b", "a", "", "b", ""} {
		want := []uint32{0, 1, 0, 2, 1, 2}[i]
		if got := st.ID(s); got != want {
			t.Errorf("ID(%q) = %d, want %d", s, got, want)
		}
	}
	if !reflect.DeepEqual(st.Strings, []string{"a", "b", ""}) {
		t.Errorf("Strings = %q", st.Strings)
	}
}

func TestIndexEntryString(t *testing.T) {
	e := segment.IndexEntry{Seq: 7, Segment: 2, Offset: 32, Length: 100}
	if got := e.String(); got != "seq 7 @2:32+100" {
		t.Errorf("String() = %q", got)
	}
}

// counts returns the head of an index: the sizes of its tables as
// uvarints, without deleted streams.
func counts(s, e, tl, k uint64) []byte {
	var b []byte
	for _, n := range []uint64{s, e, tl, k, 0} {
		b = binary.AppendUvarint(b, n)
	}
	return b
}

func TestDecodeIndexRejects(t *testing.T) {
	good := segment.AppendIndex(nil, sampleIndex())
	oneEntry := func(entity, scope uint32) []byte {
		return segment.AppendIndex(nil, &segment.Index{
			Strings: []string{"a"},
			Entries: []segment.IndexEntry{{Seq: 1, ID: id16(1), Correlation: id16(1), Entity: entity, Scope: scope}},
		})
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"short counts", counts(0, 0, 0, 0)[:4]},
		{"huge counts", counts(0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)},
		{"huge strings", append(counts(0xFFFFFFFF, 0, 0, 0), make([]byte, 1000)...)},
		{"huge entries", append(counts(0, 0xFFFFFFFF, 0, 0), make([]byte, 1000)...)},
		{"huge tails", append(counts(0, 0, 0xFFFFFFFF, 0), make([]byte, 1000)...)},
		{"huge keys", append(counts(0, 0, 0, 0xFFFFFFFF), make([]byte, 1000)...)},
		{"one entry too many", append(counts(0, 1, 0, 0), make([]byte, 13)...)},
		{"malformed count", append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, make([]byte, 64)...)},
		{"string length past end", append(counts(1, 0, 0, 0), 5, 'a')},
		{"string longer than MaxIndexString", append(binary.AppendUvarint(counts(1, 0, 0, 0), segment.MaxIndexString+1), make([]byte, segment.MaxIndexString+1)...)},
		{"invalid UTF-8", append(counts(1, 0, 0, 0), 2, 0xC3, 0x28)},
		{"invalid UTF-8 lone continuation", append(counts(2, 0, 0, 0), 1, 'a', 1, 0x80)},
		{"entity index out of range", oneEntry(1, 0)},
		{"scope index out of range", oneEntry(0, 0xFFFFFFFF)},
		{"entry index with no strings", segment.AppendIndex(nil, &segment.Index{Entries: []segment.IndexEntry{{Seq: 1}}})},
		{"tail entity out of range", segment.AppendIndex(nil, &segment.Index{Strings: []string{"a"}, Tails: []segment.StreamTail{{Entity: 1}}})},
		{"key length past end", append(counts(0, 0, 0, 1), append([]byte{0x7f}, make([]byte, 20)...)...)},
		{"trailing byte", append(append([]byte(nil), good...), 0)},
		{"truncated by one", good[:len(good)-1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ix *segment.Index
			var err error
			n := bytesAllocated(func() { ix, err = segment.DecodeIndex(tt.in) })
			if err == nil {
				t.Fatalf("DecodeIndex accepted bad input: %+v", ix)
			}
			if ix != nil {
				t.Errorf("DecodeIndex returned an index with error %v", err)
			}
			if !errors.Is(err, segment.ErrCorrupt) {
				t.Errorf("error %v does not match ErrCorrupt", err)
			}
			var de *segment.DecodeError
			if !errors.As(err, &de) || de.What != "index" {
				t.Errorf("error %v is not a *DecodeError about the index", err)
			}
			// A decoder that trusted a count would allocate gigabytes. A
			// short string read may cost up to two 64 KiB buffers.
			if limit := uint64(64*len(tt.in) + 256<<10); n > limit {
				t.Errorf("DecodeIndex allocated %d bytes for %d bytes of input", n, len(tt.in))
			}
		})
	}
}

func TestDecodeIndexEveryPrefix(t *testing.T) {
	ix := sampleIndex()
	ix.Keys = ix.Keys[:2] // keep it small
	good := segment.AppendIndex(nil, ix)
	for n := range len(good) {
		got, err := segment.DecodeIndex(append([]byte(nil), good[:n]...))
		if err == nil {
			t.Fatalf("prefix of %d/%d bytes decoded: %+v", n, len(good), got)
		}
		if !errors.Is(err, segment.ErrCorrupt) {
			t.Fatalf("prefix %d: error %v does not match ErrCorrupt", n, err)
		}
	}
}

// TestAppendIndexLongString: string and key lengths are u16, so an index
// holding a longer one fails Validate, and AppendFooter refuses it rather
// than writing a footer it could not read back.
func TestAppendIndexLongString(t *testing.T) {
	long := strings.Repeat("x", segment.MaxIndexString+1)
	for _, ix := range []*segment.Index{
		{Strings: []string{long, "next"}},
		{Keys: []segment.IdempotencyRecord{{Key: long, First: 1, Count: 1}}},
	} {
		if err := ix.Validate(); err == nil {
			t.Errorf("Validate accepted a %d-byte string", len(long))
		}
		hdr := segment.AppendHeader(nil, segment.Header{Version: segment.FormatVersion, Segment: 1})
		if _, err := segment.AppendFooter(hdr, 1, int64(len(hdr)), ix); err == nil {
			t.Error("AppendFooter accepted an index it cannot encode")
		}
	}
	ok := &segment.Index{Strings: []string{strings.Repeat("y", segment.MaxIndexString)}}
	got, err := segment.DecodeIndex(segment.AppendIndex(nil, ok))
	if err != nil || !indexEqual(got, ok) {
		t.Fatalf("a string of exactly MaxIndexString bytes does not round-trip: %v", err)
	}
}

func TestDecodeIndexNonCanonicalFlags(t *testing.T) {
	// A head that says "correlation present" with a correlation equal to
	// the id still decodes to the same entry, which re-encodes without it.
	e := segment.IndexEntry{Seq: 1, Version: 1, ID: id16(9), Correlation: id16(9), Offset: segment.HeaderSize, Length: 7}
	canonical := segment.AppendIndex(nil, &segment.Index{Strings: []string{"e"}, Entries: []segment.IndexEntry{e}})
	b := ixBytes(counts(1, 1, 0, 0)).uv(1).raw('e').
		uv(8).sv(idTime(e.ID)).raw(e.ID[6:]...).raw(e.Correlation[:]...).sv(0).uv(0, 0, 0).uv(7)
	ix, err := segment.DecodeIndex(b)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Entries[0] != e {
		t.Errorf("entry %+v, want %+v", ix.Entries[0], e)
	}
	if got := segment.AppendIndex(nil, ix); !bytes.Equal(got, canonical) || len(got) != len(b)-16 {
		t.Errorf("re-encoding is not canonical: % x, want % x", got, canonical)
	}
}
