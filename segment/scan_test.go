package segment_test

import (
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"testing"

	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
)

// checkScanned verifies that got holds exactly the first n records of s, at
// their positions.
func checkScanned(t testing.TB, got scanned, s *builtSegment, n int) {
	t.Helper()
	if len(got.Records) != n {
		t.Fatalf("scan delivered %d records, want %d", len(got.Records), n)
	}
	for i := range n {
		if got.Offsets[i] != int64(s.Positions[i].Offset) || got.Sizes[i] != int(s.Positions[i].Length) {
			t.Errorf("record %d at %d+%d, want %d+%d", i, got.Offsets[i], got.Sizes[i], s.Positions[i].Offset, s.Positions[i].Length)
		}
		diffRecord(t, got.Records[i], s.Records[i])
		if got.Records[i].Seq != s.Records[0].Seq+uint64(i) {
			t.Errorf("record %d has seq %d, want consecutive from %d", i, got.Records[i].Seq, s.Records[0].Seq)
		}
	}
}

func TestScanClean(t *testing.T) {
	for _, tt := range []struct {
		name     string
		n        int
		prealloc int64
	}{
		{"no frames", 0, 0},
		{"no frames preallocated", 0, 1 << 16},
		{"no preallocation", 10, 0},
		{"preallocated", 10, 1 << 20},
		{"preallocation smaller than data", 10, 100},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := buildSegment(t, vfs.OSFS{}, dir, 4, 1000, tt.n, tt.prealloc, false)
			fi, err := os.Stat(s.Path)
			if err != nil {
				t.Fatal(err)
			}
			// fallocate may be unsupported, and is then a no-op.
			if fi.Size() != s.FrameEnd && fi.Size() != tt.prealloc {
				t.Errorf("file is %d bytes, want %d (frames) or %d (preallocated)", fi.Size(), s.FrameEnd, tt.prealloc)
			}
			got, res, err := mapScan(t, s.Path, 4)
			if err != nil {
				t.Fatalf("Scan: %v", err)
			}
			checkScanned(t, got, s, tt.n)
			if res.FrameEnd != s.FrameEnd || res.Sealed || res.Torn != nil {
				t.Errorf("result %+v, want FrameEnd %d, not sealed, not torn", res, s.FrameEnd)
			}
			if res.Header.Segment != 4 || res.Header.Version != segment.FormatVersion || res.Header.Created != 1_700_000_000_000_000 {
				t.Errorf("header %+v", res.Header)
			}
		})
	}
}

func TestScanPreallocatedExplicitZeros(t *testing.T) {
	// Whatever the file system does with fallocate, zeros after the last
	// frame are a clean end.
	data, end, _ := sealedImage(t, 2, 4)
	data = append(data[:end:end], make([]byte, 1<<16)...)
	got, res, err := scanAll(data, 2, "x", 0)
	if err != nil || res.FrameEnd != end || res.Sealed || res.Torn != nil || len(got.Records) != 4 {
		t.Fatalf("Scan = %d records, %+v, %v; want 4 records, clean end at %d", len(got.Records), res, err, end)
	}
}

func TestScanSealed(t *testing.T) {
	dir := t.TempDir()
	s := buildSegment(t, vfs.OSFS{}, dir, 5, 1, 25, 1<<20, true)
	got, res, err := mapScan(t, s.Path, 5)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	checkScanned(t, got, s, 25)
	if !res.Sealed || res.FrameEnd != s.FrameEnd || res.Torn != nil {
		t.Errorf("result %+v, want sealed at %d", res, s.FrameEnd)
	}
	if _, off, err := segment.ReadFooter(readFile(t, s.Path), 5); err != nil || off != res.FrameEnd {
		t.Errorf("ReadFooter = %d, %v; want %d", off, err, res.FrameEnd)
	}
}

