package segment_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/batpak-go/batpak/segment"
)

// fixedCheckpoint is a deterministic checkpoint (fixed ids and times): fuzz
// seeds must be the same in every fuzzing process.
func fixedCheckpoint() []byte {
	id := func(b byte) (u [16]byte) { u[15] = b; return u }
	c := &segment.Checkpoint{
		LastSeq: 2, Segment: 1, FrameEnd: 282,
		Streams: []segment.CheckpointStream{{Entity: "a", Version: 1, LastHash: [32]byte{7}}, {Entity: "b", Version: 1, Deleted: true}},
		Scopes:  []string{"s"},
		Keys:    []segment.IdempotencyRecord{{Key: "key-1", First: 1, Count: 1}},
		Entries: []segment.IndexEntry{
			{Seq: 1, Version: 1, Timestamp: 1_700_000_000_000_000, ID: id(1), Correlation: id(1), Kind: 0x1001, Entity: 0, Scope: 0, Segment: 1, Offset: 32, Length: 120},
			{Seq: 2, Version: 1, Timestamp: 1_700_000_000_000_001, ID: id(2), Correlation: id(1), Causation: id(1), Kind: 0x1001, Flags: segment.EntryDeleted, Entity: 1, Scope: 0, Segment: 1, Offset: 152, Length: 130},
		},
	}
	return segment.EncodeCheckpoint(c)
}

// TestCheckpointGolden: the encoder writes the bytes docs/format.md
// describes (format 7, with the streams' sequences and a checksum per 64
// KiB of them, and the blocks' words at multiples of 8 bytes).
// testdata/checkpoint-v8.golden holds its output for fixedCheckpoint;
// EncodeCheckpoint joins the parts Close writes. The same checkpoint in
// formats 4 to 7 (testdata/checkpoint-v4.golden … v7) is refused
// (TestCheckpointOldVersion).
func TestCheckpointGolden(t *testing.T) {
	want, err := os.ReadFile("testdata/checkpoint-v8.golden")
	if err != nil {
		t.Fatal(err)
	}
	if got := fixedCheckpoint(); !bytes.Equal(got, want) {
		t.Fatalf("checkpoint encoding changed:\n got %x\nwant %x", got, want)
	}
}

// FuzzDecodeCheckpoint: any bytes decode to a checkpoint or an error, never
// a panic or a huge allocation, and what decodes re-encodes to itself.
// With fixCRC, the checksums are made to match first.
func FuzzDecodeCheckpoint(f *testing.F) {
	good := fixedCheckpoint()
	f.Add(good, false)
	f.Add(good, true)
	f.Add(good[:len(good)/2], true)
	flipped := bytes.Clone(good)
	flipped[len(flipped)/3] ^= 0x40
	f.Add(flipped, false)
	f.Add(flipped, true)
	f.Add([]byte("BPCK"), false)
	f.Fuzz(func(t *testing.T, b []byte, fixCRC bool) {
		if fixCRC {
			b = fixChecksums(b)
		}
		checkOpened(t, b)
		c, err := segment.DecodeCheckpoint(b)
		if err != nil {
			if !errors.Is(err, segment.ErrCorrupt) && !errors.Is(err, segment.ErrUnsupportedVersion) {
				t.Fatalf("error %v is neither corruption nor an unknown version", err)
			}
			return
		}
		again, err := segment.DecodeCheckpoint(segment.EncodeCheckpoint(c))
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("re-encoded checkpoint does not decode the same: %v", err)
		}
	})
}

