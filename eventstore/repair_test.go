package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
	"github.com/batpak-go/batpak/vfs/faultfs"
)

// rpStore is a closed store and the events it held before any damage.
type rpStore struct {
	dir  string
	orig []batpak.Record
}

// copy returns a copy of the store's directory to damage.
func (b *rpStore) copy(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "s")
	dtCopyDir(t, b.dir, dir)
	return dir
}

// rpOpts keeps test stores small: without preallocation a segment file
// holds its frames only.
func rpOpts() []eventstore.Option {
	return []eventstore.Option{eventstore.WithSyncMode(eventstore.SyncNone), eventstore.WithPreallocation(false)}
}

// rpBuild appends n single events over three streams (with segment size
// segBytes, 0 for the default) and closes the store.
func rpBuild(t *testing.T, n int, segBytes int64) *rpStore {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "base")
	opts := rpOpts()
	if segBytes > 0 {
		opts = append(opts, eventstore.WithSegmentMaxBytes(segBytes))
	}
	s := dtOpen(t, dir, opts...)
	for i := range n {
		var o []batpak.AppendOption
		if i%4 == 1 {
			o = append(o, batpak.WithIdempotencyKey(fmt.Sprintf("k%d", i)))
		}
		dtAppend(t, s, []string{"a", "b", "c"}[i%3], dtEvents(fmt.Sprintf("e%d", i), 1), o...)
	}
	b := &rpStore{dir: dir, orig: dtReadAll(t, s)}
	dtClose(t, s)
	return b
}

// rpRepair repairs dir and checks the result: the store opens writable
// and read-only, verifies without problems, holds every original event
// but the lost ones, identical, and reads each lost one as ErrNotFound;
// its streams' versions and chains are intact and it takes the next
// append at the next sequence. It returns the report.
func rpRepair(t *testing.T, dir string, orig []batpak.Record, lost ...uint64) *eventstore.RepairReport {
	t.Helper()
	rep, err := eventstore.Repair(dir)
	if err != nil {
		t.Fatalf("Repair: %v", err)
	}
	var got []uint64
	for _, l := range rep.Lost {
		got = append(got, l.Sequence)
	}
	if !slices.Equal(got, lost) {
		t.Fatalf("lost %v, want %v; actions %+v", got, lost, rep.Actions)
	}
	if rep.Fallback != "" {
		t.Fatalf("repair fell back to a cut: %s", rep.Fallback)
	}
	rpCheck(t, dir, orig, rep)
	rpCheckIdentities(t, orig, rep)
	return rep
}

// rpCheckIdentities checks what the report says about each lost event
// against what it was: right or unknown, never wrong. An assignment the
// report marks ambiguous may sit on another lost sequence than the event
// it names, but names a stream version that was lost.
func rpCheckIdentities(t *testing.T, orig []batpak.Record, rep *eventstore.RepairReport) {
	t.Helper()
	bySeq := make(map[uint64]batpak.Record)
	lostVersions := make(map[string]bool)
	for _, r := range orig {
		bySeq[r.Sequence] = r
	}
	for _, l := range rep.Lost {
		if r, ok := bySeq[l.Sequence]; ok {
			lostVersions[fmt.Sprintf("%s v%d", r.Coordinate.Entity, r.Version)] = true
		}
	}
	for _, l := range rep.Lost {
		r, ok := bySeq[l.Sequence]
		if l.Entity == "" || !ok {
			continue
		}
		if l.Source == "chain, ambiguous" {
			if !lostVersions[fmt.Sprintf("%s v%d", l.Entity, l.Version)] {
				t.Fatalf("lost %d reported as %s v%d (%s), which was not lost", l.Sequence, l.Entity, l.Version, l.Source)
			}
			continue
		}
		if l.Entity != r.Coordinate.Entity || l.Version != r.Version || l.Scope != r.Coordinate.Scope ||
			l.ID != [16]byte{} && (l.ID != r.ID || l.Kind != r.Kind) {
			t.Fatalf("lost %d reported as %+v, it was %s (id %s)", l.Sequence, l, r, r.ID)
		}
	}
}

// rpCheck checks a repaired store against the original events.
func rpCheck(t *testing.T, dir string, orig []batpak.Record, rep *eventstore.RepairReport) {
	t.Helper()
	vr, err := eventstore.Verify(dir)
	if err != nil || !vr.OK() {
		t.Fatalf("Verify after repair: %v %v", err, vr.Problems)
	}
	lost := make(map[uint64]bool)
	for _, l := range rep.Lost {
		lost[l.Sequence] = true
	}
	want := slices.DeleteFunc(slices.Clone(orig), func(r batpak.Record) bool { return lost[r.Sequence] })
	ro, err := eventstore.OpenReadOnly(dir)
	if err != nil {
		t.Fatalf("read-only open after repair: %v", err)
	}
	rpSame(t, dtReadAll(t, ro), want)
	_ = ro.Close()
	s := dtOpen(t, dir, rpOpts()...)
	rpSame(t, dmCheck(t, s), want)
	for _, l := range rep.Lost {
		// An event compaction had already removed stays a deleted one;
		// every other lost event says it was lost, not deleted.
		_, err := s.GetSequence(context.Background(), l.Sequence)
		if !errors.Is(err, batpak.ErrNotFound) || errors.Is(err, eventstore.ErrLost) == l.Removed {
			t.Fatalf("lost event %d (removed before: %v) reads as %v", l.Sequence, l.Removed, err)
		}
	}
	for _, l := range rep.Lost {
		if l.ID != [16]byte{} {
			if _, err := s.Get(context.Background(), l.ID); !errors.Is(err, batpak.ErrNotFound) {
				t.Fatalf("lost event %s reads as %v", l.ID, err)
			}
		}
	}
	// Every stream keeps its version, but for a lost last event whose
	// stream is unknown: the stream then ends a version earlier.
	last := orig[len(orig)-1]
	versions := make(map[string]uint64)
	for _, r := range want {
		versions[r.Coordinate.Entity] = r.Version
	}
	for _, l := range rep.Lost {
		if l.Entity != "" && !l.Removed {
			versions[l.Entity] = max(versions[l.Entity], l.Version)
		}
	}
	for e, v := range versions {
		if got := s.StreamVersion(dtCoord(e)); got != v {
			t.Fatalf("%s is at version %d after repair, want %d", e, got, v)
		}
	}
	if s.LastSequence() != last.Sequence {
		t.Fatalf("last sequence %d after repair, want %d", s.LastSequence(), last.Sequence)
	}
	rs := dtAppend(t, s, last.Coordinate.Entity, dtEvents("after", 1))
	if rs[0].Sequence != last.Sequence+1 || rs[0].Version != s.StreamVersion(last.Coordinate) {
		t.Fatalf("append after repair: %+v", rs[0])
	}
	if err := s.VerifyChain(context.Background(), last.Coordinate); err != nil {
		t.Fatal(err)
	}
	dtClose(t, s)
	vr, err = eventstore.Verify(dir)
	if err != nil || !vr.OK() {
		t.Fatalf("Verify after repair and an append: %v %v", err, vr.Problems)
	}
}

// rpSame fails unless got and want are the same events, field by field.
func rpSame(t *testing.T, got, want []batpak.Record) {
	t.Helper()
	dtSameEvents(t, got, want)
	for i := range want {
		g, w := got[i], want[i]
		if fmt.Sprint(g) != fmt.Sprint(w) || string(g.Payload) != string(w.Payload) || g.Timestamp != w.Timestamp ||
			g.Kind != w.Kind || g.CorrelationID != w.CorrelationID || g.CausationID != w.CausationID ||
			g.PrevHash != w.PrevHash || fmt.Sprint(g.Metadata) != fmt.Sprint(w.Metadata) {
			t.Fatalf("event %d differs after repair:\n%+v\nwant\n%+v", w.Sequence, g, w)
		}
	}
}

// rpFrames returns the event frames of segment id of dir.
func rpFrames(t *testing.T, dir string, id uint32) []dtFrame {
	t.Helper()
	frames, _, _ := dtScan(t, dtSegPath(dir, id), id)
	return slices.DeleteFunc(frames, func(f dtFrame) bool { return f.Rec.IsMarker() })
}

// TestRepairEveryByte flips one byte at every position of every frame of a
// 14-event log (every byte of the frame header and, by default, every 24th
// byte of the payload and its last; BATPAK_REPAIR_EVERY_BYTE=1 takes every
// byte) and repairs:
// exactly the event hit is lost, the other 13 read back identical, and
// what the report says about the lost one is right or "unknown", never
// wrong. With the checkpoint the last frame's damage is proven damage;
// without it, damage to the last frame is a torn tail that open cuts.
func TestRepairEveryByte(t *testing.T) {
	base := rpBuild(t, 14, 0)
	step := int64(24)
	if os.Getenv("BATPAK_REPAIR_EVERY_BYTE") != "" {
		step = 1
	}
	frames := rpFrames(t, base.dir, 1)
	if len(frames) != 14 {
		t.Fatalf("%d frames", len(frames))
	}
	for _, ckpt := range []bool{true, false} {
		t.Run(fmt.Sprintf("checkpoint=%v", ckpt), func(t *testing.T) {
			cases, known := 0, 0
			sources := make(map[string]int)
			for _, f := range frames {
				for pos := int64(0); pos < f.Size; pos++ {
					if pos >= segment.FrameHeaderSize && pos%step != 0 && pos != f.Size-1 {
						continue
					}
					dir := base.copy(t)
					if !ckpt {
						if err := os.Remove(filepath.Join(dir, eventstore.CheckpointFileName)); err != nil {
							t.Fatal(err)
						}
					}
					dtFlip(t, dtSegPath(dir, 1), f.Off+pos, 0xff)
					seq := f.Rec.Seq
					if !ckpt && seq == 14 { // a torn tail: not damage, the next open cuts it
						rep, err := eventstore.Repair(dir)
						if err != nil || len(rep.Actions) != 0 {
							t.Fatalf("flip at %d of the last frame: %v %+v", pos, err, rep)
						}
						continue
					}
					rep := rpRepair(t, dir, base.orig, seq)
					if rep.Lost[0].Entity != "" {
						known++
						sources[rep.Lost[0].Source]++
					}
					cases++
				}
			}
			t.Logf("%d flips, each lost exactly the event it hit; the report named the stream of %d (%v)", cases, known, sources)
		})
	}
}

// A sealed segment with later segments: one flipped byte loses one event,
// the segment gets a valid footer again, and the later segments are kept.
func TestRepairSealedSegmentWithLaterSegments(t *testing.T) {
	base := rpBuild(t, 200, 4096)
	frames := rpFrames(t, base.dir, 3)
	f := frames[len(frames)/2]
	for _, ckpt := range []bool{true, false} {
		t.Run(fmt.Sprintf("checkpoint=%v", ckpt), func(t *testing.T) {
			dir := base.copy(t)
			if !ckpt {
				_ = os.Remove(filepath.Join(dir, eventstore.CheckpointFileName))
			}
			dtFlip(t, dtSegPath(dir, 3), f.Off+f.Size/2, 0x10)
			dry, err := eventstore.Repair(dir, eventstore.DryRun())
			if err != nil || len(dry.Lost) != 1 || dry.Lost[0].Sequence != f.Rec.Seq || !dry.DryRun {
				t.Fatalf("dry run: %v %+v", err, dry)
			}
			if vr, _ := eventstore.Verify(dir); vr.OK() {
				t.Fatal("the dry run changed the store")
			}
			rep := rpRepair(t, dir, base.orig, f.Rec.Seq)
			l := rep.Lost[0]
			if l.Entity != f.Rec.Entity || l.Version != f.Rec.Version || l.ID != f.Rec.ID || l.Source != "footer" || l.Segment != 3 {
				t.Fatalf("lost event reported as %+v, was %s", l, f.Rec.Entity)
			}
			if rep.LostStreams[batpak.Coordinate{Entity: f.Rec.Entity, Scope: f.Rec.Scope}] != 1 || len(rep.Actions) != 1 || !rep.Actions[0].Precise ||
				rep.Actions[0].Offset != f.Off || rep.EventsKept != uint64(len(base.orig))-1 {
				t.Fatalf("report %+v", rep)
			}
			q, err := os.ReadFile(filepath.Join(dir, rep.Actions[0].QuarantineFile))
			if err != nil || int64(len(q)) != f.Size {
				t.Fatalf("quarantine holds %d bytes (%v), the damaged frame had %d", len(q), err, f.Size)
			}
			vr, _ := eventstore.Verify(dir)
			if len(vr.Warnings) != 0 || vr.Footers != len(dtSegments(t, dir))-1 {
				t.Fatalf("after repair: %d footers, warnings %v", vr.Footers, vr.Warnings)
			}
			// Nothing left to do.
			again, err := eventstore.Repair(dir)
			if err != nil || len(again.Actions) != 0 || len(again.Lost) != 0 {
				t.Fatalf("second repair: %v %+v", err, again)
			}
		})
	}
}

// A sealed segment truncated in the middle of a frame, later segments
// intact: the events from the cut to the segment's end are lost, no more.
func TestRepairTruncatedMiddle(t *testing.T) {
	base := rpBuild(t, 200, 4096)
	frames := rpFrames(t, base.dir, 2)
	cut := frames[len(frames)/2]
	var lost []uint64
	for _, f := range frames[len(frames)/2:] {
		lost = append(lost, f.Rec.Seq)
	}
	for _, ckpt := range []bool{true, false} {
		t.Run(fmt.Sprintf("checkpoint=%v", ckpt), func(t *testing.T) {
			dir := base.copy(t)
			if !ckpt {
				_ = os.Remove(filepath.Join(dir, eventstore.CheckpointFileName))
			}
			if err := os.Truncate(dtSegPath(dir, 2), cut.Off+cut.Size/2); err != nil {
				t.Fatal(err)
			}
			rep := rpRepair(t, dir, base.orig, lost...)
			for _, l := range rep.Lost {
				if ckpt && l.Source != "checkpoint" {
					t.Fatalf("lost %d: source %q with a checkpoint", l.Sequence, l.Source)
				}
			}
			t.Logf("lost %d events: %v, %d of unknown stream", len(rep.Lost), rep.LostStreams, rep.UnknownStreams)
		})
	}
}

// A damaged footer alone costs no events: the footer is written anew.
func TestRepairFooterOnly(t *testing.T) {
	base := rpBuild(t, 200, 4096)
	dir := base.copy(t)
	path := dtSegPath(dir, 2)
	fi, _ := os.Stat(path)
	dtFlip(t, path, fi.Size()-segment.TrailerSize-3, 0xff) // inside the footer frame
	rep := rpRepair(t, dir, base.orig)
	if len(rep.Actions) != 1 || !strings.HasPrefix(rep.Actions[0].Reason, "footer") || rep.Actions[0].QuarantineFile == "" {
		t.Fatalf("report %+v", rep)
	}
	if vr, _ := eventstore.Verify(dir); len(vr.Warnings) != 0 {
		t.Fatalf("after repair: %v", vr.Warnings)
	}
}

// A missing middle segment: its events are lost, named by the checkpoint
// (or, without it, by the chains where they can), and a segment holding
// their hole record takes its place.
func TestRepairMissingSegment(t *testing.T) {
	base := rpBuild(t, 200, 4096)
	var lost []uint64
	for _, f := range rpFrames(t, base.dir, 3) {
		lost = append(lost, f.Rec.Seq)
	}
	for _, ckpt := range []bool{true, false} {
		t.Run(fmt.Sprintf("checkpoint=%v", ckpt), func(t *testing.T) {
			dir := base.copy(t)
			if !ckpt {
				_ = os.Remove(filepath.Join(dir, eventstore.CheckpointFileName))
			}
			if err := os.Remove(dtSegPath(dir, 3)); err != nil {
				t.Fatal(err)
			}
			rep := rpRepair(t, dir, base.orig, lost...)
			if ckpt && rep.UnknownStreams != 0 {
				t.Fatalf("%d lost events of unknown stream with a checkpoint", rep.UnknownStreams)
			}
			t.Logf("%+v", rep.LostStreams)
		})
	}
}

// Batches: a flipped byte in an item loses that item only (the batch's
// other items are kept, without their markers); a flipped byte in a marker
// loses nothing.
func TestRepairBatch(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "base")
	s := dtOpen(t, dir, rpOpts()...)
	dtAppend(t, s, "a", dtEvents("x", 1))
	dtBatch(t, s, "b1", []string{"a", "b", "c", "b"}, batpak.WithIdempotencyKey("batch"))
	dtAppend(t, s, "c", dtEvents("y", 1))
	base := &rpStore{dir: dir, orig: dtReadAll(t, s)}
	dtClose(t, s)
	frames, _, _ := dtScan(t, dtSegPath(dir, 1), 1)
	for _, f := range frames {
		t.Run(fmt.Sprintf("kind=%d,seq=%d", f.Rec.Kind, f.Rec.Seq), func(t *testing.T) {
			d := base.copy(t)
			dtFlip(t, dtSegPath(d, 1), f.Off+f.Size-2, 0x04)
			var lost []uint64
			if !f.Rec.IsMarker() {
				lost = []uint64{f.Rec.Seq}
			}
			rpRepair(t, d, base.orig, lost...)
		})
	}
}

// A hole record of compacted events is hit: its stubs are written again
// from the footer, and no event that was visible is lost.
func TestRepairHoleRecord(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "base")
	s := dtOpen(t, dir, append(rpOpts(), eventstore.WithSegmentMaxBytes(4096))...)
	for i := range 120 {
		dtAppend(t, s, []string{"a", "tmp", "b"}[i%3], dtEvents(fmt.Sprint(i), 1))
	}
	if err := s.DeleteStream(t.Context(), dtCoord("tmp")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Compact(t.Context()); err != nil {
		t.Fatal(err)
	}
	base := &rpStore{dir: dir, orig: dtReadAll(t, s)}
	dtClose(t, s)
	frames, _, _ := dtScan(t, dtSegPath(dir, 2), 2)
	i := slices.IndexFunc(frames, func(f dtFrame) bool { return f.Rec.Kind == segment.KindHole })
	if i < 0 {
		t.Fatal("segment 2 has no hole record")
	}
	hole := frames[i]
	d := base.copy(t)
	dtFlip(t, dtSegPath(d, 2), hole.Off+hole.Size/2, 0x20)
	stubs, err := segment.DecodeStubs(hole.Rec.Payload)
	if err != nil {
		t.Fatal(err)
	}
	var lost []uint64
	for _, st := range stubs {
		lost = append(lost, st.Seq)
	}
	rep := rpRepair(t, d, base.orig, lost...)
	for _, l := range rep.Lost {
		if !l.Removed || l.Entity != "tmp" {
			t.Fatalf("re-stubbed event reported as %+v", l)
		}
	}
}

// A lost event whose stream nothing tells gets a stream of its own, which
// is deleted (never listed); a second repair of earlier damage in the same
// store still works.
func TestRepairUnknownStreamTwice(t *testing.T) {
	base := rpBuild(t, 14, 0)
	dir := base.copy(t)
	_ = os.Remove(filepath.Join(dir, eventstore.CheckpointFileName))
	frames := rpFrames(t, dir, 1)
	// Sequence 13 is the last event of its stream ("a"): no later version
	// names it, and without a footer or checkpoint nothing else does.
	f13 := frames[12]
	dtFlip(t, dtSegPath(dir, 1), f13.Off+f13.Size-2, 0xff) // in the payload: the event's hash no longer verifies
	rep := rpRepair(t, dir, base.orig, 13)
	if rep.UnknownStreams != 1 || rep.Lost[0].Entity != "" {
		t.Fatalf("report %+v", rep)
	}
	s := dtOpen(t, dir, rpOpts()...)
	for st := range s.Streams() {
		if st.Coordinate.Entity != "a" && st.Coordinate.Entity != "b" && st.Coordinate.Entity != "c" && st.Coordinate.Entity != "after" {
			t.Fatalf("Streams lists %q", st.Coordinate.Entity)
		}
	}
	dtClose(t, s)
	// Damage at an earlier place, in the repaired store, again without a
	// checkpoint.
	_ = os.Remove(filepath.Join(dir, eventstore.CheckpointFileName))
	frames = rpFrames(t, dir, 1)
	f2 := frames[1]
	dtFlip(t, dtSegPath(dir, 1), f2.Off+f2.Size/2, 0x01)
	want := slices.DeleteFunc(slices.Clone(base.orig), func(r batpak.Record) bool { return r.Sequence == 13 })
	rep, err := eventstore.Repair(dir)
	if err != nil || len(rep.Lost) != 1 || rep.Lost[0].Sequence != 2 || rep.Fallback != "" {
		t.Fatalf("second repair: %v %+v", err, rep)
	}
	// Sequence 2 was "b" version 1: the footer the first repair wrote (it
	// sealed the segment) names it.
	if rep.Lost[0].Entity != "b" || rep.Lost[0].Version != 1 || rep.Lost[0].Source != "footer" {
		t.Fatalf("second lost event reported as %+v", rep.Lost[0])
	}
	s = dtOpen(t, dir, rpOpts()...)
	got := dmCheck(t, s)
	dtClose(t, s)
	want = slices.DeleteFunc(want, func(r batpak.Record) bool { return r.Sequence == 2 })
	if len(got) != len(want)+1 { // and the event appended by the first check
		t.Fatalf("%d events, want %d", len(got), len(want)+1)
	}
	rpSame(t, got[:len(want)], want)
}

// Intact frames that contradict each other (an event of a stream's version
// that is already taken) cannot be resynchronised: Repair cuts the log
// there and says why.
func TestRepairFallsBackWhenResyncIsImpossible(t *testing.T) {
	base := rpBuild(t, 14, 0)
	dir := base.copy(t)
	frames := rpFrames(t, dir, 1)
	// Frame 12 becomes a copy of an earlier frame of the same size, with
	// sequence 12: whole, with a hash that verifies (the sequence is not
	// hashed), but a version of its stream that is taken already.
	j := slices.IndexFunc(frames[:11], func(f dtFrame) bool { return f.Size == frames[11].Size })
	if j < 0 {
		t.Fatal("no earlier frame of the same size")
	}
	dup := frames[j].Rec
	dup.Seq = 12
	b, err := segment.AppendFrame(nil, segment.AppendRecord(nil, &dup))
	if err != nil || int64(len(b)) != frames[11].Size {
		t.Fatalf("copy of frame %d: %d bytes, %v", j+1, len(b), err)
	}
	dtPatch(t, dtSegPath(dir, 1), frames[11].Off, b)
	rep, err := eventstore.Repair(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.Fallback, "cannot resynchronise") || len(rep.Actions) == 0 || rep.Actions[0].Precise {
		t.Fatalf("report %+v", rep)
	}
	if vr, _ := eventstore.Verify(dir); !vr.OK() {
		t.Fatalf("after repair: %v", vr.Problems)
	}
}

func TestRepairLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := eventstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := eventstore.Repair(dir); !errors.Is(err, eventstore.ErrLocked) {
		t.Fatalf("Repair of an open store = %v", err)
	}
}

// A tombstone frame is hit: the deletion is known from the footers and the
// checkpoint, and written again; no event is lost and the stream stays
// deleted.
func TestRepairLostTombstone(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "base")
	s := dtOpen(t, dir, append(rpOpts(), eventstore.WithSegmentMaxBytes(4096))...)
	for i := range 30 {
		dtAppend(t, s, []string{"a", "gone"}[i%2], dtEvents(fmt.Sprint(i), 1))
	}
	if err := s.DeleteStream(t.Context(), dtCoord("gone")); err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		dtAppend(t, s, "a", dtEvents(fmt.Sprint("b", i), 1))
	}
	base := &rpStore{dir: dir, orig: dtReadAll(t, s)}
	dtClose(t, s)
	var seg uint32
	var tomb dtFrame
	for _, id := range dtSegments(t, dir) {
		frames, _, _ := dtScan(t, dtSegPath(dir, id), id)
		if i := slices.IndexFunc(frames, func(f dtFrame) bool { return f.Rec.Kind == segment.KindTombstone }); i >= 0 {
			seg, tomb = id, frames[i]
		}
	}
	for _, ckpt := range []bool{true, false} {
		t.Run(fmt.Sprintf("checkpoint=%v", ckpt), func(t *testing.T) {
			d := base.copy(t)
			if !ckpt {
				_ = os.Remove(filepath.Join(d, eventstore.CheckpointFileName))
			}
			dtFlip(t, dtSegPath(d, seg), tomb.Off+tomb.Size-3, 0x01)
			rep := rpRepair(t, d, base.orig)
			if len(rep.LostDeletions) != 0 {
				t.Fatalf("deletions lost: %v", rep.LostDeletions)
			}
			s := dtOpen(t, d, rpOpts()...)
			defer s.Close()
			if _, err := s.Append(t.Context(), dtCoord("gone"), dtEvents("again", 1)); !errors.Is(err, batpak.ErrStreamDeleted) {
				t.Fatalf("append to the deleted stream after repair: %v", err)
			}
		})
	}
}

// A damaged segment header is written anew; no event is lost.
func TestRepairHeader(t *testing.T) {
	base := rpBuild(t, 200, 4096)
	dir := base.copy(t)
	dtFlip(t, dtSegPath(dir, 2), 17, 0x01) // the creation time: the header's CRC fails
	if vr, err := eventstore.Verify(dir); err != nil || vr.OK() {
		t.Fatalf("verify with a damaged header: %v %+v", err, vr)
	}
	rep := rpRepair(t, dir, base.orig)
	if len(rep.Actions) != 1 || rep.Actions[0].Offset != 0 || rep.Actions[0].QuarantinedBytes != segment.HeaderSize {
		t.Fatalf("report %+v", rep)
	}
}

