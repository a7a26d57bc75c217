package eventstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/segment"
)

func isSegment(name string) bool { _, ok := segment.ParseFileName(name); return ok }

// faultAcked appends a mix of requests and returns the store's events.
func faultAcked(t *testing.T, s *eventstore.Store, prefix string, n int) []batpak.Record {
	t.Helper()
	for i := range n {
		tag := fmt.Sprintf("%s%d", prefix, i)
		switch i % 3 {
		case 0:
			dtAppend(t, s, "a", dtEvents(tag, 1))
		case 1:
			dtAppend(t, s, "b", dtEvents(tag, 2), batpak.WithIdempotencyKey(tag))
		case 2:
			dtBatch(t, s, tag, []string{"a", "c"})
		}
	}
	return dtCheck(t, s)
}

// reopenHasExactly closes nothing: it opens dir with the real file system
// and checks that it holds exactly want, that no doomed tag is there, and
// that appends continue at the next sequence.
func reopenHasExactly(t *testing.T, dir string, want []batpak.Record, doomed func(tag string) bool) {
	t.Helper()
	s := dtOpen(t, dir)
	got := dtCheck(t, s)
	dtSameEvents(t, got, want)
	for tag := range dtTags(got) {
		if doomed(tag) {
			t.Fatalf("event of failed request %s is present after reopen", tag)
		}
	}
	rs := dtAppend(t, s, "a", dtEvents("after-reopen", 1))
	if rs[0].Sequence != uint64(len(want)+1) {
		t.Fatalf("append after reopen got sequence %d, want %d", rs[0].Sequence, len(want)+1)
	}
	dtClose(t, s)
	s = dtOpen(t, dir)
	defer s.Close()
	if got := dtCheck(t, s); len(got) != len(want)+1 {
		t.Fatalf("second reopen: %d events, want %d", len(got), len(want)+1)
	}
}

// TestFaultSyncFailure fails the data sync of a group commit. The waiting
// appends fail with ErrStoreFailed, the store turns read-only (later
// appends fail at once without a write), reads keep working, and a reopen
// on the real file system has everything acknowledged before and nothing
// of the failed group. sticky=true makes every later sync fail too.
func TestFaultSyncFailure(t *testing.T) {
	for _, sticky := range []bool{false, true} {
		t.Run(fmt.Sprintf("sticky=%v", sticky), func(t *testing.T) {
			fsys := &dtFS{}
			dir := filepath.Join(t.TempDir(), "s")
			s := dtOpen(t, dir, eventstore.WithFS(fsys), eventstore.WithSegmentMaxBytes(64<<10))
			defer s.Close()
			acked := faultAcked(t, s, "ok", 12)

			var fired atomic.Bool
			fsys.SetFailSync(func(name string, _ int) error {
				if !isSegment(name) {
					return nil
				}
				// sticky: every later sync fails too (the fsyncgate case).
				if fired.CompareAndSwap(false, true) || sticky {
					return syscall.EIO
				}
				return nil
			})
			const doomed = 6
			errs := make([]error, doomed)
			var wg sync.WaitGroup
			for i := range doomed {
				wg.Go(func() {
					tag := fmt.Sprintf("doomed%d", i)
					if i%2 == 0 {
						_, errs[i] = s.Append(context.Background(), dtCoord("a"), dtEvents(tag, 2))
					} else {
						items := []batpak.BatchItem{{Coordinate: dtCoord("b"), Event: dtEvent(tag, 0, 2)}, {Coordinate: dtCoord("z"), Event: dtEvent(tag, 1, 2)}}
						_, errs[i] = s.AppendBatch(context.Background(), items)
					}
				})
			}
			wg.Wait()
			sawEIO := false
			for i, err := range errs {
				if !errors.Is(err, batpak.ErrStoreFailed) {
					t.Fatalf("append %d during the failed sync: %v, want ErrStoreFailed", i, err)
				}
				sawEIO = sawEIO || errors.Is(err, syscall.EIO)
			}
			if !sawEIO {
				t.Errorf("no error carries the sync's EIO: %v", errs)
			}
			if !fired.Load() {
				t.Fatal("the failing sync was never called")
			}
			st := s.Stats()
			if !errors.Is(st.Failed, batpak.ErrStoreFailed) {
				t.Fatalf("Stats().Failed = %v", st.Failed)
			}
			// Later writes fail at once, without touching the files.
			writes := fsys.Writes()
			if _, err := s.Append(context.Background(), dtCoord("a"), dtEvents("later", 1)); !errors.Is(err, batpak.ErrStoreFailed) {
				t.Fatalf("append after the failure: %v", err)
			}
			if _, err := s.AppendBatch(context.Background(), []batpak.BatchItem{{Coordinate: dtCoord("a"), Event: dtEvent("later2", 0, 1)}}); !errors.Is(err, batpak.ErrStoreFailed) {
				t.Fatalf("batch after the failure: %v", err)
			}
			if err := s.Sync(context.Background()); !errors.Is(err, batpak.ErrStoreFailed) {
				t.Fatalf("Sync after the failure: %v", err)
			}
			if w := fsys.Writes(); w != writes {
				t.Fatalf("%d writes after the store failed", w-writes)
			}
			// Reads of what was acknowledged still work.
			dtSameEvents(t, dtCheck(t, s), acked)
			if err := s.Close(); err != nil {
				t.Fatalf("close of a failed store: %v", err)
			}
			reopenHasExactly(t, dir, acked, func(tag string) bool { return strings.HasPrefix(tag, "doomed") || strings.HasPrefix(tag, "later") })
		})
	}
}

