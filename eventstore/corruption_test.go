package eventstore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/segment"
)

const corruptSegmentBytes = 8 << 10

// corruptBase is a closed store with four or more sealed segments and an
// active one, built once and copied by every corruption test.
type corruptBase struct {
	dir      string
	orig     []batpak.Record
	segments []uint32
}

func buildCorruptBase(t *testing.T) *corruptBase {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "base")
	s := dtOpen(t, dir, eventstore.WithSyncMode(eventstore.SyncNone), eventstore.WithSegmentMaxBytes(corruptSegmentBytes))
	for i := 0; ; i++ {
		rs := dtMixedRequest(t, s, fmt.Sprintf("r%d", i), i, i%3)
		if p := dtPos(t, s, rs[len(rs)-1].Sequence); p.Segment >= 5 && p.Offset > corruptSegmentBytes/2 {
			break
		}
	}
	b := &corruptBase{dir: dir, orig: dtCheck(t, s)}
	dtClose(t, s)
	b.segments = dtSegments(t, dir)
	return b
}

// copy returns a fresh copy of the base store.
func (b *corruptBase) copy(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "s")
	dtCopyDir(t, b.dir, dir)
	return dir
}

func (b *corruptBase) active() uint32 { return b.segments[len(b.segments)-1] }

func removeCheckpoint(t *testing.T, dir string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, eventstore.CheckpointFileName)); err != nil {
		t.Fatal(err)
	}
}

// damageFooter flips a byte inside the footer frame of a sealed segment,
// so the footer fails its CRC and the segment must be scanned.
func damageFooter(t *testing.T, dir string, id uint32) {
	t.Helper()
	_, frameEnd, sealed := dtScan(t, dtSegPath(dir, id), id)
	if !sealed {
		t.Fatalf("segment %d has no footer", id)
	}
	dtFlip(t, dtSegPath(dir, id), frameEnd+segment.FrameHeaderSize+12, 0x40)
}

// openMustFail opens dir (and read-only) and checks that both fail with
// corruption of segment seg at off, and that the files were not changed.
func openMustFail(t *testing.T, dir string, seg uint32, off int64) {
	t.Helper()
	openMustFailAt(t, dir, seg, off, off)
}

// openMustFailAt is openMustFail for damage reported at off or at alt: a
// damaged last frame inside an atomic batch of a sealed segment is
// reported where the batch begins (where Repair must cut), and the reason
// then names the damaged frame's offset.
func openMustFailAt(t *testing.T, dir string, seg uint32, off, alt int64) {
	t.Helper()
	before := snapshotFiles(t, dir)
	check := func(err error) {
		t.Helper()
		ce := dtCorrupt(t, err, seg, -1)
		switch {
		case off < 0 || ce.Offset == off:
		case ce.Offset == alt && strings.Contains(ce.Reason, fmt.Sprint(off)):
		default:
			t.Fatalf("corruption reported in segment %d at %d (%s), want the damaged frame at %d", ce.Segment, ce.Offset, ce.Reason, off)
		}
		t.Logf("%v", err)
	}
	s, err := eventstore.Open(dir)
	if err == nil {
		n := s.LastSequence()
		s.Close()
		t.Fatalf("Open succeeded with %d events; want corruption of segment %d at %d", n, seg, off)
	}
	check(err)
	r, err := eventstore.OpenReadOnly(dir)
	if err == nil {
		r.Close()
		t.Fatalf("OpenReadOnly succeeded on a corrupt store")
	}
	check(err)
	after := snapshotFiles(t, dir)
	for name, data := range before {
		if name == eventstore.LockFileName {
			continue
		}
		if !bytes.Equal(after[name], data) {
			t.Fatalf("failed Open changed %s (%d bytes, was %d)", name, len(after[name]), len(data))
		}
	}
}

func snapshotFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte)
	for _, de := range des {
		if de.Type().IsRegular() {
			out[de.Name()] = dtReadFile(t, filepath.Join(dir, de.Name()))
		}
	}
	return out
}

