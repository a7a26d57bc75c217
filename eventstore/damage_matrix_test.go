package eventstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/segment"
)

// TestDamageMatrix makes every kind of damage the recovery tests know how
// to make, in a copy of one store, and for each checks the whole repair
// path: eventstore.Verify finds the damage (a torn active tail is a
// warning, a damaged checkpoint is reported as ignored, neither is damage
// to the log); the real CLI `batpak verify` exits non-zero and names the
// segment; eventstore.Repair leaves a store that opens, holds exactly the
// events but those the damage hit (compared with the events read before
// the damage: ids, sequences, versions, hashes), reports exactly those as
// lost, and verifies; and `batpak repair --yes` on a second copy gives the
// same store and quarantine.
func TestDamageMatrix(t *testing.T) {
	cli := dmBuildCLI(t)
	base := dmBuildBase(t)
	for _, k := range dmKinds() {
		t.Run(k.name, func(t *testing.T) {
			a, b := base.copy(t), base.copy(t)
			exp := k.damage(t, base, a)
			if exp2 := k.damage(t, base, b); exp2 != exp {
				t.Fatalf("damage is not deterministic: %+v and %+v", exp, exp2)
			}
			dmCheckVerify(t, a, exp)
			dmCheckCLIVerify(t, cli, a, exp)

			rep, err := eventstore.Repair(a)
			if err != nil {
				t.Fatalf("Repair: %v", err)
			}
			if exp.damage && len(rep.Actions) == 0 {
				t.Fatalf("Repair found nothing to do")
			}
			if !exp.damage && len(rep.Actions) > 0 {
				t.Fatalf("Repair moved data of a store without damage to the log: %+v", rep.Actions)
			}
			want := base.without(exp.lostFrom, exp.lostTo)
			gotA := dmAfterRepair(t, a, want, exp.last)
			if !exp.tornTail {
				var lost []uint64
				for _, l := range rep.Lost {
					lost = append(lost, l.Sequence)
				}
				n := 0
				if exp.lostTo > 0 {
					n = int(exp.lostTo - exp.lostFrom + 1)
				}
				if len(lost) != n || n > 0 && (lost[0] != exp.lostFrom || lost[n-1] != exp.lostTo) {
					t.Fatalf("Repair reports sequences %v lost, want %d-%d", lost, exp.lostFrom, exp.lostTo)
				}
				if rep.LastSequence != exp.last || rep.Fallback != "" {
					t.Fatalf("Repair reports last sequence %d (want %d), fallback %q", rep.LastSequence, exp.last, rep.Fallback)
				}
			}

			out, code := dmRunCLI(t, cli, "repair", "--yes", b)
			if code != 0 {
				t.Fatalf("batpak repair --yes exited %d:\n%s", code, out)
			}
			gotB := dmAfterRepair(t, b, want, exp.last)
			dtSameEvents(t, gotB, gotA)
			qa, qb := dmListing(t, filepath.Join(a, eventstore.QuarantineDir)), dmListing(t, filepath.Join(b, eventstore.QuarantineDir))
			if !slices.Equal(qa, qb) {
				t.Fatalf("quarantine differs: Repair %v, batpak repair %v", qa, qb)
			}
			t.Logf("%s: sequences %d-%d of %d lost, quarantine %v", exp.where, exp.lostFrom, exp.lostTo, base.last, qa)
		})
	}
}

const dmSegBytes = 8 << 10

type dmBase struct {
	dir      string
	orig     []batpak.Record // the visible events
	last     uint64          // LastSequence (the deleted stream's events included)
	segments []uint32
}

// without returns the visible events but those with sequences from..to.
func (b *dmBase) without(from, to uint64) []batpak.Record {
	return slices.DeleteFunc(slices.Clone(b.orig), func(r batpak.Record) bool { return r.Sequence >= from && r.Sequence <= to })
}

