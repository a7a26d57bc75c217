package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
)

// raEvents is the size of the stores these tests replay: enough for the
// read-ahead (Replay scans short ranges inline) over many 32 KiB segments.
const raEvents = 3000

var raKind2 = kind.Custom(1, 8)

// raStore opens a store in dir with small segments and fills it with
// raEvents events over five streams, two kinds; stream ra:3 is deleted.
func raStore(t *testing.T, dir string) *eventstore.Store {
	t.Helper()
	s := dtOpen(t, dir, eventstore.WithSyncMode(eventstore.SyncNone), eventstore.WithSegmentMaxBytes(32<<10))
	items := make([]batpak.BatchItem, 0, 100)
	for i := range raEvents {
		ev := dtEvent("ra", i, raEvents)
		if i%3 == 0 {
			ev.Kind = raKind2
		}
		items = append(items, batpak.BatchItem{Coordinate: dtCoord(fmt.Sprintf("ra:%d", i%5)), Event: ev})
		if len(items) == cap(items) {
			if _, err := s.AppendBatch(context.Background(), items); err != nil {
				t.Fatal(err)
			}
			items = items[:0]
		}
	}
	if err := s.DeleteStream(context.Background(), dtCoord("ra:3")); err != nil {
		t.Fatal(err)
	}
	if n := len(dtSegments(t, dir)); n < 10 {
		t.Fatalf("%d segments, want many", n)
	}
	return s
}

// raItem is one element of a replay: a sequence or an error.
type raItem struct {
	seq uint64
	err error
}

// collect reads seq into items, calling each (if set) after every record;
// each returns false to break.
func collect(seq func(func(batpak.Record, error) bool), each func(n int) bool) []raItem {
	var out []raItem
	for rec, err := range seq {
		out = append(out, raItem{rec.Sequence, err})
		if err == nil && rec.Payload == nil {
			out = append(out, raItem{err: errors.New("record without payload")})
		}
		if each != nil && !each(len(out)) {
			break
		}
	}
	return out
}

// withProcs runs f with GOMAXPROCS set to procs.
func withProcs(procs int, f func()) {
	old := runtime.GOMAXPROCS(procs)
	defer runtime.GOMAXPROCS(old)
	f()
}

// settled waits until no more goroutines run than base and no more segment
// files are open than fds, and fails t if that does not happen.
func settled(t *testing.T, dir string, base, fds int) {
	t.Helper()
	deadline := time.Now().Add(dtHangTimeout(t))
	for runtime.NumGoroutine() > base || openSegments(t, dir) > fds {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines (%d before), %d segment files open (%d before)", runtime.NumGoroutine(), base, openSegments(t, dir), fds)
		}
		runtime.Gosched()
	}
}

// openSegments counts the descriptors of this process on segment files in
// dir.
func openSegments(t *testing.T, dir string) int {
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	n := 0
	for _, de := range des {
		if p, err := os.Readlink(filepath.Join("/proc/self/fd", de.Name())); err == nil && strings.HasPrefix(p, dir) && strings.HasSuffix(p, ".seg") {
			n++
		}
	}
	return n
}

// want returns what Replay(region, from) must yield, read by index with
// Query.
func want(t *testing.T, s *eventstore.Store, region batpak.Region, from uint64) []raItem {
	t.Helper()
	region.FromSequence = max(region.FromSequence, from)
	return collect(s.Query(context.Background(), region), nil)
}

