package eventstore_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs/faultfs"
)

// An open that rebuilds at least WithCheckpointEvery events from footers
// and scans writes a checkpoint before any append and loads its index
// from it. The checkpoint is on disk before Close (a crash loses no
// rebuild: a read-only open beside the writer loads it), Close does not
// write it again when nothing was appended, and the store it loads holds
// every event, stream, link and idempotency key the rebuild found: reads,
// retries, causal queries and appends after it are those of the store
// before. An open that rebuilds fewer events, or with checkpoints off,
// leaves the checkpoint to Close as before.
func TestCheckpointAfterRebuild(t *testing.T) {
	remove := func(t *testing.T, path string) {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
	const every = 200
	base := t.TempDir()
	s := dtOpen(t, base, slices.Concat(rebuildOpts, []eventstore.Option{eventstore.WithCheckpointEvery(0)})...)
	keyed := make(map[int][]batpak.Receipt) // request i, keyed with its tag
	for i := range 300 {
		rs := dtMixedRequest(t, s, fmt.Sprintf("r%d", i), i, i%3)
		if i%3 == 0 {
			keyed[i] = rs
		}
	}
	cause := keyed[0][0].EventID
	dtAppend(t, s, "effects", dtEvents("effect", 3), batpak.WithCausation(cause))
	if err := s.DeleteStream(t.Context(), dtCoord("acct:6")); err != nil {
		t.Fatal(err)
	}
	orig := visible(t, s)
	total := s.LastSequence()
	correlated, caused := s.Correlated(cause), s.CausedBy(cause)
	dtClose(t, s)
	if len(dtSegments(t, base)) < 4 {
		t.Fatalf("%d segments: the rebuild should read footers", len(dtSegments(t, base)))
	}
	ckpt := filepath.Join(base, eventstore.CheckpointFileName)
	good := dtReadFile(t, ckpt)

	for _, tc := range []struct {
		name    string
		every   int
		damage  func(t *testing.T, path string)
		written bool
	}{
		{"missing", every, remove, true},
		{"damaged", every, func(t *testing.T, path string) {
			if err := os.WriteFile(path, flipped(good, len(good)/2), 0o600); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"fewer than every", 10_000, remove, false},
		{"checkpoints off", 0, remove, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dtCopyDir(t, base, dir)
			path := filepath.Join(dir, eventstore.CheckpointFileName)
			tc.damage(t, path)
			opts := slices.Concat(rebuildOpts, []eventstore.Option{eventstore.WithCheckpointEvery(tc.every)})
			s := dtOpen(t, dir, opts...)
			st := s.Stats()
			cs := st.ColdStart
			if cs.Path != "footer" || cs.EventsFromFooters == 0 || cs.EventsFromFooters+cs.EventsScanned != total {
				t.Fatalf("cold start %+v, want a rebuild of %d events from footers", cs, total)
			}
			if cs.CheckpointWritten != tc.written || st.Checkpoints != map[bool]uint64{true: 1}[tc.written] {
				t.Fatalf("CheckpointWritten %t, %d checkpoints; want %t", cs.CheckpointWritten, st.Checkpoints, tc.written)
			}
			if _, err := os.Stat(path); tc.written != (err == nil) {
				t.Fatalf("checkpoint after open: %v", err)
			}
			dtSameEvents(t, visible(t, s), orig)
			if !tc.written {
				dtClose(t, s)
				return
			}
			written := dtReadFile(t, path)
			if slices.Equal(written, good) {
				t.Fatal("the damaged checkpoint is still there")
			}
			// What a crash now would leave: the checkpoint, which a
			// read-only open beside the writer loads.
			ro, err := eventstore.OpenReadOnly(dir)
			if err != nil {
				t.Fatal(err)
			}
			if rcs := ro.Stats().ColdStart; rcs.Path != "checkpoint" || rcs.EventsFromCheckpoint != total {
				t.Fatalf("read-only open beside the writer: %+v", rcs)
			}
			dtSameEvents(t, visible(t, ro), orig)
			dtClose(t, ro)
			if !slices.Equal(s.Correlated(cause), correlated) || !slices.Equal(s.CausedBy(cause), caused) {
				t.Fatalf("links: correlated %v caused %v, want %v %v", s.Correlated(cause), s.CausedBy(cause), correlated, caused)
			}
			dtClose(t, s)
			if !slices.Equal(dtReadFile(t, path), written) {
				t.Fatal("Close wrote the checkpoint again with nothing appended")
			}

			s = dtOpen(t, dir, opts...)
			defer dtClose(t, s)
			last := s.LastSequence()
			if cs := s.Stats().ColdStart; cs.Path != "checkpoint" || cs.CheckpointWritten {
				t.Fatalf("reopen: %+v", cs)
			}
			for i, want := range keyed {
				if got := dtMixedRequest(t, s, fmt.Sprintf("r%d", i), i, 0); !slices.Equal(got, want) {
					t.Fatalf("retry of request %d: %v, want %v", i, got, want)
				}
			}
			dtAppend(t, s, "acct:1", dtEvents("after", 2))
			dtAppend(t, s, "new", dtEvents("new", 1))
			if _, err := s.Append(t.Context(), dtCoord("acct:6"), dtEvents("deleted", 1)); err == nil {
				t.Fatal("an append to the deleted stream succeeded")
			}
			if got := visible(t, s); len(got) != len(orig)+3 || s.LastSequence() != last+3 {
				t.Fatalf("%d events after 3 appends to %d", len(got), len(orig))
			}
		})
	}
}

// visible returns s's events as ReadAll yields them (a deleted stream's are
// not), after checking every stream's chain and that Get finds each.
func visible(t *testing.T, s *eventstore.Store) []batpak.Record {
	t.Helper()
	recs := dtReadAll(t, s)
	seen := make(map[batpak.Coordinate]bool)
	for _, r := range recs {
		if g, err := s.Get(t.Context(), r.ID); err != nil || g.Sequence != r.Sequence || g.Hash != r.Hash {
			t.Fatalf("Get(%s) of sequence %d: %v", r.ID, r.Sequence, err)
		}
		if !seen[r.Coordinate] {
			seen[r.Coordinate] = true
			if err := s.VerifyChain(t.Context(), r.Coordinate); err != nil {
				t.Fatalf("VerifyChain(%s): %v", r.Coordinate, err)
			}
		}
	}
	return recs
}

// A rebuild whose checkpoint cannot be written (a full disk) still opens,
// with the rebuilt index, and leaves no temporary file.
func TestCheckpointAfterRebuildDiskFull(t *testing.T) {
	dir, want := rebuildFixture(t, 100)
	fsys := &dtFS{}
	fsys.SetFailWrite(func(name string, _ int64, _ []byte, _ int) (int, error) {
		if filepath.Base(name) == eventstore.CheckpointFileName+".tmp" {
			return 0, syscall.ENOSPC
		}
		return 0, nil
	})
	s := dtOpen(t, dir, slices.Concat(rebuildOpts, []eventstore.Option{eventstore.WithFS(fsys)})...)
	if cs := s.Stats().ColdStart; cs.Path != "footer" || cs.CheckpointWritten {
		t.Fatalf("cold start %+v, want a rebuild from footers and no checkpoint", cs)
	}
	dtSameEvents(t, dtCheck(t, s), want)
	for _, name := range []string{eventstore.CheckpointFileName, eventstore.CheckpointFileName + ".tmp"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s after a failed write: %v", name, err)
		}
	}
	dtAppend(t, s, "acct:1", dtEvents("after", 1))
	if err := s.Close(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Close on a full disk: %v", err)
	}
}