// Damage in several places at once, in sealed and active segments, with
// and without the checkpoint: each loses only the events it hit.
func TestRepairSeveralPlaces(t *testing.T) {
	base := rpBuild(t, 300, 4096)
	segs := dtSegments(t, base.dir)
	for _, ckpt := range []bool{true, false} {
		t.Run(fmt.Sprintf("checkpoint=%v", ckpt), func(t *testing.T) {
			dir := base.copy(t)
			if !ckpt {
				_ = os.Remove(filepath.Join(dir, eventstore.CheckpointFileName))
			}
			var lost []uint64
			for _, id := range []uint32{2, 3, segs[len(segs)/2], segs[len(segs)-1]} {
				frames := rpFrames(t, dir, id)
				for _, i := range []int{1, len(frames) / 2, len(frames)/2 + 1} {
					if id == segs[len(segs)-1] && i >= len(frames)-1 {
						continue // not the active segment's last frame: without a checkpoint that is a torn tail
					}
					f := frames[i]
					dtFlip(t, dtSegPath(dir, id), f.Off+f.Size/3, 0x02)
					lost = append(lost, f.Rec.Seq)
				}
			}
			slices.Sort(lost)
			lost = slices.Compact(lost)
			rep := rpRepair(t, dir, base.orig, lost...)
			t.Logf("%d events lost in %d places: %v; %d of unknown stream", len(rep.Lost), len(rep.Actions), rep.LostStreams, rep.UnknownStreams)
		})
	}
}

// A crash (with a power loss, of both kinds) at every file system call of
// a repair leaves a store that a second repair finishes: every segment is
// whole, either as it was or repaired, and exactly the event hit is lost.
func TestRepairCrashAtEveryStep(t *testing.T) {
	base := rpBuild(t, 200, 4096)
	damage := func(dir string) uint64 {
		f := rpFrames(t, dir, 3)[4]
		dtFlip(t, dtSegPath(dir, 3), f.Off+f.Size/2, 0x04)
		path := dtSegPath(dir, 5)
		fi, _ := os.Stat(path)
		dtFlip(t, path, fi.Size()-segment.TrailerSize-5, 0x04) // segment 5's footer
		return f.Rec.Seq
	}
	dir := base.copy(t)
	lost := damage(dir)
	fsys := faultfs.New(vfs.OSFS{})
	if _, err := eventstore.Repair(dir, eventstore.WithStoreOptions(eventstore.WithFS(fsys))); err != nil {
		t.Fatal(err)
	}
	// Crash at every call up to one past the last that changes the disk
	// (the rest are the reads that confirm the repair).
	calls := 0
	for _, c := range fsys.Log() {
		switch c.Op {
		case faultfs.OpWrite, faultfs.OpSync, faultfs.OpTruncate, faultfs.OpRename, faultfs.OpRemove, faultfs.OpMkdir, faultfs.OpSyncDir:
			calls = c.N + 1
		}
	}
	for k := 1; k <= calls; k++ {
		for _, keepEntries := range []bool{false, true} {
			dir := base.copy(t)
			damage(dir)
			fsys := faultfs.New(vfs.OSFS{})
			fsys.CrashAt(k)
			_, err := eventstore.Repair(dir, eventstore.WithStoreOptions(eventstore.WithFS(fsys)))
			if err == nil && fsys.Crashed() {
				t.Fatalf("crash at call %d: Repair reported success", k)
			}
			if keepEntries {
				err = fsys.PowerLossKeepingEntries()
			} else {
				err = fsys.PowerLoss()
			}
			if err != nil {
				t.Fatal(err)
			}
			rep, err := eventstore.Repair(dir)
			if err != nil {
				t.Fatalf("crash at call %d: second repair: %v", k, err)
			}
			if len(rep.Lost) > 1 || len(rep.Lost) == 1 && rep.Lost[0].Sequence != lost || rep.Fallback != "" {
				t.Fatalf("crash at call %d: second repair %+v", k, rep)
			}
			rpCheck(t, dir, base.orig, &eventstore.RepairReport{Lost: []eventstore.LostEvent{{Sequence: lost}}})
		}
	}
	t.Logf("a crash at each of the first %d of %d calls, with either outcome of a power loss, was repaired", calls, fsys.Calls())
}

