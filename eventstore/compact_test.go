package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
)

type payloadN struct {
	N   int
	Pad string // events of realistic size: 200-byte payloads
}

// compactFixture writes n events round-robin over streams s0..s(k-1) with
// tiny segments, so most of them end up in sealed segments.
func compactFixture(t *testing.T, n, k int, opts ...eventstore.Option) (*eventstore.Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := eventstore.Open(dir, append([]eventstore.Option{eventstore.WithSegmentMaxBytes(16 << 10), eventstore.WithSyncMode(eventstore.SyncNone)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		c := batpak.Coordinate{Entity: fmt.Sprintf("s%d", i%k), Scope: "test"}
		if _, err := s.Append(context.Background(), c, []batpak.Event{{Kind: kind.Custom(1, 1), Payload: payloadN{N: i, Pad: strings.Repeat("x", 180)}}}); err != nil {
			t.Fatal(err)
		}
	}
	return s, dir
}

func countAll(t *testing.T, s *eventstore.Store) (n int, seqs []uint64) {
	t.Helper()
	for rec, err := range s.ReadAll(context.Background(), 0) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		seqs = append(seqs, rec.Sequence)
	}
	return n, seqs
}

func TestDeleteStreamAndCompact(t *testing.T) {
	s, dir := compactFixture(t, 300, 3)
	ctx := context.Background()
	if err := s.DeleteStream(ctx, batpak.Coordinate{Entity: "s1", Scope: "test"}); err != nil {
		t.Fatal(err)
	}
	// Deleted at once: no reads, no appends.
	if n, _ := countAll(t, s); n != 200 {
		t.Fatalf("%d events visible after deleting s1, want 200", n)
	}
	for range s.ReadStream(context.Background(), batpak.Coordinate{Entity: "s1", Scope: "test"}, 1) {
		t.Fatal("a deleted stream still reads")
	}
	_, err := s.Append(ctx, batpak.Coordinate{Entity: "s1", Scope: "test"}, []batpak.Event{{Kind: kind.Custom(1, 1)}})
	if !errors.Is(err, batpak.ErrStreamDeleted) {
		t.Fatalf("append to a deleted stream = %v", err)
	}
	if err := s.DeleteStream(ctx, batpak.Coordinate{Entity: "s1", Scope: "test"}); err != nil {
		t.Fatalf("deleting twice = %v", err)
	}
	if err := s.DeleteStream(ctx, batpak.Coordinate{Entity: "nope", Scope: "test"}); !errors.Is(err, batpak.ErrNotFound) {
		t.Fatalf("deleting an unknown stream = %v", err)
	}
	before := s.Stats().DataBytes
	rep, err := s.Compact(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.SegmentsRewritten == 0 || rep.EventsRemoved == 0 || rep.BytesAfter >= rep.BytesBefore {
		t.Fatalf("report %+v", rep)
	}
	if after := s.Stats().DataBytes; after >= before {
		t.Fatalf("data bytes %d → %d", before, after)
	}
	n, seqs := countAll(t, s)
	if n != 200 {
		t.Fatalf("%d events after compaction", n)
	}
	for _, seq := range seqs {
		if seq%3 == 2 { // s1 had sequences 2, 5, 8, ...
			t.Fatalf("event %d of the deleted stream is back", seq)
		}
	}
	for _, e := range []string{"s0", "s2"} {
		if err := s.VerifyChain(context.Background(), batpak.Coordinate{Entity: e, Scope: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.VerifyChain(context.Background(), batpak.Coordinate{Entity: "s1", Scope: "test"}); err != nil {
		t.Fatalf("the deleted stream's stubs: %v", err)
	}
	// Appends continue; a reopen (footers, then no checkpoint) agrees.
	r, err := s.Append(ctx, batpak.Coordinate{Entity: "s0", Scope: "test"}, []batpak.Event{{Kind: kind.Custom(1, 1)}})
	if err != nil || r[0].Sequence != 301 {
		t.Fatalf("append after compaction = %v, %v", r, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, withCheckpoint := range []bool{true, false} {
		if !withCheckpoint {
			_ = os.Remove(filepath.Join(dir, eventstore.CheckpointFileName))
		}
		s2, err := eventstore.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := countAll(t, s2); n != 201 {
			t.Fatalf("reopened (checkpoint %v): %d events", withCheckpoint, n)
		}
		if _, err := s2.Append(ctx, batpak.Coordinate{Entity: "s1", Scope: "test"}, []batpak.Event{{Kind: kind.Custom(1, 1)}}); !errors.Is(err, batpak.ErrStreamDeleted) {
			t.Fatalf("reopened: append to deleted stream = %v", err)
		}
		if err := s2.Close(); err != nil {
			t.Fatal(err)
		}
	}
	vr, err := eventstore.Verify(dir)
	if err != nil || !vr.OK() {
		t.Fatalf("verify after compaction: %v %v", vr.Problems, err)
	}
}

func TestRetentionKeepsChainsVerifiable(t *testing.T) {
	s, dir := compactFixture(t, 300, 2)
	ctx := context.Background()
	rep, err := s.Compact(ctx, eventstore.RetainIf(func(r *batpak.Record) bool {
		var p payloadN
		return r.Decode(&p) == nil && p.N >= 150 // drop the oldest half
	}), eventstore.WithReason("retention: 150 newest"))
	if err != nil || rep.EventsRemoved == 0 {
		t.Fatalf("compact = %+v, %v", rep, err)
	}
	n := 0
	for _, err := range s.ReadStream(context.Background(), batpak.Coordinate{Entity: "s0", Scope: "test"}, 1) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n == 0 || n >= 150 {
		t.Fatalf("s0 reads %d events after retention", n)
	}
	for _, e := range []string{"s0", "s1"} {
		if err := s.VerifyChain(context.Background(), batpak.Coordinate{Entity: e, Scope: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if vr, err := eventstore.Verify(dir); err != nil || !vr.OK() {
		t.Fatalf("verify after retention: %v %v", vr.Problems, err)
	}
}

// Readers and cursors keep working while compaction rewrites segments.
func TestCompactUnderConcurrentReads(t *testing.T) {
	s, _ := compactFixture(t, 400, 4)
	ctx := context.Background()
	if err := s.DeleteStream(ctx, batpak.Coordinate{Entity: "s3", Scope: "test"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 8)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				last := uint64(0)
				for rec, err := range s.ReadAll(context.Background(), 0) {
					if err != nil {
						errs <- err
						return
					}
					if rec.Sequence <= last || rec.Coordinate.Entity == "s3" {
						errs <- fmt.Errorf("read %d after %d (%s)", rec.Sequence, last, rec.Coordinate.Entity)
						return
					}
					last = rec.Sequence
				}
				for rec, err := range s.Replay(context.Background(), batpak.Region{EntityPrefix: "s"}, 0) {
					if err != nil {
						errs <- err
						return
					}
					if strings.HasSuffix(rec.Coordinate.Entity, "3") {
						errs <- fmt.Errorf("replay shows deleted %d", rec.Sequence)
						return
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // the writer keeps appending
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Append(ctx, batpak.Coordinate{Entity: "s0", Scope: "test"}, []batpak.Event{{Kind: kind.Custom(1, 1), Payload: payloadN{N: i}}}); err != nil {
				errs <- err
				return
			}
		}
	}()
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
	if err := s.VerifyChain(context.Background(), batpak.Coordinate{Entity: "s0", Scope: "test"}); err != nil {
		t.Fatal(err)
	}
}
