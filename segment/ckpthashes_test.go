package segment_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/batpak-go/batpak/segment"
)

// checkpointOfStreams encodes a checkpoint of n streams of one event each,
// stream i's last hash {i, i>>8, 31: 1}: its last hashes section is 32n
// bytes, a chunk per 2,048 streams.
func checkpointOfStreams(n int) []byte {
	c := &segment.Checkpoint{Scopes: []string{"s"}, Segment: 1}
	for i := range n {
		c.Streams = append(c.Streams, segment.CheckpointStream{Entity: fmt.Sprint("e", i), Version: 1, LastHash: [32]byte{byte(i), byte(i >> 8), 31: 1}})
		c.LastSeq++
		c.Entries = append(c.Entries, segment.IndexEntry{Seq: c.LastSeq, Kind: 0x1001, Entity: uint32(i), Segment: 1, Offset: uint32(32 + 100*i), Length: 100})
	}
	c.FrameEnd = uint64(32 + 100*n)
	return segment.EncodeCheckpoint(c)
}

// The last hashes open unread and are checked a chunk at a time: a
// flipped byte fails every hash of its chunk, every time, and none of the
// others; DecodeCheckpoint, which checks them all, fails. The rows, the
// blocks and the sequences are untouched by it.
func TestLastHashesChunks(t *testing.T) {
	const n, perChunk = 5000, 2048 // three chunks, the last one short
	good := checkpointOfStreams(n)
	f, err := segment.OpenCheckpoint(good)
	if err != nil {
		t.Fatal(err)
	}
	// Where the section starts: stream 0's hash.
	at := -1
	for i := 0; i+32 <= len(good); i++ {
		if [32]byte(good[i:]) == ([32]byte{0, 0, 31: 1}) && [32]byte(good[i+32:]) == ([32]byte{1, 0, 31: 1}) {
			at = i
			break
		}
	}
	if at < 0 || at%8 != 0 {
		t.Fatalf("last hashes at %d", at)
	}
	for i := range n {
		if h, err := f.LastHashes().At(i); err != nil || h != ([32]byte{byte(i), byte(i >> 8), 31: 1}) {
			t.Fatalf("stream %d: %x, %v", i, h, err)
		}
	}
	for _, victim := range []int{0, perChunk + 7, n - 1} {
		bad := flip(good, at+32*victim+5)
		f, err := segment.OpenCheckpoint(bad)
		if err != nil {
			t.Fatalf("stream %d's hash flipped: open: %v", victim, err)
		}
		for range 2 {
			for i := range n {
				_, err := f.LastHashes().At(i)
				if inChunk := i/perChunk == victim/perChunk; (err != nil) != inChunk || (err != nil && !errors.Is(err, segment.ErrCorrupt)) {
					t.Fatalf("stream %d's hash flipped: stream %d: %v", victim, i, err)
				}
			}
		}
		if err := f.CheckSeqs(1); err != nil {
			t.Fatalf("stream %d's hash flipped: sequences: %v", victim, err)
		}
		if _, err := f.Block(0, make([]uint32, segment.CheckpointBlockEntries)); err != nil {
			t.Fatalf("stream %d's hash flipped: block: %v", victim, err)
		}
		if _, err := segment.DecodeCheckpoint(bad); !errors.Is(err, segment.ErrCorrupt) {
			t.Fatalf("stream %d's hash flipped: decoded: %v", victim, err)
		}
	}
	// The padding after the checksums is checked too.
	sums := at + 32*n
	end := sums + 4*3
	if end%8 == 0 || binary.BigEndian.Uint32(good[end:]) != 0 {
		t.Fatalf("no padding at %d", end)
	}
	if _, err := segment.OpenCheckpoint(flip(good, end)); !errors.Is(err, segment.ErrCorrupt) {
		t.Fatalf("padding flipped: %v", err)
	}
}
