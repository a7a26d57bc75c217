package segment_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
)

// sealedImage returns an in-memory sealed segment: header, n event frames,
// footer and trailer, and the offset where the footer frame starts.
func sealedImage(t testing.TB, id uint32, n int) ([]byte, int64, *segment.Index) {
	t.Helper()
	data := segment.AppendHeader(nil, segment.Header{Version: segment.FormatVersion, Segment: id, Created: 5})
	var recs []segment.Record
	var pos []segment.Position
	for i := range n {
		r := testRecord(uint64(i + 1))
		off := len(data)
		data = append(data, frameOf(t, &r)...)
		recs = append(recs, r)
		pos = append(pos, segment.Position{Segment: id, Offset: uint32(off), Length: uint32(len(data) - off)})
	}
	ix := indexOf(recs, pos)
	end := int64(len(data))
	data, err := segment.AppendFooter(data, id, end, ix)
	if err != nil {
		t.Fatal(err)
	}
	return data, end, ix
}

func TestFooterRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 5} {
		data, end, ix := sealedImage(t, 7, n)
		got, off, err := segment.ReadFooter(data, 7)
		if err != nil {
			t.Fatalf("%d frames: ReadFooter: %v", n, err)
		}
		if off != end {
			t.Errorf("%d frames: frame end %d, want %d", n, off, end)
		}
		if !indexEqual(got, ix) {
			t.Errorf("%d frames: index mismatch:\n got %+v\nwant %+v", n, normIndex(got), normIndex(ix))
		}
		// The trailer is the footer offset and the magic.
		tr := data[len(data)-segment.TrailerSize:]
		if binary.BigEndian.Uint64(tr) != uint64(end) || !bytes.Equal(tr[8:], []byte("BPSGEND\x00")) {
			t.Errorf("trailer %q", tr)
		}
		p, _, st := segment.DecodeFrame(data[end:])
		if st != segment.FrameOK || !segment.IsFooterPayload(p) {
			t.Errorf("footer frame: status %v, IsFooterPayload %v", st, segment.IsFooterPayload(p))
		}
	}
}

func TestFooterOnDisk(t *testing.T) {
	dir := t.TempDir()
	s := buildSegment(t, vfs.OSFS{}, dir, 3, 100, 20, 1<<16, true)
	data := readFile(t, s.Path)
	ix, off, err := segment.ReadFooter(data, 3)
	if err != nil {
		t.Fatalf("ReadFooter: %v", err)
	}
	if off != s.FrameEnd {
		t.Errorf("frame end %d, want %d", off, s.FrameEnd)
	}
	if !indexEqual(ix, s.Index) {
		t.Errorf("index mismatch")
	}
	for i, e := range ix.Entries {
		if e.Offset != s.Positions[i].Offset || e.Length != s.Positions[i].Length {
			t.Errorf("entry %d at %d+%d, want %d+%d", i, e.Offset, e.Length, s.Positions[i].Offset, s.Positions[i].Length)
		}
	}
}

// refooter rebuilds data's footer frame with body transformed by f and a
// correct CRC, so the damage is only in what f changes.
func refooter(t testing.TB, data []byte, end int64, f func(body []byte) []byte) []byte {
	t.Helper()
	p, _, st := segment.DecodeFrame(data[end:])
	if st != segment.FrameOK {
		t.Fatal("no footer frame")
	}
	body := f(append([]byte(nil), p...))
	out, err := segment.AppendFrame(append([]byte(nil), data[:end]...), body)
	if err != nil {
		t.Fatal(err)
	}
	out = binary.BigEndian.AppendUint64(out, uint64(end))
	return append(out, "BPSGEND\x00"...)
}