// Damage the rebuild did not read (a byte of the last frame of a sealed
// last segment, which its footer covers) fails the new checkpoint's check
// of its last frame: the open goes on with an index rebuilt once more, and
// the read of that event reports the damage.
func TestCheckpointAfterRebuildNotLoaded(t *testing.T) {
	dir, want := rebuildFixture(t, 100)
	segs := dtSegments(t, dir)
	// Without the active segment, the sealed one before it is the last.
	if err := os.Remove(dtSegPath(dir, segs[len(segs)-1])); err != nil {
		t.Fatal(err)
	}
	id := segs[len(segs)-2]
	frames, _, sealed := dtScan(t, dtSegPath(dir, id), id)
	for len(frames) > 0 && frames[len(frames)-1].Rec.Kind == segment.KindBatchCommit {
		frames = frames[:len(frames)-1] // the last event, not its batch's marker
	}
	f := frames[len(frames)-1]
	if !sealed {
		t.Fatalf("segment %d is not sealed", id)
	}
	dtFlip(t, dtSegPath(dir, id), f.End()-3, 0x40)
	s := dtOpen(t, dir, rebuildOpts...)
	defer dtClose(t, s)
	cs := s.Stats().ColdStart
	if cs.Path != "footer" || cs.CheckpointWritten || cs.CheckpointIgnored == "" {
		t.Fatalf("cold start %+v, want a rebuild from footers and the new checkpoint not used", cs)
	}
	if s.LastSequence() != f.Rec.Seq || f.Rec.Seq >= uint64(len(want)) {
		t.Fatalf("%d events after the rebuild, want %d (of %d)", s.LastSequence(), f.Rec.Seq, len(want))
	}
	if _, err := s.GetSequence(t.Context(), f.Rec.Seq); !errors.Is(err, batpak.ErrCorrupt) {
		t.Fatalf("read of the damaged event %d: %v, want ErrCorrupt", f.Rec.Seq, err)
	}
	if _, err := s.GetSequence(t.Context(), 1); err != nil {
		t.Fatalf("read of event 1: %v", err)
	}
}

