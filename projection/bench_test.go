package projection_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/projection"
)

const benchEvents = 1_000_000

// TestMain removes the store the benchmarks share.
func TestMain(m *testing.M) {
	code := m.Run()
	if benchStore.dir != "" {
		_ = os.RemoveAll(benchStore.dir)
	}
	os.Exit(code)
}

var benchStore struct {
	once sync.Once
	dir  string
	err  error
}

// millionEvents builds, once per test binary, a closed store of 1,000,000
// events with 200-byte payloads over 10,000 streams.
func millionEvents(b *testing.B) *eventstore.Store {
	benchStore.once.Do(func() {
		dir, err := os.MkdirTemp("", "batpak-projection-bench-")
		if err != nil {
			benchStore.err = err
			return
		}
		benchStore.dir = dir // removed by TestMain
		s, err := eventstore.Open(dir, eventstore.WithSyncMode(eventstore.SyncNone), eventstore.WithCheckpointEvery(0))
		if err != nil {
			benchStore.err = err
			return
		}
		payload := make(batpak.RawPayload, 200)
		payload[0], payload[1] = 0xc4, 198
		items := make([]batpak.BatchItem, 1000)
		for i := 0; i < benchEvents; i += len(items) {
			for j := range items {
				items[j] = batpak.BatchItem{Coordinate: batpak.Coordinate{Entity: fmt.Sprintf("s:%d", (i+j)%10_000), Scope: "bench"},
					Event: batpak.Event{Kind: kindAdded, Payload: payload}}
			}
			if _, err := s.AppendBatch(context.Background(), items); err != nil {
				benchStore.err = err
				return
			}
		}
		benchStore.err = s.Close()
	})
	if benchStore.err != nil {
		b.Fatal(benchStore.err)
	}
	s, err := eventstore.OpenReadOnly(benchStore.dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

type nop struct{ n int }

func (p *nop) Name() string                                   { return "nop" }
func (p *nop) Region() batpak.Region                          { return batpak.Region{} }
func (p *nop) Apply(_ context.Context, _ batpak.Record) error { p.n++; return nil }

// BenchmarkCatchUp replays 1,000,000 events into a projection with the
// sequential scanner; compare with BenchmarkReadAllMillion.
func BenchmarkCatchUp(b *testing.B) {
	s := millionEvents(b)
	b.ResetTimer()
	for b.Loop() {
		p := &nop{}
		if _, err := projection.NewRunner(s, projection.NewMemoryCheckpoints()).CatchUp(context.Background(), p); err != nil {
			b.Fatal(err)
		}
		if p.n != benchEvents {
			b.Fatalf("applied %d", p.n)
		}
	}
	b.ReportMetric(float64(b.N*benchEvents)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkReadAllMillion reads the same 1,000,000 events through the index.
func BenchmarkReadAllMillion(b *testing.B) {
	s := millionEvents(b)
	b.ResetTimer()
	for b.Loop() {
		n := 0
		for _, err := range s.ReadAll(context.Background(), 0) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != benchEvents {
			b.Fatalf("read %d", n)
		}
	}
	b.ReportMetric(float64(b.N*benchEvents)/b.Elapsed().Seconds(), "events/s")
}
