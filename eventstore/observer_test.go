package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
)

// recordingObserver sums what the store reports to it.
type recordingObserver struct {
	mu                              sync.Mutex
	appends, appendEvents, failed   int
	commits, requests, events, byts int
	syncs                           int
	negative                        bool // a negative duration was seen
}

func (o *recordingObserver) ObserveAppend(events int, d time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.appends++
	o.negative = o.negative || d < 0
	if err != nil {
		o.failed++
		return
	}
	o.appendEvents += events
}

func (o *recordingObserver) ObserveCommit(requests, events, bytes int, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.commits++
	o.requests += requests
	o.events += events
	o.byts += bytes
	o.negative = o.negative || d < 0
}

func (o *recordingObserver) ObserveSync(d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.syncs++
	o.negative = o.negative || d < 0
}

// TestObserverSeesTheWritePath checks that an observer hears of every
// append, group commit and sync, and that what it hears adds up to Stats.
func TestObserverSeesTheWritePath(t *testing.T) {
	obs := &recordingObserver{}
	s := dtOpen(t, t.TempDir(), eventstore.WithObserver(obs), eventstore.WithSegmentMaxBytes(16<<10))
	defer s.Close()
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 25 {
				if _, err := s.Append(ctx, dtCoord(fmt.Sprintf("obs:%d", w)), dtEvents(fmt.Sprintf("w%d-%d", w, i), 1+i%3)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	items := []batpak.BatchItem{
		{Coordinate: dtCoord("obs:a"), Event: dtEvent("batch", 0, 2)},
		{Coordinate: dtCoord("obs:b"), Event: dtEvent("batch", 1, 2)},
	}
	if _, err := s.AppendBatch(ctx, items); err != nil {
		t.Fatal(err)
	}
	// A refused append and an idempotent replay are appends too.
	_, err := s.Append(ctx, dtCoord("obs:0"), dtEvents("late", 1), batpak.ExpectVersion(batpak.NoStream))
	if !errors.Is(err, batpak.ErrVersionConflict) {
		t.Fatalf("append expecting no stream: %v", err)
	}
	for range 2 {
		if _, err := s.Append(ctx, dtCoord("obs:k"), dtEvents("keyed", 1), batpak.WithIdempotencyKey("k1")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	st := s.Stats()
	obs.mu.Lock()
	defer obs.mu.Unlock()
	const appends = 8*25 + 1 + 1 + 2 // Append and AppendBatch calls
	if obs.appends != appends || obs.failed != 1 {
		t.Errorf("observed %d appends, %d failed; made %d, 1 refused", obs.appends, obs.failed, appends)
	}
	if want := appends - 2; st.Appends != uint64(want) { // less the refused one and the replay
		t.Errorf("Stats().Appends = %d, want %d", st.Appends, want)
	}
	if obs.appendEvents != int(st.AppendedEvents)+1 { // the replay returned 1 event it did not append
		t.Errorf("observed appends of %d events, the store appended %d (+1 replayed)", obs.appendEvents, st.AppendedEvents)
	}
	if uint64(obs.commits) != st.Groups || uint64(obs.events) != st.AppendedEvents || uint64(obs.byts) != st.BytesWritten {
		t.Errorf("observed %d commits of %d events and %d bytes; Stats: %d groups, %d events, %d bytes",
			obs.commits, obs.events, obs.byts, st.Groups, st.AppendedEvents, st.BytesWritten)
	}
	if obs.requests < appends {
		t.Errorf("observed commits of %d requests, fewer than the %d appends", obs.requests, appends)
	}
	if obs.syncs == 0 || uint64(obs.syncs) > st.Syncs {
		t.Errorf("observed %d syncs, Stats counts %d", obs.syncs, st.Syncs)
	}
	if st.Segments < 2 {
		t.Errorf("%d segments: the test meant to rotate", st.Segments)
	}
	if obs.negative {
		t.Error("a negative duration was observed")
	}
}

// TestCorruptReadsCounted checks that damage met by a read or a replay is
// counted in Stats().CorruptReads.
func TestCorruptReadsCounted(t *testing.T) {
	dir := t.TempDir()
	s := dtOpen(t, dir, eventstore.WithSegmentMaxBytes(8<<10))
	for i := 0; len(dtSegments(t, dir)) < 3; i++ {
		dtAppend(t, s, fmt.Sprintf("c:%d", i%4), dtEvents(fmt.Sprintf("c%d", i), 1))
	}
	dtClose(t, s)
	// Segment 1 is sealed: its footer (and the checkpoint) are trusted at
	// open, so the damage is found on read.
	frames, _, _ := dtScan(t, dtSegPath(dir, 1), 1)
	f := frames[len(frames)/2]
	dtFlip(t, dtSegPath(dir, 1), f.Off+f.Size/2, 0x01)
	s = dtOpen(t, dir)
	defer s.Close()
	if n := s.Stats().CorruptReads; n != 0 {
		t.Fatalf("CorruptReads = %d after open", n)
	}
	ctx := context.Background()
	if _, err := s.Get(ctx, f.Rec.ID); !errors.Is(err, batpak.ErrCorrupt) {
		t.Fatalf("Get of the damaged event: %v", err)
	}
	if n := s.Stats().CorruptReads; n != 1 {
		t.Fatalf("CorruptReads = %d after a damaged Get, want 1", n)
	}
	var err error
	for _, err = range s.Replay(ctx, batpak.Region{}, 1) {
		if err != nil {
			break
		}
	}
	if !errors.Is(err, batpak.ErrCorrupt) {
		t.Fatalf("Replay over the damage: %v", err)
	}
	if n := s.Stats().CorruptReads; n != 2 {
		t.Fatalf("CorruptReads = %d after a damaged replay, want 2", n)
	}
}