func TestScanFrom(t *testing.T) {
	data, _, _ := sealedImage(t, 6, 6)
	all, _, err := scanAll(data, 6, "x", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, from := range []int64{0, 1, segment.HeaderSize - 1, segment.HeaderSize} {
		got, _, err := scanAll(data, 6, "x", from)
		if err != nil || len(got.Records) != 6 {
			t.Errorf("from %d: %d records, %v; want 6", from, len(got.Records), err)
		}
	}
	for k := range all.Offsets {
		got, res, err := scanAll(data, 6, "x", all.Offsets[k])
		if err != nil || len(got.Records) != 6-k || !res.Sealed {
			t.Fatalf("from frame %d: %d records, sealed %v, %v", k, len(got.Records), res.Sealed, err)
		}
		if got.Records[0].Seq != all.Records[k].Seq {
			t.Errorf("from frame %d: first seq %d, want %d", k, got.Records[0].Seq, all.Records[k].Seq)
		}
	}
	// From the end of the file: nothing to read, a clean end.
	if got, res, err := scanAll(data, 6, "x", int64(len(data))); err != nil || len(got.Records) != 0 || res.FrameEnd != int64(len(data)) {
		t.Errorf("from EOF: %d records, %+v, %v", len(got.Records), res, err)
	}
	_, _, err = scanAll(data, 6, "x", int64(len(data))+1)
	if ce := asCorrupt(t, err); ce.Offset != int64(len(data))+1 || ce.Segment != 6 {
		t.Errorf("from past EOF: %+v", ce)
	}
}

func TestScanCallbackError(t *testing.T) {
	data, _, _ := sealedImage(t, 1, 5)
	stop := errors.New("stop")
	calls := 0
	_, err := segment.Scan(data, 1, "x", 0, func(int64, int, *segment.Record) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Fatalf("Scan = %v after %d calls, want the callback's error after 3", err, calls)
	}
}

func TestScanHeaderErrors(t *testing.T) {
	data, _, _ := sealedImage(t, 8, 2)
	tests := []struct {
		name string
		in   []byte
		id   uint32
	}{
		{"empty", nil, 8},
		{"short", data[:segment.HeaderSize-1], 8},
		{"bad magic", func() []byte { b := append([]byte(nil), data...); b[0] = 0; return b }(), 8},
		{"bad crc", func() []byte { b := append([]byte(nil), data...); b[20] ^= 1; return b }(), 8},
		{"wrong segment id", data, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := scanAll(tt.in, tt.id, "/seg/x", 0)
			ce := asCorrupt(t, err)
			if ce.Segment != tt.id || ce.Offset != 0 || ce.Path != "/seg/x" {
				t.Errorf("CorruptError %+v, want segment %d offset 0", ce, tt.id)
			}
			if len(got.Records) != 0 {
				t.Errorf("delivered %d records from a bad segment", len(got.Records))
			}
		})
	}
}

// TestScanUnsupportedVersion: a segment written by a newer build is not
// corrupt; it must be refused with ErrUnsupportedVersion, never repaired
// (quarantined) as damage.
func TestScanUnsupportedVersion(t *testing.T) {
	data, _, _ := sealedImage(t, 8, 2)
	binary.BigEndian.PutUint16(data[4:], segment.FormatVersion+1)
	binary.BigEndian.PutUint32(data[28:], segment.Checksum(data[:28]))
	_, _, err := scanAll(data, 8, "x", 0)
	if !errors.Is(err, segment.ErrUnsupportedVersion) {
		t.Errorf("Scan of a version %d segment: %v; want ErrUnsupportedVersion", segment.FormatVersion+1, err)
	}
	if errors.Is(err, segment.ErrCorrupt) {
		t.Errorf("Scan of a version %d segment reports corruption: %v", segment.FormatVersion+1, err)
	}
}

// checkTornCut checks the scan of a segment whose bytes after cut are gone
// (or zero): exactly the whole frames before cut are delivered and the end is
// clean (only zeros follow) or reported as torn at the first incomplete frame.
func checkTornCut(t *testing.T, s *builtSegment, data []byte, cut int64, got scanned, res segment.ScanResult, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("cut at %d: Scan error %v, want a torn tail", cut, err)
	}
	whole := 0
	end := int64(segment.HeaderSize)
	for _, p := range s.Positions {
		if int64(p.Offset)+int64(p.Length) <= cut {
			whole++
			end = int64(p.Offset) + int64(p.Length)
		}
	}
	if len(got.Records) != whole {
		t.Fatalf("cut at %d: %d records delivered, want %d", cut, len(got.Records), whole)
	}
	checkScanned(t, got, s, whole)
	if res.FrameEnd != end {
		t.Errorf("cut at %d: FrameEnd %d, want %d", cut, res.FrameEnd, end)
	}
	if res.Sealed {
		t.Errorf("cut at %d: reported sealed", cut)
	}
	if res.Torn == nil {
		if !allZero(data[res.FrameEnd:]) {
			t.Errorf("cut at %d: non-zero bytes after FrameEnd %d but no torn tail reported", cut, res.FrameEnd)
		}
		return
	}
	if res.Torn.Offset != end || res.Torn.Segment != s.ID || res.Torn.Path != s.Path {
		t.Errorf("cut at %d: Torn %+v, want offset %d segment %d", cut, res.Torn, end, s.ID)
	}
	if !errors.Is(res.Torn, segment.ErrCorrupt) {
		t.Errorf("Torn does not match ErrCorrupt")
	}
}