// openAllThere opens dir, checks that every original event is there and
// that appends and a reopen work, and returns the cold-start stats.
func openAllThere(t *testing.T, dir string, orig []batpak.Record) eventstore.ColdStart {
	t.Helper()
	s, err := eventstore.Open(dir)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	cs := s.Stats().ColdStart
	dtSameEvents(t, dtCheck(t, s), orig)
	rs := dtAppend(t, s, "after", dtEvents("after", 1))
	if rs[0].Sequence != uint64(len(orig)+1) {
		t.Fatalf("append after recovery got sequence %d, want %d", rs[0].Sequence, len(orig)+1)
	}
	dtClose(t, s)
	s = dtOpen(t, dir)
	defer s.Close()
	if got := dtCheck(t, s); len(got) != len(orig)+1 {
		t.Fatalf("reopen: %d events, want %d", len(got), len(orig)+1)
	}
	return cs
}

func TestCorruptSealedSegmentFrame(t *testing.T) {
	base := buildCorruptBase(t)
	const seg = 2
	frames, _, _ := dtScan(t, dtSegPath(base.dir, seg), seg)
	var targets []dtFrame // a middle event frame and the last frame before the footer
	for i := len(frames) / 2; i < len(frames); i++ {
		if !frames[i].Rec.IsMarker() {
			targets = append(targets, frames[i])
			break
		}
	}
	targets = append(targets, frames[len(frames)-1])
	where := map[string]func(f dtFrame) int64{
		"length":  func(f dtFrame) int64 { return f.Off + 3 },
		"crc":     func(f dtFrame) int64 { return f.Off + 5 },
		"payload": func(f dtFrame) int64 { return f.Off + f.Size/2 },
		"last":    func(f dtFrame) int64 { return f.End() - 1 },
	}
	for ti, f := range targets {
		for _, name := range dtSortedKeys(where) {
			pos := where[name](f)
			// Footer unusable (as after a crash during sealing, or damaged
			// too) and no checkpoint: the segment is scanned and Open must
			// refuse, naming the segment and the damaged frame.
			t.Run(fmt.Sprintf("frame%d/%s/scanned", ti, name), func(t *testing.T) {
				dir := base.copy(t)
				removeCheckpoint(t, dir)
				damageFooter(t, dir, seg)
				dtFlip(t, dtSegPath(dir, seg), pos, 0x01)
				openMustFailAt(t, dir, seg, f.Off, batchStart(frames, f))
			})
		}
	}
	// A valid footer (or checkpoint) is trusted for the index, so the frames
	// of a sealed segment are not read at Open (DESIGN §4: only what follows
	// the watermark is scanned). The damage must then surface on every read
	// of that event, naming the segment and the frame, never as wrong data.
	for _, ckpt := range []bool{true, false} {
		t.Run(fmt.Sprintf("footer-intact/checkpoint=%v", ckpt), func(t *testing.T) {
			f := targets[0]
			dir := base.copy(t)
			if !ckpt {
				removeCheckpoint(t, dir)
			}
			dtFlip(t, dtSegPath(dir, seg), f.Off+f.Size/2, 0x01)
			s := dtOpen(t, dir)
			defer s.Close()
			_, err := s.Get(context.Background(), f.Rec.ID)
			dtCorrupt(t, err, seg, f.Off)
			var readErr error
			n := 0
			for _, err := range s.ReadAll(context.Background(), 0) {
				if err != nil {
					readErr = err
					break
				}
				n++
			}
			dtCorrupt(t, readErr, seg, f.Off)
			if uint64(n+1) != f.Rec.Seq {
				t.Fatalf("ReadAll failed after %d events, the damaged one is %d", n, f.Rec.Seq)
			}
			if err := s.VerifyChain(context.Background(), batpak.Coordinate{Entity: f.Rec.Entity, Scope: f.Rec.Scope}); !errors.Is(err, batpak.ErrCorrupt) {
				t.Fatalf("VerifyChain(%s) over the damaged event: %v", f.Rec.Entity, err)
			}
			for _, r := range base.orig {
				if r.ID == f.Rec.ID {
					continue
				}
				if g, err := s.Get(context.Background(), r.ID); err != nil || g.Hash != r.Hash {
					t.Fatalf("Get(%d) next to the damage: %v", r.Sequence, err)
				}
			}
		})
	}
}

