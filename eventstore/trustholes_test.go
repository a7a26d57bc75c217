package eventstore_test

// Direct reproductions of the trust holes of issue 12, each from its
// recipe. TestSim (sim_test.go) finds the same holes from random
// lifetimes; these pin them down.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
	"github.com/batpak-go/batpak/vfs/faultfs"
)

func holeOpts() []eventstore.Option {
	return []eventstore.Option{eventstore.WithSegmentMaxBytes(4 << 10), eventstore.WithPreallocation(false)}
}

// holeSlowFS is the OS file system with the latencies of a disk (on a RAM
// disk they are all but nil): a directory sync and an open of a segment for
// reading take a millisecond, a data sync 300 µs. The window between
// creating a segment and making it the active one, and a compaction's way
// from listing the segments to reading the last, are then as wide as in
// production, and a segment stays active for a few milliseconds.
type holeSlowFS struct{ vfs.OSFS }

func (f holeSlowFS) SyncDir(name string) error {
	time.Sleep(time.Millisecond)
	return f.OSFS.SyncDir(name)
}

func (f holeSlowFS) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	if flag == os.O_RDONLY && strings.HasSuffix(name, ".seg") {
		time.Sleep(time.Millisecond)
	}
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return holeSlowFile{file}, nil
}

// Preallocate is off in holeOpts (the OS file system cannot reserve space
// for a wrapped file).
func (f holeSlowFS) Preallocate(vfs.File, int64) error { return nil }

type holeSlowFile struct{ vfs.File }

func (f holeSlowFile) Sync() error {
	time.Sleep(300 * time.Microsecond)
	return f.File.Sync()
}

// holePad is a payload that fills a 4 KiB segment in about ten events.
func holePad(tag string, i int) batpak.Event {
	return sweepEvent(tag, i, 1, 300)
}

// holeSame fails unless s holds, for every receipt, the event it names.
func holeSame(t *testing.T, s *eventstore.Store, what string, rs []batpak.Receipt) {
	t.Helper()
	for _, r := range rs {
		rec, err := s.Get(context.Background(), r.EventID)
		if err != nil {
			t.Fatalf("%s: Get(sequence %d): %v", what, r.Sequence, err)
		}
		if rec.Sequence != r.Sequence || rec.Version != r.Version || rec.Hash != r.Hash {
			t.Fatalf("%s: Get(sequence %d) = #%d v%d, receipt #%d v%d", what, r.Sequence, rec.Sequence, rec.Version, r.Sequence, r.Version)
		}
	}
}

// Hole 1: a store whose last segment was blank at open (a crash between
// creating a segment and syncing its header) has no active segment until
// the next append; Compact must still never rewrite the segment appends
// go to. Without the fix, compacting while the first append creates that
// segment fails Compact ("event N is not in the index") or loses
// acknowledged events; with a disk's latencies (holeSlowFS) most attempts
// hit the window, on a RAM disk a few in a hundred.
func TestHole1CompactNeverTouchesTheLiveSegment(t *testing.T) {
	const attempts = 12
	for a := range attempts {
		dir := dtFastTempDir(t)
		s := dtOpen(t, dir, holeOpts()...)
		var pre []batpak.Receipt // n1's, which Compact keeps
		for i := 0; len(dtSegments(t, dir)) < 3; i++ {
			rs := dtAppend(t, s, fmt.Sprintf("n%d", i%2), []batpak.Event{holePad("pre", i)})
			if i%2 == 1 {
				pre = append(pre, rs...)
			}
		}
		// The crash between creating segment 3 and syncing its header:
		// Open removes the blank file and has no active segment.
		dtClose(t, s)
		segs := dtSegments(t, dir)
		if err := os.Truncate(dtSegPath(dir, segs[len(segs)-1]), 0); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(dir, eventstore.CheckpointFileName)); err != nil {
			t.Fatal(err)
		}
		s = dtOpen(t, dir, append(holeOpts(), eventstore.WithFS(holeSlowFS{}))...)
		var done atomic.Bool
		var compactErr error
		started := make(chan struct{})
		start := sync.OnceFunc(func() { close(started) })
		var wg sync.WaitGroup
		wg.Go(func() {
			defer start()
			for n := 0; n == 0 || !done.Load(); n++ {
				if _, err := s.Compact(context.Background(), eventstore.RetainIf(func(r *batpak.Record) bool {
					return r.Coordinate.Entity != "n0"
				})); err != nil {
					compactErr = err
					return
				}
				start()
			}
		})
		<-started // the first append creates the active segment while compactions run
		kept := make([][]batpak.Receipt, 2)
		var appenders sync.WaitGroup
		for j := range 2 {
			appenders.Go(func() {
				for i := range 30 {
					rs, err := s.Append(context.Background(), dtCoord(fmt.Sprintf("n%d", j)), []batpak.Event{holePad("n", i)})
					if err != nil {
						t.Errorf("attempt %d: append to n%d: %v", a, j, err)
						return
					}
					kept[j] = append(kept[j], rs...)
				}
			})
		}
		appenders.Wait()
		done.Store(true)
		wg.Wait()
		if compactErr != nil {
			t.Fatalf("attempt %d: Compact racing appends on a store opened without an active segment: %v", a, compactErr)
		}
		dtClose(t, s)
		s = dtOpen(t, dir, holeOpts()...)
		holeSame(t, s, fmt.Sprintf("attempt %d, n1 after reopen", a), append(pre[:len(pre):len(pre)], kept[1]...))
		dtClose(t, s)
	}
}

// Hole 2: a damaged frame that a valid checkpoint covers is corruption,
// not a torn tail: Open must not quietly cut the last event.
func TestHole2CheckpointCoveredDamageIsNotATornTail(t *testing.T) {
	dir, last := holeCovered(t)
	dtFlip(t, dtSegPath(dir, 1), last.Off+last.Size/2, 0x40)
	holeRefused(t, dir)
}

// holeCovered builds a closed store of 14 events in one segment, all
// covered by its checkpoint, and returns it with the frame of the last.
func holeCovered(t *testing.T) (dir string, last dtFrame) {
	t.Helper()
	dir = dtFastTempDir(t)
	s := dtOpen(t, dir, holeOpts()...)
	for i := range 14 {
		dtAppend(t, s, "a", dtEvents(fmt.Sprint(i), 1))
	}
	dtClose(t, s)
	if n := len(dtSegments(t, dir)); n != 1 {
		t.Fatalf("%d segments, want 1", n)
	}
	frames, _, _ := dtScan(t, dtSegPath(dir, 1), 1)
	return dir, frames[len(frames)-1]
}

// holeRefused checks that the store of holeCovered, its last event
// damaged, does not open: the checkpoint covers that event.
func holeRefused(t *testing.T, dir string) {
	t.Helper()
	s, err := eventstore.Open(dir, holeOpts()...)
	if err == nil {
		n := s.LastSequence()
		_ = s.Close()
		t.Fatalf("Open succeeded with %d of 14 events after damage to event 14, which the checkpoint covers", n)
	}
	dtCorrupt(t, err, 1, -1)
}

// Hole 3: after an interrupted seal (the footer half written, no next
// segment) the store must open, close and open again with every event.
func TestHole3InterruptedSealOpensEveryTime(t *testing.T) {
	dir := dtFastTempDir(t)
	s := dtOpen(t, dir, holeOpts()...)
	var rs []batpak.Receipt
	for i := 0; len(dtSegments(t, dir)) < 2; i++ {
		rs = append(rs, dtAppend(t, s, "a", []batpak.Event{holePad("a", 2*i), holePad("a", 2*i+1)})...)
	}
	var inSeg1 []batpak.Receipt
	for _, r := range rs {
		if dtPos(t, s, r.Sequence).Segment == 1 {
			inSeg1 = append(inSeg1, r)
		}
	}
	dtClose(t, s)
	_, footer, sealed := dtScan(t, dtSegPath(dir, 1), 1)
	if !sealed {
		t.Fatal("segment 1 is not sealed")
	}
	if err := os.Remove(dtSegPath(dir, 2)); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(dtSegPath(dir, 1), footer+20); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, eventstore.CheckpointFileName)); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		s, err := eventstore.Open(dir, holeOpts()...)
		if err != nil {
			t.Fatalf("open %d after an interrupted seal: %v", round+1, err)
		}
		holeSame(t, s, fmt.Sprintf("open %d", round+1), inSeg1)
		if round == 1 { // the second open appends, the others only read
			inSeg1 = append(inSeg1, dtAppend(t, s, "b", []batpak.Event{holePad("b", 0), holePad("b", 1)})...)
		}
		dtCheck(t, s)
		dtClose(t, s)
	}
	if vr, err := eventstore.Verify(dir); err != nil || !vr.OK() {
		t.Fatalf("Verify: %v %+v", err, vr)
	}
}

// Hole 4: a read-only store sees the events of its open; a writer that
// deletes a stream and compacts must not make it report corruption for a
// stream it kept.
func TestHole4ReadOnlyStoreSurvivesCompaction(t *testing.T) {
	dir := dtFastTempDir(t)
	s := dtOpen(t, dir, holeOpts()...)
	kept := map[string][]batpak.Receipt{}
	for i := range 200 {
		e := fmt.Sprintf("acct:%d", i%4)
		kept[e] = append(kept[e], dtAppend(t, s, e, []batpak.Event{holePad("r", i)})...)
	}
	ro, err := eventstore.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ro.Close() }()
	if err := s.DeleteStream(context.Background(), dtCoord("acct:0")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{"acct:1", "acct:2", "acct:3"} {
		n := 0
		for rec, err := range ro.ReadStream(context.Background(), dtCoord(e), 0) {
			if err != nil {
				t.Fatalf("read-only ReadStream(%s) after the writer compacted, at version %d: %v", e, n+1, err)
			}
			if r := kept[e][n]; rec.Sequence != r.Sequence || rec.Hash != r.Hash {
				t.Fatalf("read-only ReadStream(%s) version %d is #%d, receipt #%d", e, n+1, rec.Sequence, r.Sequence)
			}
			n++
		}
		if n != len(kept[e]) {
			t.Fatalf("read-only ReadStream(%s) yields %d of %d events", e, n, len(kept[e]))
		}
		holeSame(t, ro, "read-only Get "+e, kept[e])
	}
	dtClose(t, s)
}