func TestScanTornTailTruncated(t *testing.T) {
	dir := t.TempDir()
	s := buildSegment(t, vfs.OSFS{}, dir, 11, 50, 6, 0, false)
	first := int64(s.Positions[len(s.Positions)-2].Offset)
	torn := 0
	// Cut the file ever shorter: from the last byte of the last frame down
	// to the start of the second-to-last frame.
	for cut := s.FrameEnd - 1; cut >= first; cut-- {
		if err := os.Truncate(s.Path, cut); err != nil {
			t.Fatal(err)
		}
		data, release, err := segment.MapFile(vfs.OSFS{}, s.Path)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(data)) != cut {
			t.Fatalf("mapped %d bytes, want %d", len(data), cut)
		}
		got, res, err := scanAll(data, s.ID, s.Path, 0)
		checkTornCut(t, s, data, cut, got, res, err)
		if res.Torn != nil {
			torn++
		}
		if err := release(); err != nil {
			t.Fatal(err)
		}
	}
	if torn == 0 {
		t.Fatal("no cut was reported as torn")
	}
}

func TestScanTornTailZeroFilled(t *testing.T) {
	// A torn write into preallocated space: the bytes after the cut are zeros.
	dir := t.TempDir()
	s := buildSegment(t, vfs.OSFS{}, dir, 12, 50, 6, 0, false)
	orig := readFile(t, s.Path)
	first := int64(s.Positions[len(s.Positions)-2].Offset)
	for cut := first; cut <= s.FrameEnd; cut++ {
		data := append(append([]byte(nil), orig[:cut]...), make([]byte, 4096+s.FrameEnd-cut)...)
		got, res, err := scanAll(data, s.ID, s.Path, 0)
		checkTornCut(t, s, data, cut, got, res, err)
	}
}

func TestScanBitFlipMiddleFrame(t *testing.T) {
	for _, sealed := range []bool{false, true} {
		dir := t.TempDir()
		s := buildSegment(t, vfs.OSFS{}, dir, 13, 1, 5, 0, sealed)
		orig := readFile(t, s.Path)
		mid := s.Positions[2]
		for bit := int64(mid.Offset) * 8; bit < int64(mid.Offset+mid.Length)*8; bit++ {
			data := append([]byte(nil), orig...)
			data[bit/8] ^= 1 << (bit % 8)
			got, res, err := scanAll(data, s.ID, s.Path, 0)
			if err == nil {
				t.Fatalf("sealed %v: bit %d of frame at %d flipped: no error (result %+v, %d records)", sealed, bit-int64(mid.Offset)*8, mid.Offset, res, len(got.Records))
			}
			ce := asCorrupt(t, err)
			if ce.Segment != s.ID || ce.Offset != int64(mid.Offset) || ce.Path != s.Path {
				t.Fatalf("sealed %v: bit %d: CorruptError %+v, want segment %d offset %d", sealed, bit, ce, s.ID, mid.Offset)
			}
			if len(got.Records) != 2 {
				t.Fatalf("sealed %v: bit %d: %d records before the damage, want 2", sealed, bit, len(got.Records))
			}
		}
	}
}