// fixChecksums makes whatever checksums of a checkpoint it can locate
// match their bytes, so the fuzzer reaches the decoders behind them: the
// head's, the blocks' (in the directory at the end of the tables), the
// tables' and the sequences'.
func fixChecksums(b []byte) []byte {
	const head, counts = 67, 43 // the head with its CRC; where its five counts start
	if len(b) < head {
		return b
	}
	b = bytes.Clone(b)
	binary.BigEndian.PutUint32(b[head-4:], segment.Checksum(b[:head-4]))
	nBlocks := int(binary.BigEndian.Uint32(b[counts+12:]))
	tablesLen := int(binary.BigEndian.Uint32(b[counts+16:]))
	if tablesLen < 4 || tablesLen > len(b)-head {
		return b
	}
	tables := b[head : head+tablesLen-4]
	off := head + tablesLen + (-(head + tablesLen))&7 // the blocks
	if nBlocks <= len(tables)/12 {
		dir := tables[len(tables)-12*nBlocks:]
		for i := 0; i < nBlocks; i++ {
			size := int(binary.BigEndian.Uint32(dir[12*i+4:]))
			if size > len(b)-off {
				off = len(b) + 1
				break
			}
			binary.BigEndian.PutUint32(dir[12*i+8:], segment.Checksum(b[off:off+size]))
			off += size
		}
	}
	binary.BigEndian.PutUint32(b[head+tablesLen-4:], segment.Checksum(tables))
	// The last hashes, then their checksums and padding, then the
	// sequences (one word each here), then theirs: a checksum per 64 KiB.
	hashes := 32 * int(binary.BigEndian.Uint32(b[counts:]))
	off = fixSection(b, off, hashes)
	off += (-off) & 7
	fixSection(b, off, 4*int(binary.BigEndian.Uint64(b[6:14])))
	return b
}

// fixSection fixes the checksums of the n bytes of a section at off of b
// that has one per 64 KiB after them, and returns where they end.
func fixSection(b []byte, off, n int) int {
	const chunk = 64 << 10
	if n < 0 || off > len(b) || n > len(b)-off {
		return len(b) + 1
	}
	sums := b[off+n:]
	k := 0
	for ; k*chunk < n && 4*k+4 <= len(sums); k++ {
		binary.BigEndian.PutUint32(sums[4*k:], segment.Checksum(b[off+k*chunk:off+min(n, (k+1)*chunk)]))
	}
	return off + n + 4*k
}

// checkOpened checks what a store relies on when it loads an opened
// checkpoint block by block: stream versions that add up to LastSeq, and
// entries numbered by their place that name known streams and scopes.
func checkOpened(t *testing.T, b []byte) {
	// As a store opens it: the blocks decode before the tables are
	// checked, and must not panic; damage in the tables is corruption.
	if f, err := segment.OpenCheckpointBlocks(b); err == nil {
		var streams [segment.CheckpointBlockEntries]uint32
		for i := range f.NumBlocks() {
			_, _ = f.Block(i, streams[:])
		}
		if tablesErr := f.CheckTables(); tablesErr != nil && !errors.Is(tablesErr, segment.ErrCorrupt) {
			t.Fatalf("CheckTables: %v, not corruption", tablesErr)
		}
	}
	f, err := segment.OpenCheckpoint(b)
	if err != nil {
		return
	}
	var total uint64
	n := 0
	for _, st := range f.StreamRows() {
		n++
		if st.SeqsAt != total {
			t.Fatalf("stream %d: sequences at %d, after %d of the streams before it", n-1, st.SeqsAt, total)
		}
		if _, err := f.LastHashes().At(n - 1); err != nil && !errors.Is(err, segment.ErrCorrupt) {
			t.Fatalf("stream %d: last hash: %v", n-1, err)
		}
		if st.Version > f.LastSeq {
			t.Fatalf("stream version %d beyond last sequence %d", st.Version, f.LastSeq)
		}
		total += st.Version
	}
	if total != f.LastSeq || n != f.NumStreams() {
		t.Fatalf("%d stream versions add up to %d, last sequence %d", n, total, f.LastSeq)
	}
	if w := f.Seqs(); len(w) > 0 { // a part's chunks, then all of them: the same verdict on that part
		part := f.SeqChecker().Check(w[len(w)/3 : len(w)/3+1])
		if all := f.CheckSeqs(2); all == nil && part != nil {
			t.Fatalf("a part of the sequences fails (%v), all of them pass", part)
		}
	}
	if _, err := f.LastHashes().At(f.NumStreams()); err == nil {
		t.Fatalf("a last hash past the %d streams", f.NumStreams())
	}
	if f.CheckSeqs(2) == nil && uint64(len(f.Seqs())) != f.LastSeq {
		t.Fatalf("%d sequence words for last sequence %d", len(f.Seqs()), f.LastSeq)
	}
	for i := range f.NumBlocks() {
		_ = f.DecodeBlock(i, func(j int, e *segment.IndexEntry) {
			if e.Seq != uint64(i*segment.CheckpointBlockEntries+j+1) || e.Seq > f.LastSeq ||
				int(e.Entity) >= f.NumStreams() || int(e.Scope) >= len(f.Scopes) {
				t.Fatalf("block %d entry %d: %+v", i, j, e)
			}
		})
	}
}