// TestReplayReadAheadMatchesQuery replays regions and starting points on
// two cores (read ahead) and on one (inline) and compares with Query.
func TestReplayReadAheadMatchesQuery(t *testing.T) {
	dir := t.TempDir()
	s := raStore(t, dir)
	defer dtClose(t, s)
	if p := dtPos(t, s, 1234); p.Segment == dtPos(t, s, 1233).Segment && p.Segment != dtPos(t, s, 1235).Segment {
		t.Fatal("event 1234 ends its segment")
	}
	for _, tc := range []struct {
		name   string
		region batpak.Region
		from   uint64
	}{
		{"everything", batpak.Region{}, 0},
		{"from in the middle of a segment", batpak.Region{}, 1234},
		{"region from and to", batpak.Region{FromSequence: 777, ToSequence: 2555}, 0},
		{"a short range, inline", batpak.Region{FromSequence: 1500, ToSequence: 1600}, 0},
		{"one entity", batpak.Region{Entity: "ra:1"}, 0},
		{"the deleted stream", batpak.Region{Entity: "ra:3"}, 0},
		{"prefix and kind from the middle", batpak.Region{EntityPrefix: "ra:", Kinds: []kind.Kind{raKind2}}, 1001},
		{"nothing matches", batpak.Region{Entity: "none"}, 0},
		{"from past the end", batpak.Region{}, raEvents + 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := want(t, s, tc.region, tc.from)
			for _, procs := range []int{2, 1} {
				withProcs(procs, func() {
					if got := collect(s.Replay(context.Background(), tc.region, tc.from), nil); !slices.Equal(got, w) {
						t.Fatalf("GOMAXPROCS %d: replay of %d items, want %d", procs, len(got), len(w))
					}
				})
			}
		})
	}
}

// TestReplayEarlyBreak breaks out of a replay at points around the batch
// sizes: the records before are right, and every goroutine and file the
// replay started is gone once the loop has ended.
func TestReplayEarlyBreak(t *testing.T) {
	dir := t.TempDir()
	s := raStore(t, dir)
	defer dtClose(t, s)
	all := want(t, s, batpak.Region{}, 0)
	base, fds := runtime.NumGoroutine(), openSegments(t, dir)
	for _, k := range []int{1, 2, 15, 16, 17, 48, 49, 300, 1000, len(all) - 1, len(all)} {
		for _, procs := range []int{2, 1} {
			withProcs(procs, func() {
				got := collect(s.Replay(context.Background(), batpak.Region{}, 0), func(n int) bool { return n < k })
				if !slices.Equal(got, all[:k]) {
					t.Fatalf("GOMAXPROCS %d, break after %d: got %d items", procs, k, len(got))
				}
			})
			settled(t, dir, base, fds)
		}
	}
}

// TestReplayConsumerPanics checks that a panic in the loop body stops the
// read-ahead too.
func TestReplayConsumerPanics(t *testing.T) {
	dir := t.TempDir()
	s := raStore(t, dir)
	defer dtClose(t, s)
	base, fds := runtime.NumGoroutine(), openSegments(t, dir)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		for rec := range s.Replay(context.Background(), batpak.Region{}, 0) {
			if rec.Sequence == 500 {
				panic("consumer")
			}
		}
	}()
	settled(t, dir, base, fds)
}

// TestReplayCorruptFrame damages a frame in a sealed segment: a replay
// yields the records before it, then the corruption, then nothing; alike
// read ahead and inline, from the start and from inside the damaged
// segment.
func TestReplayCorruptFrame(t *testing.T) {
	dir := t.TempDir()
	s := raStore(t, dir)
	defer dtClose(t, s)
	const bad = 1700
	pos := dtPos(t, s, bad)
	if last := dtSegments(t, dir); pos.Segment == last[len(last)-1] {
		t.Fatalf("event %d is in the active segment", bad)
	}
	before := want(t, s, batpak.Region{}, 0)
	path := dtSegPath(dir, pos.Segment)
	off := int64(pos.Offset + pos.Length - 5)
	b := make([]byte, 1)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.ReadAt(b, off)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	dtPatch(t, path, off, []byte{b[0] ^ 0xff})
	for _, from := range []uint64{0, 1000, bad - 3} {
		var prefix []raItem
		for _, it := range before {
			if it.seq >= max(from, 1) && it.seq < bad {
				prefix = append(prefix, it)
			}
		}
		for _, procs := range []int{2, 1} {
			withProcs(procs, func() {
				got := collect(s.Replay(context.Background(), batpak.Region{}, from), nil)
				n := len(got) - 1
				if n < 0 || !slices.Equal(got[:n], prefix) || !errors.Is(got[n].err, batpak.ErrCorrupt) {
					t.Fatalf("GOMAXPROCS %d, from %d: %d items, the last %+v; want %d records, then the corruption", procs, from, len(got), got[max(n, 0)], len(prefix))
				}
			})
		}
	}
}

