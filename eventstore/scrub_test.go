package eventstore_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/segment"
)

// scBuild writes a store of several sealed segments (single events,
// batches, a deleted stream, a compaction's hole records) and leaves it
// open.
func scBuild(t *testing.T, opts ...eventstore.Option) (*eventstore.Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "s")
	s := dtOpen(t, dir, append([]eventstore.Option{eventstore.WithSyncMode(eventstore.SyncNone),
		eventstore.WithPreallocation(false), eventstore.WithSegmentMaxBytes(4096)}, opts...)...)
	for i := range 150 {
		switch i % 10 {
		case 3:
			dtBatch(t, s, fmt.Sprint(i), []string{"a", "b", "c"})
		default:
			dtAppend(t, s, []string{"a", "b", "tmp"}[i%3], dtEvents(fmt.Sprint(i), 1))
		}
	}
	if err := s.DeleteStream(t.Context(), dtCoord("tmp")); err != nil {
		t.Fatal(err)
	}
	dtAppend(t, s, "a", dtEvents("x", 10))
	if _, err := s.Compact(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func TestScrubCleanStore(t *testing.T) {
	s, dir := scBuild(t)
	rep, err := s.Scrub(t.Context())
	if err != nil || len(rep.Damage) != 0 {
		t.Fatalf("scrub of a clean store: %v %+v", err, rep.Damage)
	}
	if rep.Segments < 4 || rep.Events == 0 || rep.Bytes == 0 {
		t.Fatalf("scrub checked %+v", rep)
	}
	var sealed int64
	for _, id := range dtSegments(t, dir)[:rep.Segments] {
		fi, _ := os.Stat(dtSegPath(dir, id))
		sealed += fi.Size()
	}
	if rep.Bytes != sealed {
		t.Fatalf("scrub read %d bytes, the sealed segments hold %d", rep.Bytes, sealed)
	}
	st := s.Stats().Scrub
	if st.Runs != 1 || st.LastBytes != rep.Bytes || st.BytesChecked != rep.Bytes || st.LastRun.IsZero() || st.Damage != nil {
		t.Fatalf("Stats().Scrub = %+v", st)
	}
	dtClose(t, s)
	ro, err := eventstore.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if rep, err := ro.Scrub(t.Context()); err != nil || rep.Segments == 0 {
		t.Fatalf("scrub of a read-only store: %v %+v", err, rep)
	}
}

// Damage written into a sealed segment's file under a running store, past
// the store: Scrub names the segment and offset, matchable as ErrCorrupt,
// and the store keeps working.
func TestScrubFindsDamageUnderRunningStore(t *testing.T) {
	s, dir := scBuild(t)
	defer s.Close()
	frames, _, _ := dtScan(t, dtSegPath(dir, 2), 2)
	f := frames[len(frames)/2]
	dtFlip(t, dtSegPath(dir, 2), f.Off+f.Size-3, 0x40)
	rep, err := s.Scrub(t.Context())
	if !errors.Is(err, batpak.ErrCorrupt) {
		t.Fatalf("scrub = %v", err)
	}
	var ce *segment.CorruptError
	if !errors.As(err, &ce) || ce.Segment != 2 || ce.Offset != f.Off || ce.Path != dtSegPath(dir, 2) {
		t.Fatalf("scrub error %v, want segment 2 offset %d", err, f.Off)
	}
	if len(rep.Damage) != 1 {
		t.Fatalf("one flipped byte reported %d times: %v", len(rep.Damage), rep.Damage)
	}
	st := s.Stats().Scrub
	if len(st.Damage) != 1 || st.Damage[0].Segment != 2 || st.Damage[0].Offset != f.Off || st.Damage[0].Reason == "" {
		t.Fatalf("Stats().Scrub.Damage = %+v", st.Damage)
	}
	dtAppend(t, s, "a", dtEvents("after", 1))
}

// Each kind of damage to sealed data is found where it is.
func TestScrubFindsEachKindOfDamage(t *testing.T) {
	s, dir := scBuild(t)
	dtClose(t, s)
	frames, frameEnd, _ := dtScan(t, dtSegPath(dir, 3), 3)
	f := frames[1]
	cases := []struct {
		name   string
		damage func(path string)
		offset int64
	}{
		{"frame-crc", func(p string) { dtFlip(t, p, f.Off+5, 0x01) }, f.Off},
		{"frame-length", func(p string) { dtFlip(t, p, f.Off+2, 0x01) }, f.Off},
		{"header", func(p string) { dtFlip(t, p, 9, 0x01) }, 0},
		{"footer", func(p string) { dtFlip(t, p, frameEnd+segment.FrameHeaderSize+20, 0x01) }, frameEnd},
		{"zeroed-frame", func(p string) { dtPatch(t, p, f.Off, make([]byte, f.Size)) }, f.Off},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := filepath.Join(t.TempDir(), "s")
			dtCopyDir(t, dir, d)
			c.damage(dtSegPath(d, 3))
			ro, err := eventstore.OpenReadOnly(d)
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			rep, err := ro.Scrub(t.Context())
			var ce *segment.CorruptError
			if !errors.As(err, &ce) || ce.Segment != 3 || ce.Offset != c.offset {
				t.Fatalf("scrub = %v (%+v), want segment 3 offset %d", err, rep.Damage, c.offset)
			}
		})
	}
}