// dmSeqs returns the first and last sequence held in segment id from
// offset off on (events and stubs).
func dmSeqs(t *testing.T, path string, id uint32, off int64) (first, last uint64) {
	t.Helper()
	frames, _, _ := dtScan(t, path, id)
	for _, f := range frames {
		lo, hi := f.Rec.Seq, f.Rec.Seq
		switch {
		case f.Off < off:
			continue
		case f.Rec.Kind == segment.KindHole:
			hi = lo + f.Rec.Version - 1
		case f.Rec.IsMarker():
			continue
		}
		if first == 0 {
			first = lo
		}
		last = hi
	}
	return first, last
}

func (b *dmBase) copy(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "s")
	dtCopyDir(t, b.dir, dir)
	return dir
}

func (b *dmBase) path(id uint32) string { return dtSegPath(b.dir, id) }
func (b *dmBase) active() uint32        { return b.segments[len(b.segments)-1] }

// dmBuildBase writes a closed store of five or more sealed segments and an
// active one (single events, multi-event appends, batches, keys, a deleted
// stream) whose last frame is a single event.
func dmBuildBase(t *testing.T) *dmBase {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "base")
	s := dtOpen(t, dir, eventstore.WithSyncMode(eventstore.SyncNone), eventstore.WithSegmentMaxBytes(dmSegBytes))
	for i := 0; ; i++ {
		tag := fmt.Sprintf("d%d", i)
		var rs []batpak.Receipt
		if i%4 == 3 {
			rs = dtAppend(t, s, "audit", dtEvents(tag, 1))
		} else {
			rs = dtMixedRequest(t, s, tag, i, i%4)
		}
		if i == 2 { // a deleted stream: its tombstone is in segment 1, before any damage
			dtAppend(t, s, "tmp", dtEvents("tmp", 1))
			if err := s.DeleteStream(t.Context(), dtCoord("tmp")); err != nil {
				t.Fatal(err)
			}
		}
		if p := dtPos(t, s, rs[len(rs)-1].Sequence); p.Segment >= 6 && p.Offset > dmSegBytes/2 {
			break
		}
	}
	// Compaction removes the deleted stream and a retention policy every
	// other audit event from the sealed segments: hole frames.
	rep, err := s.Compact(t.Context(), eventstore.RetainIf(func(r *batpak.Record) bool {
		var p dtPayload
		var n int
		if r.Coordinate.Entity != "audit" || r.Decode(&p) != nil {
			return true
		}
		_, _ = fmt.Sscanf(p.Tag, "d%d", &n)
		return n%8 != 3
	}))
	if err != nil || rep.SegmentsRewritten < 4 {
		t.Fatalf("compaction: %v, %+v", err, rep)
	}
	dtAppend(t, s, "audit", dtEvents("last", 1))
	b := &dmBase{dir: dir}
	b.orig = dmCheck(t, s)
	b.last = s.LastSequence()
	dtClose(t, s)
	b.segments = dtSegments(t, dir)
	return b
}

// dmExpect is what one kind of damage must lead to.
type dmExpect struct {
	segment    uint32 // named by Verify and the CLI (0: none)
	kind       string // Verify's problem kind
	offset     int64  // -1: not checked
	lostFrom   uint64 // the sequences the repair loses, lostFrom..lostTo (0, 0: none)
	lostTo     uint64
	last       uint64 // the repaired store's last sequence
	damage     bool   // Verify reports a problem; Repair acts
	tornTail   bool   // a warning, cut by the next writable open
	checkpoint bool   // the checkpoint is reported as ignored
	where      string
}

type dmKind struct {
	name   string
	damage func(t *testing.T, b *dmBase, dir string) dmExpect
}

// dmEventFrame is an event frame with the batch it belongs to, if any.
type dmEventFrame struct {
	dtFrame
	batchFirst uint64 // first sequence of its batch, 0 outside batches
}