// A last segment whose footer does not load is a seal a crash interrupted,
// not damage: alone it needs no repair (open cuts the footer), and a
// repair of other damage leaves it to open as well.
func TestRepairInterruptedSeal(t *testing.T) {
	base := rpBuild(t, 200, 4096)
	dir := base.copy(t)
	segs := dtSegments(t, dir)
	if err := os.Remove(dtSegPath(dir, segs[len(segs)-1])); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(filepath.Join(dir, eventstore.CheckpointFileName))
	last := segs[len(segs)-2]
	fi, _ := os.Stat(dtSegPath(dir, last))
	dtFlip(t, dtSegPath(dir, last), fi.Size()-2, 0xff) // the trailer
	ro, err := eventstore.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	orig := dtReadAll(t, ro)
	_ = ro.Close()
	rep, err := eventstore.Repair(dir, eventstore.DryRun())
	if err != nil || len(rep.Actions) != 0 {
		t.Fatalf("an interrupted seal alone: %v %+v", err, rep)
	}
	f := rpFrames(t, dir, 2)[3]
	dtFlip(t, dtSegPath(dir, 2), f.Off+f.Size/2, 0x01)
	rep = rpRepair(t, dir, orig, f.Rec.Seq)
	for _, a := range rep.Actions {
		if a.Segment == last {
			t.Fatalf("repair acted on the interrupted seal: %+v", a)
		}
	}
}

// The idempotency key of a lost event still answers a retry (with
// ErrNotFound, as for events compaction removed): the request is not
// appended twice. The repaired last segment is sealed, so its footer keeps
// the key the damaged frame held.
func TestRepairKeepsKeysOfLostEvents(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "base")
	s := dtOpen(t, dir, rpOpts()...)
	dtAppend(t, s, "a", dtEvents("x", 1))
	dtBatch(t, s, "b1", []string{"a", "b", "c"}, batpak.WithIdempotencyKey("batch"))
	dtAppend(t, s, "b", dtEvents("y", 1), batpak.WithIdempotencyKey("single"))
	dtAppend(t, s, "c", dtEvents("z", 1))
	base := &rpStore{dir: dir, orig: dtReadAll(t, s)}
	dtClose(t, s)
	frames := rpFrames(t, dir, 1)
	for _, key := range []string{"batch", "single"} {
		t.Run(key, func(t *testing.T) {
			d := base.copy(t)
			f := frames[1] // the batch's first item, which carries its key
			if key == "single" {
				f = frames[4]
			}
			dtFlip(t, dtSegPath(d, 1), f.Off+f.Size-2, 0x01)
			rpRepair(t, d, base.orig, f.Rec.Seq)
			s := dtOpen(t, d, rpOpts()...)
			defer s.Close()
			last := s.LastSequence()
			var err error
			if key == "batch" {
				_, err = s.AppendBatch(t.Context(), []batpak.BatchItem{{Coordinate: dtCoord("a"), Event: dtEvent("b1", 0, 3)}}, batpak.WithIdempotencyKey(key))
			} else {
				_, err = s.Append(t.Context(), dtCoord("b"), dtEvents("y", 1), batpak.WithIdempotencyKey(key))
			}
			if !errors.Is(err, batpak.ErrNotFound) || s.LastSequence() != last {
				t.Fatalf("retry of %q after its event was lost: %v (last sequence %d, was %d)", key, err, s.LastSequence(), last)
			}
		})
	}
}

// A sealed segment zeroed from a frame to its end (its footer with it):
// the events there are lost, and their hole record goes where they were,
// in a segment that gets its footer back.
func TestRepairZeroedTail(t *testing.T) {
	base := rpBuild(t, 200, 4096)
	frames := rpFrames(t, base.dir, 2)
	cut := frames[len(frames)-4]
	var lost []uint64
	for _, f := range frames[len(frames)-4:] {
		lost = append(lost, f.Rec.Seq)
	}
	dir := base.copy(t)
	_ = os.Remove(filepath.Join(dir, eventstore.CheckpointFileName))
	dtZeroFrom(t, dtSegPath(dir, 2), cut.Off)
	rep := rpRepair(t, dir, base.orig, lost...)
	if len(rep.Actions) != 1 || rep.Actions[0].Segment != 2 || rep.Actions[0].Offset != cut.Off {
		t.Fatalf("report %+v", rep.Actions)
	}
	if vr, _ := eventstore.Verify(dir); len(vr.Warnings) != 0 {
		t.Fatalf("after repair: %v", vr.Warnings)
	}
}