// The background scrubber finds damage by itself, and Close stops it.
func TestBackgroundScrubFindsDamage(t *testing.T) {
	s, dir := scBuild(t, eventstore.WithBackgroundScrub(time.Millisecond, 1<<30))
	frames, _, _ := dtScan(t, dtSegPath(dir, 2), 2)
	f := frames[2]
	dtFlip(t, dtSegPath(dir, 2), f.Off+f.Size/2, 0x08)
	deadline := time.Now().Add(dtHangTimeout(t))
	for {
		st := s.Stats().Scrub
		if len(st.Damage) > 0 {
			if st.Damage[0].Segment != 2 || st.Damage[0].Offset != f.Off {
				t.Fatalf("background scrub found %+v, want segment 2 offset %d", st.Damage, f.Off)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the background scrubber found nothing: %+v", st)
		}
		<-time.After(time.Millisecond) // poll
	}
	dtClose(t, s)
}

// Scrubs while appends, deletions and compactions go on find no damage: a
// compaction renames new files over sealed segments and moves index
// positions, and each segment is mapped with the positions that describe it.
func TestScrubDuringCompaction(t *testing.T) {
	s, _ := scBuild(t)
	defer s.Close()
	ctx := t.Context()
	done := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i < 30 && err == nil; i++ {
			tmp := fmt.Sprintf("tmp%d", i)
			for j := range 8 {
				if _, err = s.Append(ctx, dtCoord(tmp), dtEvents(fmt.Sprint(i, j), 1)); err != nil {
					break
				}
				if _, err = s.Append(ctx, dtCoord("keep"), dtEvents(fmt.Sprint(i, j), 1)); err != nil {
					break
				}
			}
			if err == nil {
				err = s.DeleteStream(ctx, dtCoord(tmp))
			}
			if err == nil {
				_, err = s.Compact(ctx)
			}
		}
		done <- err
	}()
	scrubs := 0
	for running := true; running; scrubs++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		default:
		}
		if rep, err := s.Scrub(ctx); err != nil {
			t.Fatalf("scrub %d during compaction: %v (%+v)", scrubs, err, rep.Damage)
		}
	}
	t.Logf("%d scrubs during 30 compactions, %d segments", scrubs, s.Stats().Segments)
}

// A read-only store scrubs the files it opened, also after a writer's
// compaction renamed new ones over them.
func TestScrubReadOnlyAfterWritersCompaction(t *testing.T) {
	s, dir := scBuild(t)
	defer s.Close()
	dtAppend(t, s, "tmp2", dtEvents("t", 1))
	for i := range 40 {
		dtAppend(t, s, "keep", dtEvents(fmt.Sprint(i), 1))
	}
	ro, err := eventstore.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := s.DeleteStream(t.Context(), dtCoord("tmp2")); err != nil {
		t.Fatal(err)
	}
	if rep, err := s.Compact(t.Context()); err != nil || rep.SegmentsRewritten == 0 {
		t.Fatalf("compact: %v %+v", err, rep)
	}
	if rep, err := ro.Scrub(t.Context()); err != nil {
		t.Fatalf("read-only scrub after the writer's compaction: %v %+v", err, rep.Damage)
	}
	if _, err := s.Scrub(t.Context()); err != nil {
		t.Fatalf("writer's scrub: %v", err)
	}
}