func dmEventFrames(t *testing.T, path string, id uint32) []dmEventFrame {
	t.Helper()
	frames, _, _ := dtScan(t, path, id)
	var out []dmEventFrame
	var batch uint64
	for _, f := range frames {
		switch {
		case f.Rec.Kind == segment.KindBatchBegin:
			batch = f.Rec.Seq
		case f.Rec.Kind == segment.KindBatchCommit:
			batch = 0
		case f.Rec.IsMarker():
		default:
			out = append(out, dmEventFrame{dtFrame: f, batchFirst: batch})
		}
	}
	return out
}

// dmPick returns an event frame near the middle of segment id that is
// (inBatch) or is not inside a batch and has a valid frame after it.
func dmPick(t *testing.T, b *dmBase, id uint32, inBatch bool) dmEventFrame {
	t.Helper()
	frames := dmEventFrames(t, b.path(id), id)
	for d := range len(frames) {
		for _, i := range []int{len(frames)/2 + d, len(frames)/2 - d} {
			if i >= 0 && i < len(frames)-1 && (frames[i].batchFirst != 0) == inBatch {
				return frames[i]
			}
		}
	}
	t.Fatalf("segment %d has no suitable frame (in batch %v)", id, inBatch)
	return dmEventFrame{}
}

func dmKinds() []dmKind {
	return []dmKind{
		{"bit-flip-sealed-frame", func(t *testing.T, b *dmBase, dir string) dmExpect {
			f := dmPick(t, b, 2, false)
			dtFlip(t, dtSegPath(dir, 2), f.Off+f.Size/2, 0x10)
			return dmExpect{segment: 2, kind: "frame", offset: f.Off, lostFrom: f.Rec.Seq, lostTo: f.Rec.Seq, last: b.last, damage: true,
				where: fmt.Sprintf("bit flip in segment 2 at %d (sequence %d)", f.Off+f.Size/2, f.Rec.Seq)}
		}},
		{"bit-flip-frame-in-batch", func(t *testing.T, b *dmBase, dir string) dmExpect {
			// Compaction drops the batch markers of the segments it
			// rewrites: take the first segment that still has a batch.
			for _, id := range b.segments[1:] {
				for _, f := range dmEventFrames(t, b.path(id), id) {
					if f.batchFirst != 0 && f.batchFirst != f.Rec.Seq {
						dtFlip(t, dtSegPath(dir, id), f.Off+f.Size/2, 0x01)
						return dmExpect{segment: id, kind: "frame", offset: f.Off, lostFrom: f.Rec.Seq, lostTo: f.Rec.Seq, last: b.last, damage: true,
							where: fmt.Sprintf("bit flip in segment %d at %d (sequence %d of the batch from %d)", id, f.Off+f.Size/2, f.Rec.Seq, f.batchFirst)}
					}
				}
			}
			t.Fatal("no segment holds a batch")
			return dmExpect{}
		}},
		{"bit-flip-hole-frame", func(t *testing.T, b *dmBase, dir string) dmExpect {
			frames, _, _ := dtScan(t, b.path(4), 4)
			for _, f := range frames {
				if f.Rec.Kind == segment.KindHole {
					dtFlip(t, dtSegPath(dir, 4), f.Off+f.Size/2, 0x20)
					// Its stubs are written again: no visible event is lost.
					return dmExpect{segment: 4, kind: "frame", offset: f.Off, lostFrom: f.Rec.Seq, lostTo: f.Rec.Seq + f.Rec.Version - 1, last: b.last, damage: true,
						where: fmt.Sprintf("bit flip in the hole frame (stubs from sequence %d) of compacted segment 4 at %d", f.Rec.Seq, f.Off+f.Size/2)}
				}
			}
			t.Fatal("segment 4 has no hole frame")
			return dmExpect{}
		}},
		{"bit-flip-footer", func(t *testing.T, b *dmBase, dir string) dmExpect {
			_, frameEnd, sealed := dtScan(t, b.path(2), 2)
			if !sealed {
				t.Fatal("segment 2 has no footer")
			}
			dtFlip(t, dtSegPath(dir, 2), frameEnd+segment.FrameHeaderSize+12, 0x40)
			return dmExpect{segment: 2, kind: "footer", offset: -1, last: b.last, damage: true,
				where: fmt.Sprintf("bit flip in the footer of segment 2 at %d", frameEnd+segment.FrameHeaderSize+12)}
		}},
		{"truncated-sealed-segment", func(t *testing.T, b *dmBase, dir string) dmExpect {
			f := dmPick(t, b, 2, false)
			cut := f.Off + f.Size/2
			if err := os.Truncate(dtSegPath(dir, 2), cut); err != nil {
				t.Fatal(err)
			}
			_, to := dmSeqs(t, b.path(2), 2, f.Off)
			return dmExpect{segment: 2, kind: "frame", offset: f.Off, lostFrom: f.Rec.Seq, lostTo: to, last: b.last, damage: true,
				where: fmt.Sprintf("segment 2 truncated at %d (inside sequence %d)", cut, f.Rec.Seq)}
		}},
		{"zeroed-frame-mid-active", func(t *testing.T, b *dmBase, dir string) dmExpect {
			id := b.active()
			f := dmPick(t, b, id, false)
			dtPatch(t, dtSegPath(dir, id), f.Off, make([]byte, f.Size))
			return dmExpect{segment: id, kind: "frame", offset: f.Off, lostFrom: f.Rec.Seq, lostTo: f.Rec.Seq, last: b.last, damage: true,
				where: fmt.Sprintf("frame of sequence %d zeroed in the active segment %d", f.Rec.Seq, id)}
		}},
		{"missing-middle-segment", func(t *testing.T, b *dmBase, dir string) dmExpect {
			first, last := dmSeqs(t, b.path(3), 3, 0)
			if err := os.Remove(dtSegPath(dir, 3)); err != nil {
				t.Fatal(err)
			}
			return dmExpect{segment: 3, kind: "file", offset: -1, lostFrom: first, lostTo: last, last: b.last, damage: true,
				where: "segment 3 removed"}
		}},
		{"corrupt-checkpoint", func(t *testing.T, b *dmBase, dir string) dmExpect {
			path := filepath.Join(dir, eventstore.CheckpointFileName)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			dtFlip(t, path, fi.Size()/2, 0x08)
			return dmExpect{last: b.last, checkpoint: true, offset: -1,
				where: fmt.Sprintf("bit flip in the checkpoint at %d", fi.Size()/2)}
		}},
		{"torn-active-tail", func(t *testing.T, b *dmBase, dir string) dmExpect {
			id := b.active()
			frames := dmEventFrames(t, b.path(id), id)
			last := frames[len(frames)-1]
			if last.batchFirst != 0 || last.Rec.Seq != b.last {
				t.Fatalf("the active segment does not end in a single event: %+v", last.Rec)
			}
			cut := last.Off + last.Size/2
			if err := os.Truncate(dtSegPath(dir, id), cut); err != nil {
				t.Fatal(err)
			}
			// A crash before the closing checkpoint: nothing says the last
			// frame was durable, so it may be a write that never completed.
			removeCheckpoint(t, dir)
			return dmExpect{segment: id, kind: "torn-tail", offset: last.Off, lostFrom: b.last, lostTo: b.last, last: b.last - 1, tornTail: true,
				where: fmt.Sprintf("active segment %d cut at %d, inside its last frame, no checkpoint", id, cut)}
		}},
		{"cut-below-checkpoint", func(t *testing.T, b *dmBase, dir string) dmExpect {
			// The same cut under the checkpoint that covers the frame: the
			// frame was durable, so losing it is damage, not a torn write.
			id := b.active()
			frames := dmEventFrames(t, b.path(id), id)
			last := frames[len(frames)-1]
			cut := last.Off + last.Size/2
			if err := os.Truncate(dtSegPath(dir, id), cut); err != nil {
				t.Fatal(err)
			}
			return dmExpect{segment: id, kind: "frame", offset: last.Off, lostFrom: b.last, lostTo: b.last, last: b.last, damage: true,
				where: fmt.Sprintf("active segment %d cut at %d, below the checkpoint's watermark", id, cut)}
		}},
		{"garbage-after-sealed-footer", func(t *testing.T, b *dmBase, dir string) dmExpect {
			path := dtSegPath(dir, 2)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			garbage := bytes.Repeat([]byte("garbage!"), 16)
			dtPatch(t, path, fi.Size(), garbage)
			return dmExpect{segment: 2, kind: "footer", offset: -1, last: b.last, damage: true,
				where: fmt.Sprintf("%d bytes of garbage after the footer of segment 2 at %d", len(garbage), fi.Size())}
		}},
	}
}