// TestFaultWriteENOSPC fails the write of a group commit after half of it
// reached the file, with ENOSPC. The group's appends fail with an error
// wrapping ENOSPC, the partial bytes are cut, and the store keeps working.
func TestFaultWriteENOSPC(t *testing.T) {
	fsys := &dtFS{}
	dir := filepath.Join(t.TempDir(), "s")
	s := dtOpen(t, dir, eventstore.WithFS(fsys), eventstore.WithSegmentMaxBytes(64<<10))
	defer s.Close()
	faultAcked(t, s, "ok", 9)
	last := dtReadAll(t, s)
	seg := dtPos(t, s, last[len(last)-1].Sequence).Segment
	_, end, _ := dtScan(t, dtSegPath(dir, seg), seg) // where the next frame goes

	var fired atomic.Bool
	fsys.SetFailWrite(func(name string, off int64, b []byte, _ int) (int, error) {
		if isSegment(name) && off >= segment.HeaderSize && fired.CompareAndSwap(false, true) {
			return len(b) / 2, syscall.ENOSPC
		}
		return 0, nil
	})
	_, err := s.Append(context.Background(), dtCoord("a"), dtEvents("nospace", 3))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append during ENOSPC: %v, want an error wrapping ENOSPC", err)
	}
	if errors.Is(err, batpak.ErrStoreFailed) || s.Stats().Failed != nil {
		t.Fatalf("a failed write (not sync) failed the store: %v / %v", err, s.Stats().Failed)
	}
	// The half-written frames were cut off again.
	data := dtReadFile(t, dtSegPath(dir, seg))
	if int64(len(data)) < end || !allZero(data[end:min(int64(len(data)), end+512)]) {
		t.Fatalf("bytes of the failed write remain after offset %d", end)
	}
	// The store keeps working, at the next sequence.
	rs := dtAppend(t, s, "a", dtEvents("after", 1))
	if rs[0].Sequence != uint64(len(last)+1) {
		t.Fatalf("append after ENOSPC got sequence %d, want %d", rs[0].Sequence, len(last)+1)
	}

	// Concurrent appends while one group write fails: each either fails with
	// ENOSPC (and leaves nothing) or succeeds (and stays).
	fired.Store(false)
	const n = 16
	results := make([][]batpak.Receipt, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = s.Append(context.Background(), dtCoord(fmt.Sprintf("c%d", i%3)), dtEvents(fmt.Sprintf("conc%d", i), 1+i%2))
		})
	}
	wg.Wait()
	failed := map[string]bool{}
	for i, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, syscall.ENOSPC):
			failed[fmt.Sprintf("conc%d", i)] = true
		default:
			t.Fatalf("concurrent append %d: %v", i, err)
		}
	}
	if len(failed) == 0 {
		t.Fatal("no concurrent append saw the injected ENOSPC")
	}
	want := dtCheck(t, s)
	tags := dtTags(want)
	for i := range n {
		tag := fmt.Sprintf("conc%d", i)
		if tags[tag] == failed[tag] {
			t.Fatalf("%s: failed %v, present %v", tag, failed[tag], tags[tag])
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of %d concurrent appends failed with ENOSPC", len(failed), n)
	reopenHasExactly(t, dir, want, func(tag string) bool { return tag == "nospace" || failed[tag] })
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// TestFaultRotation fails the writes of a rotation: the footer of the
// segment being sealed, or the header of the next one. The store fails
// (it cannot know what the file holds), and a reopen recovers everything
// acknowledged, with the partial footer or the new file handled.
func TestFaultRotation(t *testing.T) {
	footer := func(name string, off int64, b []byte) bool {
		return len(b) > 12 && bytes.Equal(b[segment.FrameHeaderSize:segment.FrameHeaderSize+4], []byte("BPFT"))
	}
	header := func(name string, off int64, b []byte) bool { return off == 0 && len(b) == segment.HeaderSize }
	cases := []struct {
		name    string
		match   func(name string, off int64, b []byte) bool
		partial func(n int) int
	}{
		{"footer-half", footer, func(n int) int { return n / 2 }},
		{"footer-tiny", footer, func(int) int { return 5 }},
		{"footer-none", footer, func(int) int { return 0 }},
		{"header", header, func(n int) int { return n / 2 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys := &dtFS{}
			dir := filepath.Join(t.TempDir(), "s")
			s := dtOpen(t, dir, eventstore.WithFS(fsys), eventstore.WithSegmentMaxBytes(4<<10), eventstore.WithSyncMode(eventstore.SyncNone))
			defer s.Close()
			acked := faultAcked(t, s, "ok", 3)
			var fired atomic.Bool
			fsys.SetFailWrite(func(name string, off int64, b []byte, _ int) (int, error) {
				if isSegment(name) && c.match(name, off, b) && fired.CompareAndSwap(false, true) {
					return c.partial(len(b)), syscall.ENOSPC
				}
				return 0, nil
			})
			var err error
			for i := 0; err == nil && i < 200; i++ {
				_, err = s.Append(context.Background(), dtCoord("r"), dtEvents(fmt.Sprintf("fill%d", i), 1))
			}
			if !fired.Load() {
				t.Fatal("no rotation happened")
			}
			if !errors.Is(err, batpak.ErrStoreFailed) || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("append that needed the failed rotation: %v", err)
			}
			acked = dtCheck(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			reopenHasExactly(t, dir, acked, func(string) bool { return false })
		})
	}
}

// TestFaultDirectorySync checks that the directory is synced after a
// segment file is created (before frames go into it), after the checkpoint
// is renamed into place, and after a blank segment is removed.
func TestFaultDirectorySync(t *testing.T) {
	fsys := &dtFS{logOps: true}
	dir := filepath.Join(t.TempDir(), "s")
	s := dtOpen(t, dir, eventstore.WithFS(fsys), eventstore.WithSegmentMaxBytes(4<<10))
	for i := 0; s.Stats().Segments < 3; i++ {
		dtAppend(t, s, "a", dtEvents(fmt.Sprintf("e%d", i), 1))
	}
	dtClose(t, s)
	ops := fsys.Ops()
	for id := uint32(1); id <= 3; id++ {
		name := segment.FileName(id)
		created := dtOpIndex(ops, 0, dtHasPrefix("create "+name))
		if created < 0 {
			t.Fatalf("segment %s never created: %q", name, ops)
		}
		synced := dtOpIndex(ops, created, dtHasPrefix("syncdir"))
		firstFrame := dtOpIndex(ops, created, func(op string) bool {
			var off, n int64
			_, err := fmt.Sscanf(op, "write "+name+" %d %d", &off, &n)
			return err == nil && off >= segment.HeaderSize
		})
		if synced < 0 || (firstFrame >= 0 && synced > firstFrame) {
			t.Fatalf("directory not synced between creating %s (op %d) and its first frame (op %d): sync at %d", name, created, firstFrame, synced)
		}
	}
	renamed := dtOpIndex(ops, 0, func(op string) bool { return op == "rename checkpoint.tmp checkpoint" })
	if renamed < 0 {
		t.Fatalf("checkpoint never renamed into place: %q", ops)
	}
	if dtOpIndex(ops, renamed, dtHasPrefix("syncdir")) < 0 {
		t.Fatalf("directory not synced after the checkpoint rename: %q", ops[renamed:])
	}
	if dtOpIndex(ops, 0, dtHasPrefix("sync checkpoint.tmp")) > renamed {
		t.Fatal("checkpoint renamed before its data was synced")
	}

	// A blank last segment (created, never given its header) is removed at
	// open, and the removal is made durable.
	blank := dtSegPath(dir, 4)
	if err := os.WriteFile(blank, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	fsys2 := &dtFS{logOps: true}
	s = dtOpen(t, dir, eventstore.WithFS(fsys2), eventstore.WithSegmentMaxBytes(4<<10))
	dtCheck(t, s)
	dtClose(t, s)
	ops = fsys2.Ops()
	removed := dtOpIndex(ops, 0, func(op string) bool { return op == "remove "+segment.FileName(4) })
	if removed < 0 || dtOpIndex(ops, removed, dtHasPrefix("syncdir")) < 0 {
		t.Fatalf("blank segment not removed durably: %q", ops)
	}
}

// TestFaultCrashBeforeSegmentHeader crashes (copies the directory) at the
// moment a rotation has sealed the old segment and created the new file,
// but not yet written its header. The reopened store removes the blank
// file and must reuse its id: skipping it leaves a hole in the segment
// numbers that makes every later open fail.
func TestFaultCrashBeforeSegmentHeader(t *testing.T) {
	fsys := &dtFS{noSync: true}
	dir := filepath.Join(t.TempDir(), "s")
	crash := filepath.Join(t.TempDir(), "crash")
	var copied atomic.Bool
	fsys.SetFailWrite(func(name string, off int64, b []byte, _ int) (int, error) {
		if id, ok := segment.ParseFileName(name); ok && id == 3 && off == 0 && copied.CompareAndSwap(false, true) {
			dtCopyDir(t, dir, crash)
		}
		return 0, nil
	})
	opts := []eventstore.Option{eventstore.WithSegmentMaxBytes(4 << 10)}
	s := dtOpen(t, dir, append(opts, eventstore.WithFS(fsys))...)
	for i := 0; !copied.Load(); i++ {
		dtAppend(t, s, "a", dtEvents(fmt.Sprintf("e%d", i), 1))
	}
	dtClose(t, s)
	if data := dtReadFile(t, dtSegPath(crash, 3)); !allZero(data) {
		t.Fatal("segment 3 of the crash copy is not blank")
	}

	s = dtOpen(t, crash, opts...)
	dtCheck(t, s)
	for i := 0; s.Stats().Segments < 4; i++ {
		dtAppend(t, s, "a", dtEvents(fmt.Sprintf("after%d", i), 1))
	}
	want := dtCheck(t, s)
	dtClose(t, s)
	if ids := dtSegments(t, crash); fmt.Sprint(ids) != "[1 2 3 4]" {
		t.Fatalf("segments after recovery and rotation: %v", ids)
	}
	s, err := eventstore.Open(crash, opts...)
	if err != nil {
		t.Fatalf("reopen after the blank segment was replaced: %v", err)
	}
	defer s.Close()
	dtSameEvents(t, dtCheck(t, s), want)
}
