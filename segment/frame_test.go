package segment_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/batpak-go/batpak/segment"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, payload := range [][]byte{
		{0x01},
		[]byte("hello, frame"),
		bytes.Repeat([]byte{0xab}, 70_000),
	} {
		prefix := []byte("prefix")
		b, err := segment.AppendFrame(append([]byte(nil), prefix...), payload)
		if err != nil {
			t.Fatalf("AppendFrame(%d bytes): %v", len(payload), err)
		}
		if !bytes.HasPrefix(b, prefix) {
			t.Fatalf("AppendFrame clobbered dst")
		}
		frame := b[len(prefix):]
		if got := binary.BigEndian.Uint32(frame[0:4]); got != uint32(len(payload)) {
			t.Errorf("length field %d, want %d", got, len(payload))
		}
		if got := binary.BigEndian.Uint32(frame[4:8]); got != segment.Checksum(payload) {
			t.Errorf("checksum field %#x, want %#x", got, segment.Checksum(payload))
		}
		// Followed by more data: the decoder must stop at the frame's end.
		withTail := append(append([]byte(nil), frame...), 0xde, 0xad)
		p, size, st := segment.DecodeFrame(withTail)
		if st != segment.FrameOK || size != len(frame) || !bytes.Equal(p, payload) {
			t.Fatalf("DecodeFrame = (%d bytes, %d, %v), want (%d bytes, %d, FrameOK)", len(p), size, st, len(payload), len(frame))
		}
		if &p[0] != &withTail[segment.FrameHeaderSize] {
			t.Errorf("payload is not a sub-slice of the input")
		}
	}
}

func TestChecksumIsCRC32C(t *testing.T) {
	// The standard CRC-32C check value.
	if got := segment.Checksum([]byte("123456789")); got != 0xE3069283 {
		t.Fatalf("Checksum(123456789) = %#x, want 0xe3069283", got)
	}
}

func header(length, sum uint32) []byte {
	b := binary.BigEndian.AppendUint32(nil, length)
	return binary.BigEndian.AppendUint32(b, sum)
}

func TestDecodeFrameStatus(t *testing.T) {
	valid, err := segment.AppendFrame(nil, []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	badCRC := append([]byte(nil), valid...)
	badCRC[len(badCRC)-1] ^= 0x01
	badSum := append([]byte(nil), valid...)
	badSum[5] ^= 0x80

	tests := []struct {
		name string
		in   []byte
		want segment.FrameStatus
	}{
		{"nil", nil, segment.FrameEnd},
		{"empty", []byte{}, segment.FrameEnd},
		{"zero header", make([]byte, segment.FrameHeaderSize), segment.FrameEnd},
		{"zero header then zeros", make([]byte, 4096), segment.FrameEnd},
		{"zero header then data", append(make([]byte, 8), 1, 2, 3), segment.FrameEnd},
		{"short all-zero 1", []byte{0}, segment.FrameEnd},
		{"short all-zero 7", make([]byte, 7), segment.FrameEnd},
		{"short header", []byte{0, 0, 0, 7}, segment.FrameTruncated},
		{"short header 7 bytes", valid[:7], segment.FrameTruncated},
		{"short header one non-zero byte", []byte{0, 0, 0, 0, 0, 1}, segment.FrameTruncated},
		{"header only", valid[:segment.FrameHeaderSize], segment.FrameTruncated},
		{"payload past end", valid[:len(valid)-1], segment.FrameTruncated},
		{"length past end", append(header(100, 0), make([]byte, 99)...), segment.FrameTruncated},
		{"max length past end", header(segment.MaxFramePayload, 1), segment.FrameTruncated},
		{"zero length non-zero crc", header(0, 1), segment.FrameBad},
		{"zero length crc of empty", header(0, segment.Checksum(nil)), segment.FrameEnd}, // CRC-32C of "" is 0
		{"length above max", header(segment.MaxFramePayload+1, 0), segment.FrameBad},
		{"hostile length", header(0xFFFFFFFF, 0xFFFFFFFF), segment.FrameBad},
		{"crc mismatch in payload", badCRC, segment.FrameBad},
		{"crc mismatch in header", badSum, segment.FrameBad},
		{"ok", valid, segment.FrameOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, size, st := segment.DecodeFrame(tt.in)
			if st != tt.want {
				t.Fatalf("status %v, want %v", st, tt.want)
			}
			if st != segment.FrameOK && (p != nil || size != 0) {
				t.Errorf("status %v with payload %d bytes and size %d, want nil and 0", st, len(p), size)
			}
		})
	}
}

func TestAppendFrameTooLarge(t *testing.T) {
	dst := []byte("keep")
	big := make([]byte, segment.MaxFramePayload+1)
	got, err := segment.AppendFrame(dst, big)
	if !errors.Is(err, segment.ErrFrameTooLarge) {
		t.Fatalf("AppendFrame(MaxFramePayload+1) error %v, want ErrFrameTooLarge", err)
	}
	if !bytes.Equal(got, []byte("keep")) {
		t.Errorf("AppendFrame changed dst on error: %q", got)
	}
	// Exactly the maximum is allowed and decodes.
	b, err := segment.AppendFrame(nil, big[:segment.MaxFramePayload])
	if err != nil {
		t.Fatalf("AppendFrame(MaxFramePayload): %v", err)
	}
	if _, size, st := segment.DecodeFrame(b); st != segment.FrameOK || size != len(b) {
		t.Fatalf("DecodeFrame of a maximal frame = %d, %v", size, st)
	}
}

var sinkPayload []byte

func TestDecodeFrameDoesNotAllocate(t *testing.T) {
	valid, _ := segment.AppendFrame(nil, bytes.Repeat([]byte{7}, 1000))
	inputs := map[string][]byte{
		"hostile length": append(header(0xFFFFFFFF, 0x12345678), make([]byte, 64)...),
		"truncated":      header(segment.MaxFramePayload, 1),
		"valid":          valid,
		"bad crc":        append(header(3, 0), 1, 2, 3),
	}
	for name, in := range inputs {
		allocs := testing.AllocsPerRun(100, func() {
			sinkPayload, _, _ = segment.DecodeFrame(in)
		})
		if allocs != 0 {
			t.Errorf("%s: DecodeFrame allocated %v times per run, want 0", name, allocs)
		}
	}
}