func dmCheckVerify(t *testing.T, dir string, exp dmExpect) {
	t.Helper()
	rep, err := eventstore.Verify(dir)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	switch {
	case exp.damage:
		if rep.OK() {
			t.Fatalf("Verify found no damage (%s); warnings %v", exp.where, rep.Warnings)
		}
		p := rep.Problems[0]
		if p.Segment != exp.segment || p.Kind != exp.kind || (exp.offset >= 0 && p.Offset != exp.offset) {
			t.Fatalf("Verify's first problem is %s in segment %d, want %s in segment %d at %d (%s); all: %v",
				p, p.Segment, exp.kind, exp.segment, exp.offset, exp.where, rep.Problems)
		}
	case exp.tornTail:
		if !rep.OK() {
			t.Fatalf("Verify reports a torn active tail as damage: %v", rep.Problems)
		}
		if len(rep.Warnings) != 1 || rep.Warnings[0].Kind != "torn-tail" || rep.Warnings[0].Segment != exp.segment || rep.Warnings[0].Offset != exp.offset {
			t.Fatalf("Verify warnings %v, want a torn tail in segment %d at %d", rep.Warnings, exp.segment, exp.offset)
		}
	case exp.checkpoint:
		if !rep.OK() {
			t.Fatalf("Verify reports a damaged checkpoint as damage to the log: %v", rep.Problems)
		}
		if !strings.HasPrefix(rep.Checkpoint, "ignored on open") {
			t.Fatalf("Verify says the checkpoint is %q, want it reported as ignored", rep.Checkpoint)
		}
	}
}