func TestScanBitFlipOnDisk(t *testing.T) {
	dir := t.TempDir()
	s := buildSegment(t, vfs.OSFS{}, dir, 14, 1, 5, 1<<16, false)
	f, err := os.OpenFile(s.Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	off := int64(s.Positions[1].Offset) + 40
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x10
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got, _, err := mapScan(t, s.Path, 14)
	ce := asCorrupt(t, err)
	if ce.Offset != int64(s.Positions[1].Offset) || ce.Segment != 14 || len(got.Records) != 1 {
		t.Fatalf("CorruptError %+v after %d records; want offset %d after 1", ce, len(got.Records), s.Positions[1].Offset)
	}
}

func TestScanZeroedMiddleFrame(t *testing.T) {
	dir := t.TempDir()
	s := buildSegment(t, vfs.OSFS{}, dir, 15, 1, 5, 1<<16, false)
	orig := readFile(t, s.Path)
	p2, p3 := s.Positions[2], s.Positions[3]
	tests := []struct {
		name       string
		start, end int64
	}{
		{"whole frame", int64(p2.Offset), int64(p2.Offset + p2.Length)},
		{"frame header", int64(p2.Offset), int64(p2.Offset) + segment.FrameHeaderSize},
		{"two frames", int64(p2.Offset), int64(p3.Offset + p3.Length)},
		{"length only", int64(p2.Offset), int64(p2.Offset) + 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := append([]byte(nil), orig...)
			clear(data[tt.start:tt.end])
			got, _, err := scanAll(data, s.ID, s.Path, 0)
			ce := asCorrupt(t, err)
			if ce.Offset != int64(p2.Offset) || ce.Segment != s.ID {
				t.Errorf("CorruptError %+v, want offset %d", ce, p2.Offset)
			}
			if len(got.Records) != 2 {
				t.Errorf("%d records before the damage, want 2", len(got.Records))
			}
		})
	}
}

func TestScanUndecodableRecord(t *testing.T) {
	// A frame with a valid CRC whose payload is not a record is corruption
	// wherever it is, even as the last frame.
	data, end, _ := sealedImage(t, 16, 3)
	junk, err := segment.AppendFrame(nil, []byte("not msgpack"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		in   []byte
	}{
		{"last frame", append(append([]byte(nil), data[:end]...), junk...)},
		{"middle frame", append(append(append([]byte(nil), data[:end]...), junk...), data[segment.HeaderSize:end]...)},
	} {
		_, _, err := scanAll(tt.in, 16, "x", 0)
		if ce := asCorrupt(t, err); ce.Offset != end {
			t.Errorf("%s: CorruptError %+v, want offset %d", tt.name, ce, end)
		}
	}
}

func TestScanFooterFlips(t *testing.T) {
	check := func(t *testing.T, s *builtSegment, data []byte, what string) {
		t.Helper()
		if _, _, err := segment.ReadFooter(data, s.ID); err == nil {
			t.Fatalf("%s: ReadFooter accepted a damaged footer", what)
		}
		got, res, err := scanAll(data, s.ID, s.Path, 0)
		if err != nil {
			ce := asCorrupt(t, err)
			if ce.Segment != s.ID {
				t.Fatalf("%s: CorruptError names segment %d", what, ce.Segment)
			}
			return
		}
		if !res.Sealed || len(got.Records) != len(s.Records) || res.FrameEnd != s.FrameEnd {
			t.Fatalf("%s: nil error with %d/%d records, sealed %v, frame end %d (want %d), torn %v",
				what, len(got.Records), len(s.Records), res.Sealed, res.FrameEnd, s.FrameEnd, res.Torn)
		}
		checkScanned(t, got, s, len(s.Records))
	}
	t.Run("every byte", func(t *testing.T) {
		dir := t.TempDir()
		s := buildSegment(t, vfs.OSFS{}, dir, 17, 1, 20, 0, true)
		orig := readFile(t, s.Path)
		for i := s.FrameEnd; i < int64(len(orig)); i++ {
			data := append([]byte(nil), orig...)
			data[i] ^= 0xFF
			check(t, s, data, "byte "+itoa(i-s.FrameEnd))
		}
	})
	t.Run("every bit", func(t *testing.T) {
		dir := t.TempDir()
		s := buildSegment(t, vfs.OSFS{}, dir, 18, 1, 3, 0, true)
		orig := readFile(t, s.Path)
		for bit := s.FrameEnd * 8; bit < int64(len(orig))*8; bit++ {
			data := append([]byte(nil), orig...)
			data[bit/8] ^= 1 << (bit % 8)
			check(t, s, data, "bit "+itoa(bit-s.FrameEnd*8))
		}
	})
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }
