package segment_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"github.com/batpak-go/batpak/segment"
)

// fixedCheckpoint is a deterministic checkpoint (fixed ids and times): fuzz
// seeds must be the same in every fuzzing process.
func fixedCheckpoint() []byte {
	id := func(b byte) (u [16]byte) { u[15] = b; return u }
	ix := &segment.Index{
		Strings: []string{"a", "s", "b"},
		Entries: []segment.IndexEntry{
			{Seq: 1, Version: 1, Timestamp: 1_700_000_000_000_000, ID: id(1), Correlation: id(1), Kind: 0x1001, Entity: 0, Scope: 1, Segment: 1, Offset: 32, Length: 120},
			{Seq: 2, Version: 1, Timestamp: 1_700_000_000_000_001, ID: id(2), Correlation: id(1), Causation: id(1), Kind: 0x1001, Flags: segment.EntryDeleted, Entity: 2, Scope: 1, Segment: 1, Offset: 152, Length: 130},
		},
		Tails:   []segment.StreamTail{{Entity: 0, Version: 1, LastHash: [32]byte{7}}, {Entity: 2, Version: 1}},
		Keys:    []segment.IdempotencyRecord{{Key: "key-1", First: 1, Count: 1}},
		Deleted: []uint32{2},
	}
	return segment.EncodeCheckpoint(&segment.Checkpoint{LastSeq: 2, Segment: 1, FrameEnd: 282, Index: ix})
}

// FuzzDecodeCheckpoint: any bytes decode to a checkpoint or an error, never
// a panic or a huge allocation, and what decodes re-encodes to itself.
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
		if fixCRC && len(b) >= 4 {
			// Reach past the checksum: make it match whatever the body is.
			body := b[:len(b)-4]
			b = binary.BigEndian.AppendUint32(bytes.Clone(body), segment.Checksum(body))
		}
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