func dmCheckCLIVerify(t *testing.T, cli, dir string, exp dmExpect) {
	t.Helper()
	out, code := dmRunCLI(t, cli, "verify", "--quiet", dir)
	switch {
	case exp.damage:
		if code == 0 {
			t.Fatalf("batpak verify exited 0 on a damaged store (%s):\n%s", exp.where, out)
		}
		name := filepath.Join(dir, segment.FileName(exp.segment))
		if !strings.Contains(out, fmt.Sprintf("segment %d ", exp.segment)) || !strings.Contains(out, name) {
			t.Fatalf("batpak verify does not name segment %d (%s):\n%s", exp.segment, name, out)
		}
	case exp.checkpoint:
		if code != 0 || !strings.Contains(out, "checkpoint ignored on open") {
			t.Fatalf("batpak verify exited %d and does not report the ignored checkpoint:\n%s", code, out)
		}
	case exp.tornTail:
		// Not damage: exit 0. (The CLI prints problems only, so the
		// warning itself is not shown; see docs/reliability.md.)
		if code != 0 {
			t.Fatalf("batpak verify exited %d on a torn active tail:\n%s", code, out)
		}
	}
}

// dmAfterRepair opens a repaired store, checks it holds exactly want and
// verifies, and returns its events.
func dmAfterRepair(t *testing.T, dir string, want []batpak.Record, last uint64) []batpak.Record {
	t.Helper()
	ro, err := eventstore.OpenReadOnly(dir)
	if err != nil {
		t.Fatalf("read-only open after repair: %v", err)
	}
	dtSameEvents(t, dtReadAll(t, ro), want)
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := eventstore.Open(dir)
	if err != nil {
		t.Fatalf("open after repair: %v", err)
	}
	got := dmCheck(t, s)
	dtSameEvents(t, got, want)
	if n := s.LastSequence(); n != last {
		t.Fatalf("LastSequence %d after repair, want %d", n, last)
	}
	// The repaired store takes new events where it ends.
	rs := dtAppend(t, s, "audit", dtEvents("after-repair", 1))
	if rs[0].Sequence != last+1 {
		t.Fatalf("append after repair got sequence %d, want %d", rs[0].Sequence, last+1)
	}
	dtClose(t, s)
	rep, err := eventstore.Verify(dir)
	if err != nil || !rep.OK() {
		t.Fatalf("Verify after repair: %v problems %v", err, rep.Problems)
	}
	if len(rep.Warnings) > 0 { // a repair writes damaged footers anew
		t.Fatalf("Verify after repair and a writable open warns: %v", rep.Warnings)
	}
	return got
}