// TestReplayCancelled cancels the context during a replay: the records
// before, then the context's error, then nothing.
func TestReplayCancelled(t *testing.T) {
	dir := t.TempDir()
	s := raStore(t, dir)
	defer dtClose(t, s)
	all := want(t, s, batpak.Region{}, 0)
	base, fds := runtime.NumGoroutine(), openSegments(t, dir)
	for _, k := range []int{1, 20, 700, 2000} {
		for _, procs := range []int{2, 1} {
			withProcs(procs, func() {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				got := collect(s.Replay(ctx, batpak.Region{}, 0), func(n int) bool {
					if n == k {
						cancel()
					}
					return true
				})
				if len(got) != k+1 || !slices.Equal(got[:k], all[:k]) || !errors.Is(got[k].err, context.Canceled) {
					t.Fatalf("GOMAXPROCS %d, cancelled after %d: %d items", procs, k, len(got))
				}
			})
			settled(t, dir, base, fds)
		}
	}
}

// TestReplayReadOnly replays a read-only store read ahead and inline, and
// breaks early.
func TestReplayReadOnly(t *testing.T) {
	dir := t.TempDir()
	s := raStore(t, dir)
	all := want(t, s, batpak.Region{}, 0)
	part := want(t, s, batpak.Region{EntityPrefix: "ra:", ToSequence: 2222}, 1111)
	dtClose(t, s)
	ro, err := eventstore.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	base, fds := runtime.NumGoroutine(), openSegments(t, dir)
	for _, procs := range []int{2, 1} {
		withProcs(procs, func() {
			if got := collect(ro.Replay(context.Background(), batpak.Region{}, 0), nil); !slices.Equal(got, all) {
				t.Fatalf("GOMAXPROCS %d: %d items, want %d", procs, len(got), len(all))
			}
			if got := collect(ro.Replay(context.Background(), batpak.Region{EntityPrefix: "ra:", ToSequence: 2222}, 1111), nil); !slices.Equal(got, part) {
				t.Fatalf("GOMAXPROCS %d, part: %d items, want %d", procs, len(got), len(part))
			}
			if got := collect(ro.Replay(context.Background(), batpak.Region{}, 0), func(n int) bool { return n < 100 }); !slices.Equal(got, all[:100]) {
				t.Fatalf("GOMAXPROCS %d, break: %d items", procs, len(got))
			}
		})
		settled(t, dir, base, fds)
	}
}

// TestReplayDuringCompactionAndAppends replays over many segments while
// compaction rewrites them and a writer appends (run it with -race): every
// replay is in order, shows no event of the stream deleted before it
// started, and holds at least the events there were then.
func TestReplayDuringCompactionAndAppends(t *testing.T) {
	dir := t.TempDir()
	s := raStore(t, dir)
	defer dtClose(t, s)
	ctx := context.Background()
	minimum := len(want(t, s, batpak.Region{}, 0))
	stop := make(chan struct{})
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Append(ctx, dtCoord("ra:0"), []batpak.Event{dtEvent("more", i, 0)}); err != nil {
				errs <- err
				return
			}
		}
	})
	for r := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var last uint64
				n := 0
				for rec, err := range s.Replay(ctx, batpak.Region{}, 0) {
					if err != nil {
						errs <- err
						return
					}
					if rec.Sequence <= last || rec.Coordinate.Entity == "ra:3" {
						errs <- fmt.Errorf("replayer %d: event %d after %d, stream %s", r, rec.Sequence, last, rec.Coordinate.Entity)
						return
					}
					last = rec.Sequence
					n++
					if i%2 == 1 && n == 500 {
						break
					}
				}
				if i%2 == 0 && n < minimum {
					errs <- fmt.Errorf("replayer %d: %d events, want at least %d", r, n, minimum)
					return
				}
			}
		})
	}
	for range 3 {
		if _, err := s.Compact(ctx); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
