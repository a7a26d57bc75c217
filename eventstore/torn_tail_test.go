package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/segment"
)

// tornBase is a store built once for the torn-tail sweep: events in sealed
// segments and in the active one, whose last requests are a single event
// and an atomic two-stream batch (BEGIN, item, item, COMMIT).
type tornBase struct {
	dir        string
	active     uint32
	frames     []dtFrame // frames of the active segment
	original   []batpak.Record
	ckptAll    []byte // checkpoint written by the final Close: covers everything
	ckptBefore []byte // checkpoint from before the tail requests were appended
	sweepFrom  int64  // offset of the first swept frame
	sweepTo    int64  // end of the last frame
	tailFirst  int    // index in frames of the first swept frame
	activeData []byte // the active segment file
}

const tornSegmentBytes = 8 << 10

func buildTornBase(t *testing.T) *tornBase {
	t.Helper()
	b := &tornBase{dir: filepath.Join(t.TempDir(), "base")}
	opts := []eventstore.Option{eventstore.WithSyncMode(eventstore.SyncNone), eventstore.WithSegmentMaxBytes(tornSegmentBytes)}
	s := dtOpen(t, b.dir, opts...)
	// Fill until the active segment (at least the second) is a third full,
	// with every kind of request in the mix.
	for i := 0; ; i++ {
		var rs []batpak.Receipt
		tag := fmt.Sprintf("base%d", i)
		switch i % 4 {
		case 0:
			rs = dtAppend(t, s, "a", dtEvents(tag, 1))
		case 1:
			rs = dtAppend(t, s, "b", dtEvents(tag, 3), batpak.WithIdempotencyKey(tag))
		case 2:
			rs = dtBatch(t, s, tag, []string{"a", "c", "d"})
		case 3:
			rs = dtAppend(t, s, "c", dtEvents(tag, 1), batpak.WithIdempotencyKey(tag))
		}
		last := dtPos(t, s, rs[len(rs)-1].Sequence)
		if last.Segment >= 2 && last.Offset > tornSegmentBytes/3 {
			break
		}
	}
	dtClose(t, s)
	b.ckptBefore = dtReadFile(t, filepath.Join(b.dir, eventstore.CheckpointFileName))

	s = dtOpen(t, b.dir, opts...)
	single := dtAppend(t, s, "a", dtEvents("tail-single", 1))
	batch := dtBatch(t, s, "tail-batch", []string{"b", "c"})
	singlePos, batchPos := dtPos(t, s, single[0].Sequence), dtPos(t, s, batch[1].Sequence)
	b.active = singlePos.Segment
	if batchPos.Segment != b.active {
		t.Fatalf("tail requests span segments %d and %d", b.active, batchPos.Segment)
	}
	b.original = dtCheck(t, s)
	dtClose(t, s)
	b.ckptAll = dtReadFile(t, filepath.Join(b.dir, eventstore.CheckpointFileName))

	ids := dtSegments(t, b.dir)
	if ids[len(ids)-1] != b.active || len(ids) < 2 {
		t.Fatalf("segments %v, active %d", ids, b.active)
	}
	var sealed bool
	b.frames, b.sweepTo, sealed = dtScan(t, dtSegPath(b.dir, b.active), b.active)
	if sealed {
		t.Fatal("active segment has a footer")
	}
	b.tailFirst = -1
	for i, f := range b.frames {
		if int64(singlePos.Offset) == f.Off {
			b.tailFirst = i
		}
	}
	if b.tailFirst < 0 || len(b.frames)-b.tailFirst != 5 {
		t.Fatalf("tail frames not found (first %d of %d)", b.tailFirst, len(b.frames))
	}
	b.sweepFrom = b.frames[b.tailFirst].Off
	b.activeData = dtReadFile(t, dtSegPath(b.dir, b.active))
	return b
}

func dtReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// expectAt returns how many events survive a cut of the active segment at
// cut (whole frames only; a batch only with its COMMIT marker) and where
// the surviving frames end.
func (b *tornBase) expectAt(cut int64, zero bool) (events int, keptEnd int64) {
	if zero {
		// Zeroing bytes that were zero already changes nothing: a frame
		// ending in zeros stays whole if the cut falls among them.
		for cut < int64(len(b.activeData)) && b.activeData[cut] == 0 {
			cut++
		}
	}
	inActive := 0
	for _, f := range b.frames {
		if !f.Rec.IsMarker() {
			inActive++
		}
	}
	events = len(b.original) - inActive
	keptEnd = 32
	pending := -1 // events of an open batch, -1 when none
	for _, f := range b.frames {
		if f.End() > cut {
			break
		}
		switch {
		case f.Rec.IsMarker() && pending < 0:
			pending = 0
		case f.Rec.IsMarker():
			events += pending
			pending = -1
			keptEnd = f.End()
		case pending >= 0:
			pending++
		default:
			events++
			keptEnd = f.End()
		}
	}
	return events, keptEnd
}

