package segment_test

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/batpak-go/batpak/segment"
)

// checkpointOfSeqs encodes a checkpoint of n events in one stream: its
// sequences section is 4n bytes, a chunk per 16,384 events.
func checkpointOfSeqs(n int) []byte {
	c := &segment.Checkpoint{
		LastSeq: uint64(n), Segment: 1, FrameEnd: uint64(32 + 100*n),
		Streams: []segment.CheckpointStream{{Entity: "a", Version: uint64(n), LastHash: [32]byte{7}}},
		Scopes:  []string{"s"},
	}
	for i := range n {
		var id [16]byte
		id[14], id[15] = byte(i>>8), byte(i)
		c.Entries = append(c.Entries, segment.IndexEntry{Seq: uint64(i + 1), Version: uint64(i + 1), ID: id, Correlation: id,
			Kind: 0x1001, Segment: 1, Offset: uint32(32 + 100*i), Length: 100})
	}
	return segment.EncodeCheckpoint(c)
}

// The checker checks the chunks a slice of the words lies in, and only
// those: a flipped byte fails the slices of its chunk, every time, and
// none of the others; CheckAll finds it. A slice that is not the
// checkpoint's words is refused.
func TestSeqCheckerChunks(t *testing.T) {
	const n, perChunk = 40_000, 16_384 // three chunks, the last one short
	good := checkpointOfSeqs(n)
	sums := 4 * 3
	seqs := len(good) - sums - 4*n
	for _, tc := range []struct {
		name string
		flip int // the word whose byte is flipped, or -1
	}{
		{"intact", -1}, {"first chunk", 5}, {"second chunk", perChunk}, {"last word", n - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := good
			if tc.flip >= 0 {
				b = flip(good, seqs+4*tc.flip+1)
			}
			f, err := segment.OpenCheckpoint(b)
			if err != nil {
				t.Fatal(err)
			}
			words := f.Seqs()
			if len(words) != n || tc.flip < 0 && (words[0] != 1 || words[n-1] != n) {
				t.Fatalf("%d words, first %d, last %d", len(words), words[0], words[n-1])
			}
			c := f.SeqChecker()
			bad := tc.flip / perChunk
			for _, part := range []struct{ from, to int }{
				{0, 1}, {0, perChunk}, {perChunk - 1, perChunk + 1}, {perChunk, 2 * perChunk}, {2 * perChunk, n}, {n - 1, n}, {0, n},
			} {
				want := tc.flip >= 0 && part.from/perChunk <= bad && bad <= (part.to-1)/perChunk
				for range 2 { // the verdict is remembered, not changed
					if err := c.Check(words[part.from:part.to]); (err != nil) != want || err != nil && !errors.Is(err, segment.ErrCorrupt) {
						t.Fatalf("words %d…%d: %v, want an error: %v", part.from, part.to, err, want)
					}
				}
			}
			if err := c.CheckAll(2); (err != nil) != (tc.flip >= 0) {
				t.Fatalf("CheckAll: %v", err)
			}
			if err := c.Check(append([]uint32(nil), words[:3]...)); err == nil {
				t.Fatal("a copy of the words was checked as the checkpoint's")
			}
		})
	}
}

// Concurrent first uses of the same chunks agree (run with -race).
func TestSeqCheckerConcurrent(t *testing.T) {
	const n = 40_000
	good := checkpointOfSeqs(n)
	b := bytes.Clone(good)
	b[len(b)-12-4*n+4*20_000] ^= 1 // in the second chunk
	f, err := segment.OpenCheckpoint(b)
	if err != nil {
		t.Fatal(err)
	}
	c, words := f.SeqChecker(), f.Seqs()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for g := range errs {
		wg.Go(func() { errs[g] = c.Check(words[g*n/8 : (g+1)*n/8]) })
	}
	wg.Wait()
	for g, err := range errs {
		inSecond := (g+1)*n/8 > 16_384 && g*n/8 < 2*16_384
		if (err != nil) != inSecond {
			t.Errorf("part %d: %v", g, err)
		}
	}
}