// bigCheckpoint has three blocks of entries over two segments, with
// two scopes, flags and stubs sharing a frame.
func bigCheckpoint() *segment.Checkpoint {
	n := 2*segment.CheckpointBlockEntries + 100
	c := &segment.Checkpoint{LastSeq: uint64(n), Scopes: []string{"s", "t"}, Keys: []segment.IdempotencyRecord{{Key: "k", First: 5, Count: 2}},
		LastID: [16]byte{15: 9}, IDsUnsorted: true}
	for i := range 3 {
		c.Streams = append(c.Streams, segment.CheckpointStream{Entity: string(rune('a' + i)), Scope: uint32(i % 2), LastHash: [32]byte{byte(i)}, Deleted: i == 2})
	}
	var off uint32 = 32
	seg := uint32(1)
	for i := range n {
		if i == n/2 {
			seg, off = 2, 32
		}
		st := uint32(i % 3)
		e := segment.IndexEntry{Seq: uint64(i + 1), Kind: uint16(0x1001 + i%3), Entity: st, Scope: c.Streams[st].Scope,
			Segment: seg, Offset: off, Length: uint32(100 + i%50)}
		if i%13 == 0 {
			e.Flags = segment.EntryDeleted // a stub: the next entry shares its frame
		} else {
			off += e.Length + uint32(i%2*40)
		}
		c.Streams[e.Entity].Version++
		e.Version = c.Streams[e.Entity].Version
		c.Entries = append(c.Entries, e)
	}
	c.Segment, c.FrameEnd = seg, uint64(off)
	return c
}

