package eventstore_test

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/segment"
)

// A checkpoint whose streams' sequences are damaged, or wrong under a
// matching checksum, is still used: open does not read the sequences, and
// the first use of a stream's list finds it wrong and rebuilds it from the
// checkpoint's blocks. Whatever uses a list first (a read, an append, the
// next checkpoint), every stream reads back whole, appends take the right
// versions, the rebuilt lists are counted, and the checkpoint Close writes
// next holds the right lists.
func TestCheckpointSequencesDamaged(t *testing.T) {
	base := buildCorruptBase(t)
	good := dtReadFile(t, filepath.Join(base.dir, eventstore.CheckpointFileName))
	n := len(base.orig)
	if 4*n > 64<<10 {
		t.Fatalf("%d events: the sequences take more than one chunk", n)
	}
	seqs := len(good) - 4 - 4*n // one chunk: its checksum is the last 4 bytes
	word := func(b []byte, i int) uint32 { return binary.LittleEndian.Uint32(b[seqs+4*i:]) }
	if word(good, 0) == 0 || int(word(good, n-1)) > n {
		t.Fatalf("sequences start at %d? first %d, last %d", seqs, word(good, 0), word(good, n-1))
	}
	// Two words of different streams whose sequences swap places.
	i, j := 0, n-1
	for ; base.orig[word(good, i)-1].Coordinate == base.orig[word(good, j)-1].Coordinate; i++ {
	}
	swapped := slices.Clone(good)
	binary.LittleEndian.PutUint32(swapped[seqs+4*i:], word(good, j))
	binary.LittleEndian.PutUint32(swapped[seqs+4*j:], word(good, i))
	binary.BigEndian.PutUint32(swapped[len(swapped)-4:], segment.Checksum(swapped[seqs:len(swapped)-4]))

	cases := []struct {
		name    string
		b       []byte
		rebuilt int // streams whose lists are wrong; 0: every stream (a chunk fails)
	}{
		{"flip-first-sequence", flipped(good, seqs+1), 0},
		{"flip-last-sequence", flipped(good, seqs+4*(n-1)), 0},
		{"flip-checksum", flipped(good, len(good)-1), 0},
		{"swapped-under-checksum", swapped, 2},
	}
	streams := perStream(base.orig)
	for _, tc := range cases {
		for _, first := range []string{"read", "append", "checkpoint", "read-only"} {
			t.Run(tc.name+"/"+first, func(t *testing.T) {
				dir := base.copy(t)
				if err := os.WriteFile(filepath.Join(dir, eventstore.CheckpointFileName), tc.b, 0o600); err != nil {
					t.Fatal(err)
				}
				if first == "read-only" { // rebuilds in memory, leaves the file as it is
					ro, err := eventstore.OpenReadOnly(dir)
					if err != nil {
						t.Fatal(err)
					}
					readStreams(t, ro, streams)
					if got := ro.Stats().CheckpointListsRebuilt; got == 0 {
						t.Fatal("no list rebuilt")
					}
					dtClose(t, ro)
					if got := dtReadFile(t, filepath.Join(dir, eventstore.CheckpointFileName)); !slices.Equal(got, tc.b) {
						t.Fatal("a read-only store changed the checkpoint")
					}
				}
				s := dtOpen(t, dir)
				if cs := s.Stats().ColdStart; cs.Path != "checkpoint" || cs.CheckpointIgnored != "" {
					t.Fatalf("the checkpoint was not used: %+v", cs)
				}
				want := maps2(streams)
				switch first {
				case "append":
					for c, seqs := range streams {
						rs, err := s.Append(context.Background(), c, dtEvents("again", 1), batpak.ExpectVersion(batpak.Exactly(uint64(len(seqs)))))
						if err != nil {
							t.Fatalf("append to %s at version %d: %v", c, len(seqs), err)
						}
						want[c] = append(want[c], rs[0].Sequence)
					}
				case "checkpoint":
					c := batpak.Coordinate{Entity: "new", Scope: "dt"}
					want[c] = []uint64{dtAppend(t, s, "new", dtEvents("new", 1))[0].Sequence}
					dtClose(t, s)
					s = dtOpen(t, dir)
					if got := s.Stats().CheckpointListsRebuilt; got != 0 {
						t.Fatalf("the checkpoint Close wrote has %d wrong lists", got)
					}
				}
				readStreams(t, s, want)
				rebuilt, all := s.Stats().CheckpointListsRebuilt, uint64(len(streams))
				switch {
				case first == "checkpoint": // counted before the reopen
				case first == "read-only": // and again by the writer
				case tc.rebuilt == 0 && rebuilt != all, tc.rebuilt > 0 && rebuilt != uint64(tc.rebuilt):
					t.Fatalf("%d lists rebuilt (of %d streams), want %d", rebuilt, all, tc.rebuilt)
				}
				dtClose(t, s)
				s = dtOpen(t, dir)
				defer s.Close()
				readStreams(t, s, want)
				if got := s.Stats().CheckpointListsRebuilt; got != 0 {
					t.Fatalf("after a reopen, %d lists rebuilt", got)
				}
			})
		}
	}
}

// perStream returns the sequences of each stream of recs.
func perStream(recs []batpak.Record) map[batpak.Coordinate][]uint64 {
	out := make(map[batpak.Coordinate][]uint64)
	for _, r := range recs {
		out[r.Coordinate] = append(out[r.Coordinate], r.Sequence)
	}
	return out
}

// maps2 returns a copy of m whose lists can be appended to.
func maps2(m map[batpak.Coordinate][]uint64) map[batpak.Coordinate][]uint64 {
	out := make(map[batpak.Coordinate][]uint64, len(m))
	for c, l := range m {
		out[c] = slices.Clone(l)
	}
	return out
}

// readStreams checks that each stream of s reads as the sequences want
// has for it, in versions from 1.
func readStreams(t *testing.T, s *eventstore.Store, want map[batpak.Coordinate][]uint64) {
	t.Helper()
	for c, seqs := range want {
		var got []uint64
		for r, err := range s.ReadStream(context.Background(), c, 0) {
			if err != nil {
				t.Fatalf("read %s: %v", c, err)
			}
			if r.Version != uint64(len(got)+1) {
				t.Fatalf("read %s: version %d after %d events", c, r.Version, len(got))
			}
			got = append(got, r.Sequence)
		}
		if !slices.Equal(got, seqs) {
			t.Fatalf("read %s: sequences %v, want %v", c, got, seqs)
		}
	}
}

// The durable floor of a checkpoint comes from its head and tables, which
// open checks, not from its sequences, which it does not read: with a
// sequence word flipped, damage to a frame the checkpoint covers, or a cut
// through it, is still corruption, never a torn tail to cut quietly.
func TestCheckpointSequencesDamagedFloorHolds(t *testing.T) {
	for _, damage := range []string{"flip", "cut"} {
		t.Run(damage, func(t *testing.T) {
			dir, last := holeCovered(t)
			ckpt := filepath.Join(dir, eventstore.CheckpointFileName)
			dtFlip(t, ckpt, int64(len(dtReadFile(t, ckpt))-4-4), 0x01) // the last sequence word
			path := dtSegPath(dir, 1)
			switch damage {
			case "flip":
				dtFlip(t, path, last.Off+last.Size/2, 0x40)
			case "cut":
				if err := os.Truncate(path, last.Off+last.Size/2); err != nil {
					t.Fatal(err)
				}
			}
			holeRefused(t, dir)
		})
	}
}