// Hole 5 (found by TestSim's long mode): a crash in the middle of a
// rotation leaves the new segment with its header but without a durable
// directory entry. The next Open adopted it as the active segment without
// syncing the directory, acknowledged appends into it, and a power loss
// then removed the file with them.
func TestHole5OpenMakesTheActiveSegmentDurable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	fsys := faultfs.New(nil)
	opts := []eventstore.Option{eventstore.WithFS(fsys), eventstore.WithSegmentMaxBytes(4096)}
	s := dtOpen(t, dir, opts...)
	fsys.Inject(faultfs.Fault{Op: faultfs.OpSync, Crash: true,
		Match: func(c faultfs.Call) bool { return strings.HasSuffix(c.Path, segment.FileName(2)) }})
	for i := 0; ; i++ {
		if _, err := s.Append(t.Context(), dtCoord("a"), dtEvents(fmt.Sprint(i), 1)); err != nil {
			break // the crash, while rotation syncs segment 2
		}
		if i > 1000 {
			t.Fatal("no rotation to segment 2")
		}
	}
	_ = s.Close()
	fsys.Restart()

	s = dtOpen(t, dir, opts...)
	rs := dtAppend(t, s, "a", dtEvents("after-restart", 1))
	want := dtCheck(t, s)
	if err := fsys.PowerLoss(); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	fsys.Restart()

	s = dtOpen(t, dir, opts...)
	defer dtClose(t, s)
	if _, err := s.Get(context.Background(), rs[0].EventID); err != nil {
		t.Fatalf("event acknowledged after the reopen is lost to a power cut: %v", err)
	}
	dtSameEvents(t, dtCheck(t, s), want)
}

// Compaction of a sealed segment cut inside a frame (damage made while the
// store runs) fails with ErrCorrupt instead of rewriting the segment
// without the damaged events, which would make the loss permanent.
func TestCompactRefusesACutSealedSegment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	s := dtOpen(t, dir, eventstore.WithSegmentMaxBytes(4096))
	defer func() { _ = s.Close() }()
	for len(dtSegments(t, dir)) < 3 {
		dtAppend(t, s, "a", dtEvents("x", 1))
		dtAppend(t, s, "drop", dtEvents("y", 1))
	}
	frames, _, _ := dtScan(t, dtSegPath(dir, 1), 1)
	last := frames[len(frames)-1]
	if err := os.Truncate(dtSegPath(dir, 1), last.Off+last.Size/2); err != nil {
		t.Fatal(err)
	}
	_, err := s.Compact(t.Context(), eventstore.RetainIf(func(r *batpak.Record) bool { return r.Coordinate.Entity != "drop" }))
	if !errors.Is(err, batpak.ErrCorrupt) {
		t.Fatalf("compaction of a cut sealed segment: %v, want ErrCorrupt", err)
	}
}

// replacingFS renames a fresh copy of segment 1 over it when the checkpoint
// is first opened: what a writer's compaction does to a read-only open
// between its listing of the segments and its index being built.
type replacingFS struct {
	vfs.OSFS
	dir   string
	fired atomic.Bool
}

func (f *replacingFS) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	if filepath.Base(name) == eventstore.CheckpointFileName && f.fired.CompareAndSwap(false, true) {
		seg := dtSegPath(f.dir, 1)
		data, err := os.ReadFile(seg)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(seg+".new", data, 0o600); err != nil {
			return nil, err
		}
		if err := os.Rename(seg+".new", seg); err != nil {
			return nil, err
		}
	}
	return f.OSFS.OpenFile(name, flag, perm)
}

// A read-only open that finds a segment file replaced while it builds its
// index starts over instead of serving positions from a mix of files.
func TestReadOnlyOpenStartsOverWhenASegmentIsReplaced(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	s := dtOpen(t, dir, eventstore.WithSegmentMaxBytes(4096))
	for i := 0; len(dtSegments(t, dir)) < 3; i++ {
		dtAppend(t, s, "a", dtEvents(fmt.Sprint(i), 1))
	}
	want := dtCheck(t, s)
	dtClose(t, s)
	fsys := &replacingFS{dir: dir}
	ro, err := eventstore.OpenReadOnly(dir, eventstore.WithFS(fsys))
	if err != nil {
		t.Fatalf("read-only open with segment 1 replaced during it: %v", err)
	}
	defer ro.Close()
	if !fsys.fired.Load() {
		t.Fatal("segment 1 was never replaced")
	}
	dtSameEvents(t, dtReadAll(t, ro), want)
}