// TestStreamRowParts: for any number of streams and of parts asked for,
// the parts read in turn are StreamRows: every row once, in order, with
// its sequences where the streams before it end.
func TestStreamRowParts(t *testing.T) {
	for _, streams := range []int{0, 1, 4095, 4096, 4097, 3*4096 + 5} {
		c := &segment.Checkpoint{Scopes: []string{"s"}}
		for i := range streams {
			c.Streams = append(c.Streams, segment.CheckpointStream{Entity: fmt.Sprint("stream-", i), Version: uint64(1 + i%3), LastHash: [32]byte{byte(i)}, Deleted: i%7 == 0})
			for range 1 + i%3 {
				c.LastSeq++
				c.Entries = append(c.Entries, segment.IndexEntry{Seq: c.LastSeq, Kind: 0x1001, Entity: uint32(i), Segment: 1, Offset: uint32(32 + 100*c.LastSeq), Length: 100})
			}
		}
		c.Segment, c.FrameEnd = 1, uint64(32+100*(c.LastSeq+1))
		b := segment.EncodeCheckpoint(c)
		f, err := segment.OpenCheckpoint(b)
		if err != nil {
			t.Fatal(err)
		}
		var want []segment.CheckpointRow
		for _, row := range f.StreamRows() {
			want = append(want, row)
		}
		for _, parts := range []int{0, 1, 2, 3, 8, 1000} {
			var got []segment.CheckpointRow
			for _, part := range f.StreamRowParts(parts) {
				for i, row := range part {
					if i != len(got) {
						t.Fatalf("%d streams, %d parts: row %d numbered %d", streams, parts, len(got), i)
					}
					got = append(got, row)
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%d streams, %d parts: the parts' rows differ from StreamRows'", streams, parts)
			}
		}
		var seqs uint64
		for i, row := range want {
			want := c.Streams[i]
			want.LastHash = [32]byte{} // not in the rows
			if row.CheckpointStream != want || row.SeqsAt != seqs {
				t.Fatalf("%d streams: row %d is %+v at %d, want %+v at %d", streams, i, row.CheckpointStream, row.SeqsAt, want, seqs)
			}
			if h, err := f.LastHashes().At(i); err != nil || h != c.Streams[i].LastHash {
				t.Fatalf("%d streams: last hash %d is %x (%v), want %x", streams, i, h, err, c.Streams[i].LastHash)
			}
			seqs += row.Version
		}
	}
}

func TestCheckpointBlocks(t *testing.T) {
	c := bigCheckpoint()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	b := segment.EncodeCheckpoint(c)
	got, err := segment.DecodeCheckpoint(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatal("checkpoint does not round-trip")
	}
	f, err := segment.OpenCheckpoint(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.NumBlocks() != 3 || f.Entries != nil {
		t.Fatalf("%d blocks, %d entries decoded on open", f.NumBlocks(), len(f.Entries))
	}
	var part []segment.IndexEntry
	err = f.DecodeBlock(2, func(_ int, e *segment.IndexEntry) { part = append(part, *e) })
	if err != nil || len(part) != 100 || part[0].Seq != 2*segment.CheckpointBlockEntries+1 {
		t.Fatalf("last block: %d entries, %v", len(part), err)
	}
	for _, cut := range []int{1, 50, len(b) / 2, len(b) - 1} {
		if _, err := segment.DecodeCheckpoint(b[:cut]); !errors.Is(err, segment.ErrCorrupt) {
			t.Fatalf("checkpoint cut at %d: %v", cut, err)
		}
	}
	for _, at := range []int{10, 60, len(b) / 3, len(b) - 1} {
		if _, err := segment.DecodeCheckpoint(flip(b, at)); !errors.Is(err, segment.ErrCorrupt) {
			t.Fatalf("flip at %d: %v", at, err)
		}
	}
	c.Streams[0].Version++
	c.Streams[1].Version--
	if _, err := segment.DecodeCheckpoint(segment.EncodeCheckpoint(c)); !errors.Is(err, segment.ErrCorrupt) {
		t.Fatalf("stream versions that disagree with the entries: %v", err)
	}
	c.Streams[0].Version, c.Streams[1].Version = c.Streams[0].Version+1<<63, c.Streams[1].Version+1<<63 // the sum wraps to LastSeq
	if _, err := segment.OpenCheckpoint(segment.EncodeCheckpoint(c)); !errors.Is(err, segment.ErrCorrupt) {
		t.Fatalf("stream versions whose sum overflows: %v", err)
	}
}

// A checkpoint of another format version is refused as such, before its
// checksums are looked at: the store then recovers without it.
func TestCheckpointOldVersion(t *testing.T) {
	b := fixedCheckpoint()
	binary.BigEndian.PutUint16(b[4:6], 1)
	if _, err := segment.DecodeCheckpoint(b); !errors.Is(err, segment.ErrUnsupportedVersion) {
		t.Fatalf("format 1: %v", err)
	}
	for _, old := range []struct{ file, what string }{
		{"testdata/checkpoint-v4.golden", "format 4, whose blocks were varints"},
		{"testdata/checkpoint-v5.golden", "format 5, without the streams' sequences"},
		{"testdata/checkpoint-v6.golden", "format 6, a checksum per MiB of sequences"},
		{"testdata/checkpoint-v7.golden", "format 7, the last hashes in the rows"},
	} {
		b, err := os.ReadFile(old.file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := segment.OpenCheckpoint(b); !errors.Is(err, segment.ErrUnsupportedVersion) {
			t.Fatalf("%s: %v", old.what, err)
		}
	}
}

// Tables a store could not load are corrupt even with matching CRCs: a
// stream or scope named twice, an idempotency key beyond the last event or
// not UTF-8.
func TestCheckpointTablesChecked(t *testing.T) {
	good, err := segment.DecodeCheckpoint(fixedCheckpoint())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(c *segment.Checkpoint)
	}{
		{"stream twice", func(c *segment.Checkpoint) { c.Streams[1].Entity = c.Streams[0].Entity }},
		{"scope twice", func(c *segment.Checkpoint) { c.Scopes = append(c.Scopes, c.Scopes[0]) }},
		{"key beyond the last event", func(c *segment.Checkpoint) { c.Keys[0].First, c.Keys[0].Count = 2, 2 }},
		{"key of no events", func(c *segment.Checkpoint) { c.Keys[0].Count = 0 }},
		{"key at sequence 0", func(c *segment.Checkpoint) { c.Keys[0].First = 0 }},
		{"key not UTF-8", func(c *segment.Checkpoint) { c.Keys[0].Key = "\xff" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := *good
			c.Streams = append([]segment.CheckpointStream(nil), good.Streams...)
			c.Keys = append([]segment.IdempotencyRecord(nil), good.Keys...)
			tc.change(&c)
			if _, err := segment.DecodeCheckpoint(segment.EncodeCheckpoint(&c)); !errors.Is(err, segment.ErrCorrupt) {
				t.Fatalf("decoded with %s: %v", tc.name, err)
			}
		})
	}
}

// A flipped bit anywhere in the tables fails the open with their
// checksum, also where the decoder, which runs beside the checksum, finds
// the flipped table wrong in its own way (a name's length, a count), and
// also where the block directory is decoded first (OpenCheckpointBlocks).
func TestCheckpointTablesChecksum(t *testing.T) {
	const head, counts = 67, 43 // as in fixChecksums
	good := fixedCheckpoint()
	tablesLen := int(binary.BigEndian.Uint32(good[counts+16:]))
	for at := head; at < head+tablesLen-4; at++ {
		for _, bit := range []byte{0x01, 0x80} {
			b := bytes.Clone(good)
			b[at] ^= bit
			_, err := segment.OpenCheckpoint(b)
			if !errors.Is(err, segment.ErrCorrupt) || !strings.Contains(err.Error(), "tables checksum mismatch") {
				t.Fatalf("byte %d of the tables flipped (0x%02x): %v", at-head, bit, err)
			}
			// The same in two halves: the directory may decode (its
			// blocks are then checked on their own), the tables do not.
			if f, err := segment.OpenCheckpointBlocks(b); err == nil {
				err = f.CheckTables()
			}
			if !errors.Is(err, segment.ErrCorrupt) || !strings.Contains(err.Error(), "tables checksum mismatch") {
				t.Fatalf("byte %d of the tables flipped (0x%02x), opened in two halves: %v", at-head, bit, err)
			}
		}
	}
}

// The sequences are checked: a flipped bit fails their checksum, and a
// stream that lists another's event (checksums made to match) fails the
// comparison with the entries.
func TestCheckpointSeqsChecked(t *testing.T) {
	good := fixedCheckpoint()
	// The sequences, 1 and 2, are the 8 bytes before the one checksum.
	seqs := len(good) - 4 - 8
	if !bytes.Equal(good[seqs:seqs+8], []byte{1, 0, 0, 0, 2, 0, 0, 0}) {
		t.Fatalf("sequences %x", good[seqs:seqs+8])
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"flipped", flip(good, seqs+1)},
		{"swapped", fixChecksums(append(append(bytes.Clone(good[:seqs]), 2, 0, 0, 0, 1, 0, 0, 0), good[seqs+8:]...))},
	} {
		f, err := segment.OpenCheckpoint(tc.b)
		if err != nil {
			t.Fatalf("%s: open: %v", tc.name, err)
		}
		if err := f.CheckSeqs(1); (err != nil) != (tc.name == "flipped") {
			t.Errorf("%s: CheckSeqs: %v", tc.name, err)
		}
		if _, err := segment.DecodeCheckpoint(tc.b); !errors.Is(err, segment.ErrCorrupt) {
			t.Errorf("%s: decoded: %v", tc.name, err)
		}
	}
}

// A checkpoint held at an address that is not a multiple of 8 decodes the
// same: its blocks' words and its sequences are then copied, not used
// where they lie.
func TestCheckpointMisaligned(t *testing.T) {
	good := segment.EncodeCheckpoint(bigCheckpoint())
	for _, shift := range []int{1, 2, 4} {
		buf := make([]byte, len(good)+shift)
		b := buf[shift:]
		copy(b, good)
		want, err := segment.DecodeCheckpoint(good)
		if err != nil {
			t.Fatal(err)
		}
		got, err := segment.DecodeCheckpoint(b)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("shifted by %d: %v", shift, err)
		}
		f, err := segment.OpenCheckpoint(b)
		if err != nil {
			t.Fatal(err)
		}
		g, _ := segment.OpenCheckpoint(good)
		if !slices.Equal(f.Seqs(), g.Seqs()) || len(f.Seqs()) != int(f.LastSeq) {
			t.Fatalf("shifted by %d: sequences differ", shift)
		}
	}
}

func flip(b []byte, at int) []byte {
	b = bytes.Clone(b)
	b[at] ^= 0x10
	return b
}

func BenchmarkDecodeCheckpointBlocks(b *testing.B) {
	c := bigCheckpoint()
	data := segment.EncodeCheckpoint(c)
	f, err := segment.OpenCheckpoint(data)
	if err != nil {
		b.Fatal(err)
	}
	var sum uint64
	for b.Loop() {
		for i := range f.NumBlocks() {
			if err := f.DecodeBlock(i, func(_ int, e *segment.IndexEntry) { sum += uint64(e.Length) }); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(c.Entries)), "ns/entry")
}