func TestReadFooterRejects(t *testing.T) {
	const id = 9
	data, end, _ := sealedImage(t, id, 3)
	n := len(data)
	mod := func(f func(b []byte)) []byte {
		b := append([]byte(nil), data...)
		f(b)
		return b
	}
	setOff := func(off uint64) []byte {
		return mod(func(b []byte) { binary.BigEndian.PutUint64(b[n-segment.TrailerSize:], off) })
	}
	tests := []struct {
		name        string
		in          []byte
		id          uint32
		unsupported bool
	}{
		{"empty", nil, id, false},
		{"too small", data[:segment.HeaderSize+segment.FrameHeaderSize+segment.TrailerSize-1], id, false},
		{"no footer (active segment)", data[:end], id, false},
		{"active segment with zeros", append(append([]byte(nil), data[:end]...), make([]byte, 4096)...), id, false},
		{"trailer magic wrong", mod(func(b []byte) { b[n-1] = 'X' }), id, false},
		{"trailer magic first byte wrong", mod(func(b []byte) { b[n-8] ^= 0x20 }), id, false},
		{"offset zero", setOff(0), id, false},
		{"offset inside header", setOff(segment.HeaderSize - 1), id, false},
		{"offset of first event frame", setOff(segment.HeaderSize), id, false},
		{"offset one early", setOff(uint64(end) - 1), id, false},
		{"offset one late", setOff(uint64(end) + 1), id, false},
		{"offset at trailer", setOff(uint64(n - segment.TrailerSize)), id, false},
		{"offset past end", setOff(uint64(n) + 100), id, false},
		{"offset huge", setOff(1 << 63), id, false},
		{"offset max", setOff(^uint64(0)), id, false},
		{"footer crc wrong", mod(func(b []byte) { b[end+4] ^= 1 }), id, false},
		{"footer body flipped", mod(func(b []byte) { b[end+20] ^= 1 }), id, false},
		{"footer length wrong", mod(func(b []byte) { b[end+3]-- }), id, false},
		{"garbage between footer and trailer", func() []byte {
			b := append([]byte(nil), data[:n-segment.TrailerSize]...)
			b = append(b, 0, 0, 0, 0)
			return append(b, data[n-segment.TrailerSize:]...)
		}(), id, false},
		{"segment id wrong", data, id + 1, false},
		{"segment id zero", data, 0, false},
		{"footer magic wrong (valid crc)", refooter(t, data, end, func(b []byte) []byte { b[0] = 'X'; return b }), id, false},
		{"footer body short (valid crc)", refooter(t, data, end, func(b []byte) []byte { return b[:9] }), id, false},
		{"footer version 1, before scopes (valid crc)", refooter(t, data, end, func(b []byte) []byte { binary.BigEndian.PutUint16(b[4:], 1); return b }), id, true},
		{"footer version 2, fixed-width index (valid crc)", refooter(t, data, end, func(b []byte) []byte { binary.BigEndian.PutUint16(b[4:], 2); return b }), id, true},
		{"footer version 4 (valid crc)", refooter(t, data, end, func(b []byte) []byte { binary.BigEndian.PutUint16(b[4:], 4); return b }), id, true},
		{"footer version 0 (valid crc)", refooter(t, data, end, func(b []byte) []byte { binary.BigEndian.PutUint16(b[4:], 0); return b }), id, true},
		{"footer index truncated (valid crc)", refooter(t, data, end, func(b []byte) []byte { return b[:len(b)-1] }), id, false},
		{"footer index trailing (valid crc)", refooter(t, data, end, func(b []byte) []byte { return append(b, 0) }), id, false},
		{"footer index huge counts (valid crc)", refooter(t, data, end, func(b []byte) []byte {
			for i := 10; i < 26; i++ {
				b[i] = 0xFF
			}
			return b
		}), id, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix, off, err := segment.ReadFooter(tt.in, tt.id)
			if err == nil {
				t.Fatalf("ReadFooter accepted bad input (frame end %d, %d entries)", off, len(ix.Entries))
			}
			if ix != nil || off != 0 {
				t.Errorf("ReadFooter returned index %v, offset %d with error %v", ix != nil, off, err)
			}
			if got := errors.Is(err, segment.ErrUnsupportedVersion); got != tt.unsupported {
				t.Errorf("errors.Is(%v, ErrUnsupportedVersion) = %v, want %v", err, got, tt.unsupported)
			}
			if !tt.unsupported && !errors.Is(err, segment.ErrCorrupt) {
				t.Errorf("error %v does not match ErrCorrupt", err)
			}
		})
	}
}

func TestAppendFooterTooLarge(t *testing.T) {
	// An index whose encoding exceeds MaxFramePayload cannot be a footer.
	key := strings.Repeat("k", 65535)
	keys := make([]segment.IdempotencyRecord, segment.MaxFramePayload/(len(key)+14)+1)
	for i := range keys {
		keys[i].Key = key
	}
	_, err := segment.AppendFooter(nil, 1, segment.HeaderSize, &segment.Index{Keys: keys})
	if !errors.Is(err, segment.ErrFrameTooLarge) {
		t.Fatalf("AppendFooter error %v, want ErrFrameTooLarge", err)
	}
}

func TestIsFooterPayload(t *testing.T) {
	r := testRecord(1)
	for _, tt := range []struct {
		p    []byte
		want bool
	}{
		{nil, false},
		{[]byte("BPF"), false},
		{[]byte("BPFT"), true},
		{[]byte("BPFTanything"), true},
		{segment.AppendRecord(nil, &r), false},
	} {
		if got := segment.IsFooterPayload(tt.p); got != tt.want {
			t.Errorf("IsFooterPayload(%q) = %v, want %v", tt.p, got, tt.want)
		}
	}
}