func TestCorruptFooterFallsBackToScan(t *testing.T) {
	base := buildCorruptBase(t)
	const seg = 3
	_, frameEnd, _ := dtScan(t, dtSegPath(base.dir, seg), seg)
	size := int64(len(dtReadFile(t, dtSegPath(base.dir, seg))))
	cases := map[string]func(t *testing.T, path string){
		"footer-body":    func(t *testing.T, p string) { dtFlip(t, p, frameEnd+segment.FrameHeaderSize+20, 0x10) },
		"footer-magic":   func(t *testing.T, p string) { dtFlip(t, p, frameEnd+segment.FrameHeaderSize, 0x01) },
		"footer-crc":     func(t *testing.T, p string) { dtFlip(t, p, frameEnd+5, 0x80) },
		"footer-length":  func(t *testing.T, p string) { dtFlip(t, p, frameEnd+3, 0x02) },
		"hostile-length": func(t *testing.T, p string) { dtPatch(t, p, frameEnd, []byte{0xFF, 0xFF, 0xFF, 0xF0}) },
		"trailer-offset": func(t *testing.T, p string) { dtFlip(t, p, size-segment.TrailerSize+7, 0x04) },
		"trailer-magic":  func(t *testing.T, p string) { dtFlip(t, p, size-3, 0x20) },
		"trailer-cut":    func(t *testing.T, p string) { _ = os.Truncate(p, size-segment.TrailerSize) },
		"last-byte": func(t *testing.T, p string) {
			dtFlip(t, p, size-1, 0xFF)
		},
	}
	for _, name := range dtSortedKeys(cases) {
		t.Run(name, func(t *testing.T) {
			dir := base.copy(t)
			removeCheckpoint(t, dir)
			cases[name](t, dtSegPath(dir, seg))
			cs := openAllThere(t, dir, base.orig)
			if cs.SegmentsScanned == 0 {
				t.Fatalf("damaged footer was not scanned: %+v", cs)
			}
		})
	}
}