// dataBetween reports whether the active segment had a non-zero byte in
// [from, to): a cut there leaves a torn tail that recovery must cut off.
func (b *tornBase) dataBetween(from, to int64) bool {
	if from >= to {
		return false
	}
	for _, c := range b.activeData[from:to] {
		if c != 0 {
			return true
		}
	}
	return false
}

// changed reports whether cutting at cut changes the frames at all.
func (b *tornBase) changed(cut int64, zero bool) bool {
	if zero {
		return b.dataBetween(cut, b.sweepTo)
	}
	return cut < b.sweepTo
}

type tornVariant struct {
	name    string
	zero    bool   // zero the bytes after the cut instead of truncating
	ckpt    string // "all", "before" or "none"
	sampled bool   // only cuts near frame boundaries and every 7th byte
}

// nearBoundary reports whether cut lies within 9 bytes of a frame start
// (the frame header and the first byte of the record).
func (b *tornBase) nearBoundary(cut int64) bool {
	for _, f := range b.frames[b.tailFirst:] {
		if d := cut - f.Off; d >= -1 && d <= 9 {
			return true
		}
		if d := cut - f.End(); d >= -1 && d <= 1 {
			return true
		}
	}
	return false
}

// TestTornTail cuts the active segment at every byte offset inside its
// last five frames (a single event, then BEGIN, two items and COMMIT of an
// atomic batch), by truncating the file or by zeroing everything after the
// cut, with a checkpoint covering everything, one from before the tail, or
// none. Every cut must open, hold exactly the events whose frames (and
// batch COMMIT) are whole, accept appends with fresh sequences and reopen
// the same. On the cuts near frame boundaries and every 7th byte, a crash
// copy taken after those appends (old checkpoint still in place) must also
// recover exactly them: the checkpoint may neither hide the new events nor
// resurrect the cut ones. The checkpoint-before variants run on those cuts
// only (their checkpoint ends where the sweep starts).
func TestTornTail(t *testing.T) {
	base := buildTornBase(t)
	t.Logf("active segment %d: sweeping offsets %d..%d (%d cuts per variant) over %d frames; %d events in the store",
		base.active, base.sweepFrom, base.sweepTo, base.sweepTo-base.sweepFrom+1, len(base.frames)-base.tailFirst, len(base.original))
	variants := []tornVariant{
		{"truncate/checkpoint-all", false, "all", false},
		{"truncate/no-checkpoint", false, "none", false},
		{"zero/checkpoint-all", true, "all", false},
		{"zero/no-checkpoint", true, "none", false},
		{"truncate/checkpoint-before", false, "before", true},
		{"zero/checkpoint-before", true, "before", true},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			work := dtFastTempDir(t)
			n := 0
			for cut := base.sweepFrom; cut <= base.sweepTo; cut++ {
				sample := (cut-base.sweepFrom)%7 == 0 || base.nearBoundary(cut)
				if v.sampled && !sample {
					continue
				}
				// The crash-copy check (old checkpoint next to new frames)
				// runs on the sampled cuts of every variant.
				tornCheckCut(t, base, v, work, cut, sample && v.ckpt != "none")
				if t.Failed() {
					return
				}
				n++
			}
			t.Logf("%d cuts checked", n)
		})
	}
}