// The checkpoint an open writes after a rebuild says the active segment's
// frames are durable, so the open syncs them first: appends made with
// SyncNone and left in the page cache by a process crash are rebuilt and
// checkpointed by the next open, and a power loss after it keeps every
// event that checkpoint covers.
func TestCheckpointAfterRebuildPowerLoss(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	fsys := faultfs.New(nil)
	opts := slices.Concat(rebuildOpts, []eventstore.Option{eventstore.WithFS(fsys)})
	s := dtOpen(t, dir, slices.Concat(opts, []eventstore.Option{
		eventstore.WithSyncMode(eventstore.SyncNone), eventstore.WithCheckpointEvery(0)})...)
	for i := range 100 {
		dtMixedRequest(t, s, fmt.Sprintf("r%d", i), i, i%3)
	}
	fsys.Crash() // the process: the page cache keeps what it wrote
	_ = s.Close()
	fsys.Restart()

	s = dtOpen(t, dir, opts...)
	if cs := s.Stats().ColdStart; !cs.CheckpointWritten || cs.EventsScanned == 0 {
		t.Fatalf("cold start %+v, want a rebuild that scanned the active segment and a checkpoint", cs)
	}
	want := dtCheck(t, s)
	if err := fsys.PowerLoss(); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	fsys.Restart()

	s = dtOpen(t, dir, opts...)
	defer dtClose(t, s)
	if cs := s.Stats().ColdStart; cs.Path != "checkpoint" || cs.EventsFromCheckpoint != uint64(len(want)) {
		t.Fatalf("open after the power loss: %+v, want every event from the checkpoint", cs)
	}
	dtSameEvents(t, dtCheck(t, s), want)
}

const rebuildHelperEnv = "BATPAK_REBUILD_HELPER_DIR"

// A process killed right after an open that rebuilt its index leaves the
// checkpoint that open wrote: the next open loads it and rebuilds nothing.
func TestCheckpointAfterRebuildKilled(t *testing.T) {
	dir, want := rebuildFixture(t, 150)
	var opened string
	run := runAndKill(t, "TestCheckpointAfterRebuildHelper", []string{rebuildHelperEnv + "=" + dir}, 0, func(line string) {
		if strings.HasPrefix(line, "READY ") {
			opened = line
		}
	})
	if !run.ready || opened != fmt.Sprintf("READY footer true %d", len(want)) {
		t.Fatalf("helper: %q (stderr %s, %v)", opened, run.stderr, run.waitErr)
	}
	s := dtOpen(t, dir, rebuildOpts...)
	defer dtClose(t, s)
	if cs := s.Stats().ColdStart; cs.Path != "checkpoint" || cs.EventsFromCheckpoint != uint64(len(want)) || cs.EventsFromFooters+cs.EventsScanned != 0 {
		t.Fatalf("open after the kill: %+v, want every event from the checkpoint", cs)
	}
	dtSameEvents(t, dtCheck(t, s), want)
}

// TestCheckpointAfterRebuildHelper is the helper process of
// TestCheckpointAfterRebuildKilled: it opens the store, says how, and
// waits to be killed.
func TestCheckpointAfterRebuildHelper(t *testing.T) {
	dir := os.Getenv(rebuildHelperEnv)
	if dir == "" {
		t.Skip("helper process of TestCheckpointAfterRebuildKilled")
	}
	emit := helperStart()
	s, err := eventstore.Open(dir, rebuildOpts...)
	if err != nil {
		emit("ERR open: " + err.Error())
		os.Exit(2)
	}
	cs := s.Stats().ColdStart
	emit(fmt.Sprintf("READY %s %t %d", cs.Path, cs.CheckpointWritten, s.LastSequence()))
	select {} // killed
}

// rebuildOpts open the stores of these tests: small segments, and a
// checkpoint after a rebuild of 50 events or more (a later option
// overrides it).
var rebuildOpts = []eventstore.Option{eventstore.WithSegmentMaxBytes(16 << 10), eventstore.WithCheckpointEvery(50)}

// rebuildFixture makes a store of n mixed requests without a checkpoint,
// and returns its directory and events.
func rebuildFixture(t *testing.T, n int) (string, []batpak.Record) {
	t.Helper()
	dir := t.TempDir()
	s := dtOpen(t, dir, rebuildOpts...)
	for i := range n {
		dtMixedRequest(t, s, fmt.Sprintf("r%d", i), i, i%3)
	}
	want := dtCheck(t, s)
	dtClose(t, s)
	if err := os.Remove(filepath.Join(dir, eventstore.CheckpointFileName)); err != nil {
		t.Fatal(err)
	}
	return dir, want
}