func TestCorruptCheckpointIgnored(t *testing.T) {
	base := buildCorruptBase(t)
	good := dtReadFile(t, filepath.Join(base.dir, eventstore.CheckpointFileName))
	decoded := func(t *testing.T) *segment.Checkpoint {
		c, err := segment.DecodeCheckpoint(good)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	fixCRC := func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[len(b)-4:], segment.Checksum(b[:len(b)-4]))
		return b
	}
	cases := map[string]func(t *testing.T) []byte{
		"flip-magic":  func(*testing.T) []byte { return flipped(good, 0) },
		"flip-header": func(*testing.T) []byte { return flipped(good, 15) },
		"flip-middle": func(*testing.T) []byte { return flipped(good, len(good)/2) },
		// (Damage to the streams' sequences, and to their checksums at the
		// end, is found on first use: TestCheckpointSequencesDamaged.)
		"empty": func(*testing.T) []byte { return nil },
		"truncated-10": func(*testing.T) []byte {
			return good[:10]
		},
		"truncated-half": func(*testing.T) []byte { return good[:len(good)/2] },
		"truncated-1":    func(*testing.T) []byte { return good[:len(good)-1] },
		"garbage":        func(*testing.T) []byte { return garbage },
		"magic-garbage":  func(*testing.T) []byte { return append([]byte("BPCK"), garbage...) },
		// A checkpoint of the previous format (one CRC over a footer-style
		// index) is never read as the current one.
		"format-1": func(*testing.T) []byte {
			b := bytes.Clone(good)
			binary.BigEndian.PutUint16(b[4:6], 1)
			return fixCRC(b)
		},
		"future-version": func(*testing.T) []byte {
			b := bytes.Clone(good)
			binary.BigEndian.PutUint16(b[4:6], 99)
			return fixCRC(b)
		},
		// Valid CRC, but the last covered frame is not what it says.
		"last-entry-moved": func(t *testing.T) []byte {
			c := decoded(t)
			last := &c.Entries[len(c.Entries)-1]
			prev := c.Entries[len(c.Entries)-2]
			last.Offset, last.Length = prev.Offset, prev.Length
			return segment.EncodeCheckpoint(c)
		},
		"last-id-other": func(t *testing.T) []byte {
			c := decoded(t)
			c.LastID[15] ^= 1
			return segment.EncodeCheckpoint(c)
		},
		"stream-twice": func(t *testing.T) []byte { // found by the index's map, not by OpenCheckpoint
			c := decoded(t)
			c.Streams[1].Entity, c.Streams[1].Scope = c.Streams[0].Entity, c.Streams[0].Scope
			return segment.EncodeCheckpoint(c)
		},
		"segment-zero": func(t *testing.T) []byte {
			c := decoded(t)
			c.Segment = 0
			return segment.EncodeCheckpoint(c)
		},
	}
	for _, name := range dtSortedKeys(cases) {
		t.Run(name, func(t *testing.T) {
			dir := base.copy(t)
			if err := os.WriteFile(filepath.Join(dir, eventstore.CheckpointFileName), cases[name](t), 0o600); err != nil {
				t.Fatal(err)
			}
			cs := openAllThere(t, dir, base.orig)
			if cs.CheckpointIgnored == "" || cs.Path == "checkpoint" || cs.EventsFromCheckpoint != 0 {
				t.Fatalf("damaged checkpoint was used: %+v", cs)
			}
			t.Logf("ignored: %s", cs.CheckpointIgnored)
		})
	}

	// A whole checkpoint whose watermark lies past the end of the frames:
	// it proves bytes durable that are gone, which is damage.
	t.Run("watermark-past-end", func(t *testing.T) {
		dir := base.copy(t)
		c := decoded(t)
		c.FrameEnd += 1000
		if err := os.WriteFile(filepath.Join(dir, eventstore.CheckpointFileName), segment.EncodeCheckpoint(c), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := eventstore.Open(dir)
		var ce *segment.CorruptError
		if !errors.As(err, &ce) || ce.Segment != c.Segment {
			t.Fatalf("open with a watermark past the frames: %v, want ErrCorrupt in segment %d", err, c.Segment)
		}
	})

	// The frame the checkpoint's last entry names was rewritten by a
	// different, shorter history: the tail was lost and new events took
	// its place. The checkpoint proves the lost frames were durable.
	t.Run("last-frame-rewritten", func(t *testing.T) {
		dir := base.copy(t)
		active := base.active()
		frames, _, _ := dtScan(t, dtSegPath(dir, active), active)
		var start int64 // where the last request's frames start
		inBatch := false
		for _, f := range frames {
			switch {
			case f.Rec.IsMarker() && !inBatch:
				start, inBatch = f.Off, true
			case f.Rec.IsMarker():
				inBatch = false
			case !inBatch:
				start = f.Off
			}
		}
		if err := os.Truncate(dtSegPath(dir, active), start); err != nil {
			t.Fatal(err)
		}
		removeCheckpoint(t, dir)
		s := dtOpen(t, dir)
		dtAppend(t, s, "r", dtEvents("r", 1)) // shorter than what it replaces: its frames end below the watermark
		want := dtCheck(t, s)
		dtClose(t, s)
		if err := os.WriteFile(filepath.Join(dir, eventstore.CheckpointFileName), good, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := eventstore.Open(dir); !errors.Is(err, batpak.ErrCorrupt) {
			t.Fatalf("open under a checkpoint of a longer history: %v, want ErrCorrupt", err)
		}
		// Once the checkpoint is gone the store holds the new history.
		removeCheckpoint(t, dir)
		s = dtOpen(t, dir)
		defer s.Close()
		dtSameEvents(t, dtCheck(t, s), want)
	})
}

// batchStart returns the offset of the BEGIN marker of the atomic batch
// that frame f belongs to, or f.Off when it is in none.
func batchStart(frames []dtFrame, f dtFrame) int64 {
	start, in := int64(-1), false
	for _, g := range frames {
		if g.Rec.IsMarker() {
			if !in {
				start = g.Off
			}
			in = !in
			if g.Off == f.Off {
				return start
			}
			continue
		}
		if g.Off == f.Off {
			if in {
				return start
			}
			return f.Off
		}
	}
	return f.Off
}

func flipped(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x08
	return c
}

func TestCorruptActiveSegmentMiddleFrame(t *testing.T) {
	base := buildCorruptBase(t)
	active := base.active()
	frames, _, _ := dtScan(t, dtSegPath(base.dir, active), active)
	mid := frames[len(frames)/2]
	for _, ckpt := range []bool{false, true} {
		t.Run(fmt.Sprintf("flip/checkpoint=%v", ckpt), func(t *testing.T) {
			dir := base.copy(t)
			if !ckpt {
				removeCheckpoint(t, dir)
			}
			dtFlip(t, dtSegPath(dir, active), mid.Off+mid.Size/2, 0x01)
			if ckpt {
				// The checkpoint covers the damaged frame: it is not read.
				// Damage after the watermark is tested below.
				s := dtOpen(t, dir)
				_, err := s.Get(context.Background(), mid.Rec.ID)
				if !mid.Rec.IsMarker() {
					dtCorrupt(t, err, active, mid.Off)
				}
				s.Close()
				return
			}
			openMustFail(t, dir, active, mid.Off)
		})
	}
	t.Run("zeroed-frame", func(t *testing.T) {
		dir := base.copy(t)
		removeCheckpoint(t, dir)
		dtPatch(t, dtSegPath(dir, active), mid.Off, make([]byte, mid.Size))
		openMustFail(t, dir, active, mid.Off)
	})
	// Damage after the checkpoint's watermark: the store crashed after
	// more appends, and one of those frames (not the last) is bad.
	t.Run("after-watermark", func(t *testing.T) {
		dir := base.copy(t)
		s := dtOpen(t, dir, eventstore.WithSegmentMaxBytes(corruptSegmentBytes))
		var rs []batpak.Receipt
		for i := range 6 {
			rs = append(rs, dtAppend(t, s, "late", dtEvents(fmt.Sprintf("late%d", i), 1))...)
		}
		crash := filepath.Join(t.TempDir(), "crash")
		dtCopyDir(t, dir, crash)
		p, p5 := dtPos(t, s, rs[2].Sequence), dtPos(t, s, rs[5].Sequence)
		dtClose(t, s)
		if p.Segment != p5.Segment {
			t.Skip("late events span a rotation")
		}
		dtFlip(t, dtSegPath(crash, p.Segment), int64(p.Offset)+int64(p.Length)/2, 0x01)
		openMustFail(t, crash, p.Segment, int64(p.Offset))
	})
}

func TestCorruptMissingSegment(t *testing.T) {
	base := buildCorruptBase(t)
	for _, ckpt := range []bool{true, false} {
		for _, missing := range []uint32{2, base.active() - 1} {
			t.Run(fmt.Sprintf("segment%d/checkpoint=%v", missing, ckpt), func(t *testing.T) {
				dir := base.copy(t)
				if !ckpt {
					removeCheckpoint(t, dir)
				}
				if err := os.Remove(dtSegPath(dir, missing)); err != nil {
					t.Fatal(err)
				}
				openMustFail(t, dir, missing, -1)
			})
		}
	}
}

// TestCorruptMissingLastSegment: the last segment file (or every one) is
// gone, and a valid checkpoint proves it held acknowledged events. That is
// corruption too, not a reason to ignore the checkpoint and open without
// those events.
func TestCorruptMissingLastSegment(t *testing.T) {
	base := buildCorruptBase(t)
	t.Run("last", func(t *testing.T) {
		dir := base.copy(t)
		if err := os.Remove(dtSegPath(dir, base.active())); err != nil {
			t.Fatal(err)
		}
		openMustFail(t, dir, base.active(), -1)
	})
	t.Run("all", func(t *testing.T) {
		dir := base.copy(t)
		for _, id := range base.segments {
			if err := os.Remove(dtSegPath(dir, id)); err != nil {
				t.Fatal(err)
			}
		}
		openMustFail(t, dir, base.active(), -1)
	})
	t.Run("repair-then-open", func(t *testing.T) {
		dir := base.copy(t)
		if err := os.Remove(dtSegPath(dir, base.active())); err != nil {
			t.Fatal(err)
		}
		rep, err := eventstore.Repair(dir)
		if err != nil {
			t.Fatalf("repair: %v", err)
		}
		// The checkpoint names the lost events: they keep their sequences
		// as stubs, and the segment is written again holding them.
		if len(rep.Lost) == 0 || rep.UnknownStreams != 0 || rep.LastSequence != base.orig[len(base.orig)-1].Sequence {
			t.Fatalf("repair report %+v", rep)
		}
		s := dtOpen(t, dir)
		defer s.Close()
		got := dmCheck(t, s)
		if len(got) == 0 || len(got) >= len(base.orig) {
			t.Fatalf("%d events after repair, had %d", len(got), len(base.orig))
		}
		dtSameEvents(t, got, base.orig[:len(got)])
		if first := rep.Lost[0].Sequence; got[len(got)-1].Sequence != first-1 {
			t.Fatalf("the events kept end at %d, the lost ones start at %d", got[len(got)-1].Sequence, first)
		}
	})
}

// TestCorruptHostileFrameLength writes a frame length of 0xFFFFFFF0 into a
// frame that valid frames follow: Open must fail with ErrCorrupt without
// trying to allocate it (or panicking).
func TestCorruptHostileFrameLength(t *testing.T) {
	base := buildCorruptBase(t)
	hostile := []byte{0xFF, 0xFF, 0xFF, 0xF0}
	active := base.active()
	activeFrames, _, _ := dtScan(t, dtSegPath(base.dir, active), active)
	sealedFrames, _, _ := dtScan(t, dtSegPath(base.dir, 2), 2)
	cases := []struct {
		name   string
		seg    uint32
		frames []dtFrame
		frame  dtFrame
		prep   func(t *testing.T, dir string)
	}{
		{"active", active, activeFrames, activeFrames[len(activeFrames)/2], func(t *testing.T, dir string) { removeCheckpoint(t, dir) }},
		{"active-first", active, activeFrames, activeFrames[0], func(t *testing.T, dir string) { removeCheckpoint(t, dir) }},
		{"sealed", 2, sealedFrames, sealedFrames[len(sealedFrames)/2], func(t *testing.T, dir string) {
			removeCheckpoint(t, dir)
			damageFooter(t, dir, 2)
		}},
		{"sealed-last", 2, sealedFrames, sealedFrames[len(sealedFrames)-1], func(t *testing.T, dir string) {
			removeCheckpoint(t, dir)
			damageFooter(t, dir, 2)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := base.copy(t)
			c.prep(t, dir)
			dtPatch(t, dtSegPath(dir, c.seg), c.frame.Off, hostile)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			s, err := eventstore.Open(dir)
			runtime.ReadMemStats(&after)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded over a frame of length 0xFFFFFFF0")
			}
			ce := dtCorrupt(t, err, c.seg, -1)
			if ce.Offset != c.frame.Off && ce.Offset != batchStart(c.frames, c.frame) {
				t.Fatalf("corruption reported at %d (%s), want %d", ce.Offset, ce.Reason, c.frame.Off)
			}
			if grown := after.TotalAlloc - before.TotalAlloc; grown > 64<<20 {
				t.Fatalf("Open allocated %d bytes", grown)
			}
		})
	}
}

