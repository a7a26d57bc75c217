package segment_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/batpak-go/batpak/segment"
)

func TestHeaderRoundTrip(t *testing.T) {
	for _, h := range []segment.Header{
		{Version: segment.FormatVersion, Segment: 1, Created: 1_700_000_000_000_000},
		{Version: segment.FormatVersion, Segment: math.MaxUint32, Created: math.MaxInt64},
		{Version: segment.FormatVersion, Segment: 7, Created: -1},
		{Version: segment.FormatVersion, Segment: 7, Created: math.MinInt64},
		{Version: segment.FormatVersion, Flags: segment.HeaderWrittenWhole, Segment: 9, Created: 5},
	} {
		b := segment.AppendHeader([]byte{0xAA}, h)
		if len(b) != 1+segment.HeaderSize {
			t.Fatalf("header is %d bytes, want %d", len(b)-1, segment.HeaderSize)
		}
		if !bytes.Equal(b[1:5], []byte("BPSG")) {
			t.Errorf("magic %q, want BPSG", b[1:5])
		}
		got, err := segment.DecodeHeader(append(b[1:], 1, 2, 3)) // trailing data is ignored
		if err != nil {
			t.Fatalf("DecodeHeader(%+v): %v", h, err)
		}
		if got != h {
			t.Errorf("DecodeHeader = %+v, want %+v", got, h)
		}
	}
}

func TestDecodeHeaderRejects(t *testing.T) {
	good := segment.AppendHeader(nil, segment.Header{Version: segment.FormatVersion, Segment: 3, Created: 99})
	mod := func(f func([]byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	fixCRC := func(b []byte) { binary.BigEndian.PutUint32(b[28:], segment.Checksum(b[:28])) }
	tests := []struct {
		name        string
		in          []byte
		unsupported bool
	}{
		{"empty", nil, false},
		{"short", good[:segment.HeaderSize-1], false},
		{"bad magic", mod(func(b []byte) { b[0] = 'X' }), false},
		{"bad magic with fixed crc", mod(func(b []byte) { b[3] = 'X'; fixCRC(b) }), false},
		{"bad crc", mod(func(b []byte) { b[31] ^= 1 }), false},
		{"flipped segment id", mod(func(b []byte) { b[11] ^= 1 }), false},
		{"flipped reserved", mod(func(b []byte) { b[25] ^= 1 }), false},
		{"version 1, before scopes", mod(func(b []byte) { binary.BigEndian.PutUint16(b[4:], 1); fixCRC(b) }), true},
		{"version 2, fixed-width footer index", mod(func(b []byte) { binary.BigEndian.PutUint16(b[4:], 2); fixCRC(b) }), true},
		{"version 4", mod(func(b []byte) { binary.BigEndian.PutUint16(b[4:], 4); fixCRC(b) }), true},
		{"unknown flag", mod(func(b []byte) { binary.BigEndian.PutUint16(b[6:], 2); fixCRC(b) }), true},
		{"flipped flag", mod(func(b []byte) { b[7] ^= 1 }), false},
		{"version 0", mod(func(b []byte) { binary.BigEndian.PutUint16(b[4:], 0); fixCRC(b) }), true},
		{"version 0xFFFF", mod(func(b []byte) { binary.BigEndian.PutUint16(b[4:], 0xFFFF); fixCRC(b) }), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := segment.DecodeHeader(tt.in)
			if err == nil {
				t.Fatal("DecodeHeader accepted a bad header")
			}
			if got := errors.Is(err, segment.ErrUnsupportedVersion); got != tt.unsupported {
				t.Errorf("errors.Is(%v, ErrUnsupportedVersion) = %v, want %v", err, got, tt.unsupported)
			}
			if got := errors.Is(err, segment.ErrCorrupt); got == tt.unsupported {
				t.Errorf("errors.Is(%v, ErrCorrupt) = %v, want %v", err, got, !tt.unsupported)
			}
		})
	}
}

// An older format is refused with a message that says what changed since.
func TestDecodeHeaderOlderFormatSaysWhy(t *testing.T) {
	for v, why := range map[uint16]string{1: "keyed by scope and entity", 2: "fixed-width index"} {
		_, err := segment.DecodeHeader(segment.AppendHeader(nil, segment.Header{Version: v, Segment: 1}))
		if !errors.Is(err, segment.ErrUnsupportedVersion) || !strings.Contains(err.Error(), why) {
			t.Errorf("format %d: %v; want ErrUnsupportedVersion saying %q", v, err, why)
		}
	}
}

func TestFileName(t *testing.T) {
	tests := []struct {
		id   uint32
		name string
	}{
		{1, "0000000001.seg"},
		{42, "0000000042.seg"},
		{1234567890, "1234567890.seg"},
		{math.MaxUint32, "4294967295.seg"},
	}
	for _, tt := range tests {
		if got := segment.FileName(tt.id); got != tt.name {
			t.Errorf("FileName(%d) = %q, want %q", tt.id, got, tt.name)
		}
		if id, ok := segment.ParseFileName(tt.name); !ok || id != tt.id {
			t.Errorf("ParseFileName(%q) = %d, %v, want %d, true", tt.name, id, ok, tt.id)
		}
	}
}

func TestParseFileNameRejects(t *testing.T) {
	for _, name := range []string{
		"",
		"0000000000.seg", // segment ids start at 1
		"4294967296.seg", // overflows uint32
		"9999999999.seg",
		"000000001.seg",   // nine digits
		"00000000001.seg", // eleven digits
		"0000000001.SEG",
		"0000000001.sef",
		"0000000001seg.",
		"000000000a.seg",
		"-000000001.seg",
		"+000000001.seg",
		" 000000001.seg",
		"0000000001.seg.tmp",
		"../00000001.seg",
		"0000000001.seg\x00",
		"０000000001.seg", // full-width digit
	} {
		if id, ok := segment.ParseFileName(name); ok {
			t.Errorf("ParseFileName(%q) = %d, true; want false", name, id)
		}
	}
}