func dmListing(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		fi, err := de.Info()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s:%d", de.Name(), fi.Size()))
	}
	return out
}

// dmBuildCLI builds cmd/batpak into a temporary directory. If the module's
// go.sum lacks an entry (a dependency being changed), it builds with a
// temporary copy of go.mod and go.sum instead of touching them.
func dmBuildCLI(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(gobin); err != nil {
			t.Skip("no go command to build cmd/batpak")
		}
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "batpak")
	build := func(extra ...string) ([]byte, error) {
		cmd := exec.Command(gobin, append(append([]string{"build"}, extra...), "-o", bin, "./cmd/batpak")...)
		cmd.Dir = ".." // the module root
		return cmd.CombinedOutput()
	}
	out, err := build()
	if err != nil && bytes.Contains(out, []byte("go.sum")) {
		for _, f := range []string{"go.mod", "go.sum"} {
			dtCopyFile(t, filepath.Join("..", f), filepath.Join(tmp, "alt"+filepath.Ext(f)))
		}
		out, err = build("-mod=mod", "-modfile="+filepath.Join(tmp, "alt.mod"))
	}
	if err != nil {
		t.Fatalf("go build ./cmd/batpak: %v\n%s", err, out)
	}
	return bin
}

func dmRunCLI(t *testing.T, cli string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(cli, args...)
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("run %s %v: %v", cli, args, err)
	return "", -1
}

// dmCheck returns the visible events of an open store after checking that
// sequences and versions increase (retention leaves gaps), every stream's
// hash chain verifies and Get finds every event.
func dmCheck(t *testing.T, s *eventstore.Store) []batpak.Record {
	t.Helper()
	recs := dtReadAll(t, s)
	streams := map[string]bool{}
	for i := range recs {
		r := &recs[i]
		if i > 0 && r.Sequence <= recs[i-1].Sequence {
			t.Fatalf("ReadAll yields sequence %d after %d", r.Sequence, recs[i-1].Sequence)
		}
		streams[r.Coordinate.Entity] = true
		if g, err := s.Get(context.Background(), r.ID); err != nil || g.Sequence != r.Sequence || g.Hash != r.Hash {
			t.Fatalf("Get(%s) of sequence %d: %v (sequence %d)", r.ID, r.Sequence, err, g.Sequence)
		}
	}
	for e := range streams {
		if err := s.VerifyChain(context.Background(), dtCoord(e)); err != nil {
			t.Fatal(err)
		}
		var last uint64
		for r, err := range s.ReadStream(context.Background(), dtCoord(e), 0) {
			if err != nil {
				t.Fatal(err)
			}
			if r.Version <= last {
				t.Fatalf("%s: version %d after %d", e, r.Version, last)
			}
			last = r.Version
		}
		if v := s.StreamVersion(dtCoord(e)); v < last {
			t.Fatalf("StreamVersion(%s) = %d, ReadStream yields version %d", e, v, last)
		}
	}
	return recs
}