func tornCheckCut(t *testing.T, base *tornBase, v tornVariant, work string, cut int64, crashCopy bool) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("cut at %d: %s", cut, fmt.Sprintf(format, args...))
	}
	dir := filepath.Join(work, "cut")
	crash := filepath.Join(work, "crash")
	for _, d := range []string{dir, crash} {
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
	}
	dtCopyDir(t, base.dir, dir)
	ckptPath := filepath.Join(dir, eventstore.CheckpointFileName)
	switch v.ckpt {
	case "before":
		if err := os.WriteFile(ckptPath, base.ckptBefore, 0o600); err != nil {
			t.Fatal(err)
		}
	case "none":
		if err := os.Remove(ckptPath); err != nil {
			t.Fatal(err)
		}
	}
	active := dtSegPath(dir, base.active)
	if v.zero {
		dtZeroFrom(t, active, cut)
	} else if err := os.Truncate(active, cut); err != nil {
		t.Fatal(err)
	}
	want, keptEnd := base.expectAt(cut, v.zero)
	opts := []eventstore.Option{
		eventstore.WithSegmentMaxBytes(tornSegmentBytes),
		eventstore.WithFS(&dtFS{noSync: true}),
	}

	s, err := eventstore.Open(dir, opts...)
	if v.ckpt == "all" && base.changed(cut, v.zero) {
		// The checkpoint covers every frame: what the cut changed was
		// durable, so the cut is damage, never a torn write.
		var ce *segment.CorruptError
		if !errors.As(err, &ce) || !errors.Is(err, batpak.ErrCorrupt) || ce.Segment != base.active || ce.Offset > cut {
			fail("open below the checkpoint's watermark: %v, want ErrCorrupt in segment %d at or before %d", err, base.active, cut)
		}
		return
	}
	if err != nil {
		fail("open: %v", err)
	}
	defer func() { _ = s.Close() }()
	recs := dtCheck(t, s)
	if len(recs) != want {
		fail("%d events after recovery, want %d", len(recs), want)
	}
	dtSameEvents(t, recs, base.original[:want])
	cs := s.Stats().ColdStart
	if (cs.TruncatedBytes > 0) != base.dataBetween(keptEnd, cut) {
		fail("TruncatedBytes %d, but whole requests end at %d", cs.TruncatedBytes, keptEnd)
	}
	switch {
	case v.ckpt == "before" && cs.CheckpointIgnored != "":
		fail("checkpoint from before the tail ignored: %s", cs.CheckpointIgnored)
	case v.ckpt == "all" && cs.CheckpointIgnored != "":
		fail("nothing changed, but the checkpoint was ignored: %q", cs.CheckpointIgnored)
	}

	// Appends continue with fresh sequences and ids.
	origIDs := make(map[uuid.UUID]bool, len(base.original))
	for _, r := range base.original {
		origIDs[r.ID] = true
	}
	r1 := dtAppend(t, s, "a", dtEvents("after-single", 1))
	r2 := dtBatch(t, s, "after-batch", []string{"b", "z"})
	for i, r := range append(r1, r2...) {
		if r.Sequence != uint64(want+1+i) || origIDs[r.EventID] {
			fail("new event %d got sequence %d (want %d), id reused: %v", i, r.Sequence, want+1+i, origIDs[r.EventID])
		}
	}
	// The recovered part was fully checked above; from here on, exact
	// equality with it (ids, sequences, versions, hashes) plus the chains
	// of the streams the new events extend is enough, and much cheaper.
	after := dtReadAll(t, s)
	if len(after) != want+3 {
		fail("%d events after appending 3 to %d", len(after), want)
	}
	dtSameEvents(t, after[:want], base.original[:want])
	for i, r := range append(r1, r2...) {
		if g := after[want+i]; g.ID != r.EventID || g.Hash != r.Hash || g.Version != r.Version {
			fail("new event %d reads back as %s", i, &g)
		}
	}
	for _, e := range []string{"a", "b", "z"} {
		if err := s.VerifyChain(context.Background(), dtCoord(e)); err != nil {
			fail("chain of %s after the new events: %v", e, err)
		}
	}

	// A crash now leaves the old checkpoint (if any) next to the new
	// frames: it must neither hide them nor bring the cut events back.
	if crashCopy {
		dtCopyDir(t, dir, crash)
		c, err := eventstore.Open(crash, opts...)
		if err != nil {
			fail("open crash copy: %v", err)
		}
		dtSameEvents(t, dtReadAll(t, c), after)
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}

	if err := s.Close(); err != nil {
		fail("close: %v", err)
	}
	s2, err := eventstore.Open(dir, opts...)
	if err != nil {
		fail("reopen: %v", err)
	}
	dtSameEvents(t, dtReadAll(t, s2), after)
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestTornTailStaleCheckpoint is the scenario behind the sweep, spelled
// out: a checkpointed close, then the tail of the active segment is lost
// (cut inside the COMMIT marker of the last batch, after the checkpoint's
// last event frame). The checkpoint proves the batch was durable, so the
// cut is damage: Open fails closed at the cut marker instead of silently
// dropping the batch as a torn write.
func TestTornTailStaleCheckpoint(t *testing.T) {
	for _, zero := range []bool{false, true} {
		t.Run(fmt.Sprintf("zero=%v", zero), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "s")
			s := dtOpen(t, dir, eventstore.WithSyncMode(eventstore.SyncNone))
			dtAppend(t, s, "a", dtEvents("one", 1))
			dtBatch(t, s, "two", []string{"a", "b"})
			dtClose(t, s)
			frames, _, _ := dtScan(t, dtSegPath(dir, 1), 1)
			commit := frames[len(frames)-1]
			if !commit.Rec.IsMarker() {
				t.Fatal("last frame is not the COMMIT marker")
			}
			cut := commit.Off + commit.Size/2
			if zero {
				dtZeroFrom(t, dtSegPath(dir, 1), cut)
			} else if err := os.Truncate(dtSegPath(dir, 1), cut); err != nil {
				t.Fatal(err)
			}
			_, err := eventstore.Open(dir)
			var ce *segment.CorruptError
			if !errors.As(err, &ce) || ce.Segment != 1 || ce.Offset != commit.Off {
				t.Fatalf("open after cutting the COMMIT marker: %v, want ErrCorrupt in segment 1 at %d", err, commit.Off)
			}
			// Without the checkpoint nothing proves the batch was durable:
			// it is an incomplete batch at the tail, cut whole.
			removeCheckpoint(t, dir)
			s, err = eventstore.Open(dir)
			if err != nil {
				t.Fatalf("open without the checkpoint: %v", err)
			}
			defer s.Close()
			recs := dtCheck(t, s)
			if len(recs) != 1 || dtTags(recs)["two"] {
				t.Fatalf("%d events after cutting the batch's COMMIT marker, want only the first", len(recs))
			}
		})
	}
}