// TestCorruptUnsupportedVersion gives a segment a header with an unknown
// format version (and a valid header CRC): Open must refuse it with
// segment.ErrUnsupportedVersion, not guess, and not call it corruption
// (which Repair would cut away).
func TestCorruptUnsupportedVersion(t *testing.T) {
	base := buildCorruptBase(t)
	cases := []struct {
		name    string
		seg     uint32
		ckpt    bool
		version uint16
	}{
		{"active", base.active(), true, segment.FormatVersion + 1},
		{"active/no-checkpoint", base.active(), false, segment.FormatVersion + 1},
		{"sealed/no-checkpoint", 2, false, segment.FormatVersion + 1},
		// A store written before streams were keyed by scope and entity.
		{"format1/sealed/no-checkpoint", 2, false, 1},
		{"format1/active/no-checkpoint", base.active(), false, 1},
		// A store written with fixed-width footer indexes.
		{"format2/sealed/no-checkpoint", 2, false, 2},
		{"format2/active/no-checkpoint", base.active(), false, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := base.copy(t)
			if !c.ckpt {
				removeCheckpoint(t, dir)
			}
			path := dtSegPath(dir, c.seg)
			hdr := dtReadFile(t, path)[:segment.HeaderSize]
			binary.BigEndian.PutUint16(hdr[4:6], c.version)
			binary.BigEndian.PutUint32(hdr[28:32], segment.Checksum(hdr[:28]))
			dtPatch(t, path, 0, hdr)
			for _, open := range []func(string, ...eventstore.Option) (*eventstore.Store, error){eventstore.Open, eventstore.OpenReadOnly} {
				s, err := open(dir)
				if err == nil {
					s.Close()
					t.Fatal("opened a store with a segment of an unknown format version")
				}
				if !errors.Is(err, segment.ErrUnsupportedVersion) {
					t.Fatalf("error %v does not match segment.ErrUnsupportedVersion", err)
				}
				if errors.Is(err, batpak.ErrCorrupt) {
					t.Fatalf("unknown version reported as corruption: %v", err)
				}
				if c.version < segment.FormatVersion && !strings.Contains(err.Error(), "older batpak") {
					t.Fatalf("an older format is refused without saying so: %v", err)
				}
			}
			// Nothing was cut or rewritten.
			if got := dtReadFile(t, path)[:segment.HeaderSize]; !bytes.Equal(got, hdr) {
				t.Fatal("header rewritten")
			}
		})
	}
}
