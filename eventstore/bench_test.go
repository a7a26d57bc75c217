package eventstore_test

import (
	"context"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
)

// benchPayload is a 200-byte msgpack payload, the size the benchmarks
// in docs/benchmarks.md use.
var benchPayload = func() batpak.RawPayload {
	p := make([]byte, 200)
	p[0], p[1] = 0xc4, 198 // bin8 of 198 bytes
	for i := 2; i < len(p); i++ {
		p[i] = byte(i)
	}
	return p
}()

var benchKind = kind.Custom(1, 1)

func benchEvent() batpak.Event { return batpak.Event{Kind: benchKind, Payload: benchPayload} }

func openBench(b *testing.B, opts ...eventstore.Option) *eventstore.Store {
	b.Helper()
	s, err := eventstore.Open(b.TempDir(), opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkAppendDurable measures single-event appends with SyncEveryCommit
// from 1, 8 and 64 goroutines, each on its own stream.
func BenchmarkAppendDurable(b *testing.B) { benchAppend(b) }

// BenchmarkAppendRelaxed is BenchmarkAppendDurable with SyncNone: the cost
// of an append apart from the fsync.
func BenchmarkAppendRelaxed(b *testing.B) {
	benchAppend(b, eventstore.WithSyncMode(eventstore.SyncNone))
}

func benchAppend(b *testing.B, opts ...eventstore.Option) {
	for _, g := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			s := openBench(b, opts...)
			inParallel(b, g, func(w int) func(context.Context) error {
				c := batpak.Coordinate{Entity: fmt.Sprintf("bench:%d", w), Scope: "bench"}
				ev := []batpak.Event{benchEvent()}
				return func(ctx context.Context) error {
					_, err := s.Append(ctx, c, ev)
					return err
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(s.Stats().AverageGroupSize, "reqs/sync")
		})
	}
}

// inParallel runs b.N operations on g goroutines; op(w) prepares goroutine
// w's operation.
func inParallel(b *testing.B, g int, op func(w int) func(context.Context) error) {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := range g {
		do := op(w)
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := do(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
}

// BenchmarkAppendBatch measures durable 100-event atomic batches from 1
// and 4 goroutines (concurrent batches share a sync).
func BenchmarkAppendBatch(b *testing.B) { benchBatch(b) }

// BenchmarkAppendBatchRelaxed is BenchmarkAppendBatch with SyncNone.
func BenchmarkAppendBatchRelaxed(b *testing.B) {
	benchBatch(b, eventstore.WithSyncMode(eventstore.SyncNone))
}

func benchBatch(b *testing.B, opts ...eventstore.Option) {
	for _, g := range []int{1, 4} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			s := openBench(b, opts...)
			inParallel(b, g, func(w int) func(context.Context) error {
				items := make([]batpak.BatchItem, 100)
				for i := range items {
					items[i] = batpak.BatchItem{Coordinate: batpak.Coordinate{Entity: fmt.Sprintf("batch:%d:%d", w, i%10), Scope: "bench"}, Event: benchEvent()}
				}
				return func(ctx context.Context) error {
					_, err := s.AppendBatch(ctx, items)
					return err
				}
			})
			b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkAppendStreamBatchRelaxed measures W2's shape without the
// fsync: one goroutine appends 100 events at a time to one of 10 streams,
// each with the expected version.
func BenchmarkAppendStreamBatchRelaxed(b *testing.B) {
	s := openBench(b, eventstore.WithSyncMode(eventstore.SyncNone))
	events := make([]batpak.Event, 100)
	for i := range events {
		events[i] = benchEvent()
	}
	var coords [10]batpak.Coordinate
	for k := range coords {
		coords[k] = batpak.Coordinate{Entity: fmt.Sprintf("stream:%d", k), Scope: "bench"}
	}
	var versions [len(coords)]uint64
	ctx := context.Background()
	i := 0
	for b.Loop() {
		k := i % len(coords)
		if _, err := s.Append(ctx, coords[k], events, batpak.ExpectVersion(batpak.Exactly(versions[k]))); err != nil {
			b.Fatal(err)
		}
		versions[k] += uint64(len(events))
		i++
	}
	b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds(), "events/s")
}

// drain reads all of seq and fails b on an error or a count other than want.
func drain(b *testing.B, seq iter.Seq2[batpak.Record, error], want int) {
	n := 0
	for _, err := range seq {
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
	if n != want {
		b.Fatalf("read %d events, want %d", n, want)
	}
}

// BenchmarkReadStream reads a 100-event stream among 1,000 streams.
func BenchmarkReadStream(b *testing.B) {
	s := openBench(b, eventstore.WithSyncMode(eventstore.SyncNone))
	fill(b, s, 1000, 100)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		drain(b, s.ReadStream(context.Background(), batpak.Coordinate{Entity: fmt.Sprintf("fill:%d", i%1000), Scope: "bench"}, 1), 100)
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkReadAll reads the whole log of 200,000 events in order.
func BenchmarkReadAll(b *testing.B) {
	s := openBench(b, eventstore.WithSyncMode(eventstore.SyncNone))
	fill(b, s, 2000, 100)
	b.ResetTimer()
	for b.Loop() {
		drain(b, s.ReadAll(context.Background(), 0), 200_000)
	}
	b.ReportMetric(float64(b.N*200_000)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkReplay replays a closed store of 1,000,000 events with the
// sequential scanner.
func BenchmarkReplay(b *testing.B) {
	dir := coldStore(b)
	s, err := eventstore.OpenReadOnly(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ResetTimer()
	for b.Loop() {
		drain(b, s.Replay(context.Background(), batpak.Region{}, 0), 1_000_000)
	}
	b.ReportMetric(float64(b.N*1_000_000)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkReplayWork is BenchmarkReplay with a consumer that works on
// each payload for about as long as decoding it takes (work-ns, measured
// alone), as a projection does: the scan and the consumer's work can
// overlap.
func BenchmarkReplayWork(b *testing.B) {
	dir := coldStore(b)
	s, err := eventstore.OpenReadOnly(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	const calib = 100_000
	for range calib {
		benchWork(benchPayload)
	}
	work := time.Since(start) / calib
	b.ResetTimer()
	for b.Loop() {
		n := 0
		for rec, err := range s.Replay(context.Background(), batpak.Region{}, 0) {
			if err != nil {
				b.Fatal(err)
			}
			benchWork(rec.Payload)
			n++
		}
		if n != 1_000_000 {
			b.Fatalf("read %d events, want 1000000", n)
		}
	}
	b.ReportMetric(float64(b.N*1_000_000)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(work.Nanoseconds()), "work-ns")
}

// benchSink keeps benchWork's result alive.
var benchSink uint64

// benchWork stands for decoding a payload: a few passes of FNV-1a over it,
// about half a microsecond for 200 bytes.
func benchWork(p []byte) {
	h := uint64(14695981039346656037)
	for range 2 {
		for _, c := range p {
			h = (h ^ uint64(c)) * 1099511628211
		}
	}
	benchSink += h
}

// fill appends streams×perStream events in batches, interleaving streams.
func fill(b *testing.B, s *eventstore.Store, streams, perStream int) {
	b.Helper()
	ctx := context.Background()
	items := make([]batpak.BatchItem, 0, 1000)
	for v := 0; v < perStream; v++ {
		for st := 0; st < streams; st++ {
			items = append(items, batpak.BatchItem{Coordinate: batpak.Coordinate{Entity: fmt.Sprintf("fill:%d", st), Scope: "bench"}, Event: benchEvent()})
			if len(items) == cap(items) {
				if _, err := s.AppendBatch(ctx, items); err != nil {
					b.Fatal(err)
				}
				items = items[:0]
			}
		}
	}
	if len(items) > 0 {
		if _, err := s.AppendBatch(ctx, items); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMain removes the store the benchmarks share.
func TestMain(m *testing.M) {
	code := m.Run()
	if coldDirs.dir != "" {
		_ = os.RemoveAll(coldDirs.dir)
	}
	os.Exit(code)
}

var coldDirs struct {
	once sync.Once
	dir  string
	err  error
}

// coldStore builds (once per benchmark binary) a closed store of 1,000,000
// events over 10,000 streams and returns its directory.
func coldStore(b *testing.B) string {
	coldDirs.once.Do(func() {
		dir, err := os.MkdirTemp("", "batpak-cold-")
		if err != nil {
			coldDirs.err = err
			return
		}
		coldDirs.dir = dir // removed by TestMain
		s, err := eventstore.Open(dir, eventstore.WithSyncMode(eventstore.SyncNone), eventstore.WithCheckpointEvery(0))
		if err != nil {
			coldDirs.err = err
			return
		}
		fill(b, s, 10_000, 100)
		coldDirs.err = s.Close()
	})
	if coldDirs.err != nil {
		b.Fatal(coldDirs.err)
	}
	return coldDirs.dir
}

// BenchmarkColdOpen opens a 1,000,000-event store with and without its
// checkpoint (then footers and a scan of the active segment do the work).
func BenchmarkColdOpen(b *testing.B) {
	src := coldStore(b)
	for _, withCkpt := range []bool{true, false} {
		b.Run(fmt.Sprintf("checkpoint=%v", withCkpt), func(b *testing.B) {
			dir := b.TempDir()
			copyDir(b, src, dir)
			if !withCkpt {
				_ = os.Remove(filepath.Join(dir, eventstore.CheckpointFileName))
			}
			b.ResetTimer()
			for b.Loop() {
				s, err := eventstore.OpenReadOnly(dir)
				if err != nil {
					b.Fatal(err)
				}
				if s.LastSequence() != 1_000_000 {
					b.Fatalf("opened %d events", s.LastSequence())
				}
				_ = s.Close()
			}
		})
	}
}

// BenchmarkDiskBytesPerEvent reports the bytes on disk per 200-byte event.
func BenchmarkDiskBytesPerEvent(b *testing.B) {
	dir := coldStore(b)
	var total int64
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if fi, err := de.Info(); err == nil && filepath.Ext(de.Name()) == ".seg" {
			total += fi.Size()
		}
	}
	for b.Loop() {
	}
	b.ReportMetric(float64(total)/1_000_000, "bytes/event")
}

func copyDir(b *testing.B, src, dst string) {
	b.Helper()
	des, err := os.ReadDir(src)
	if err != nil {
		b.Fatal(err)
	}
	for _, de := range des {
		if de.IsDir() || de.Name() == eventstore.LockFileName {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, de.Name()))
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, de.Name()), data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
}
