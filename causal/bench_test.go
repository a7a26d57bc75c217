package causal_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/causal"
	"github.com/batpak-go/batpak/eventstore"
)

// benchGroupSize is the size of the benchmarks' correlation group.
const benchGroupSize = 10_000

// benchTree is a store holding one correlation group of benchGroupSize
// events: a tree with a fan-out of 10 (levels of 1, 10, 100, 1000 and
// 8889 events) spread over 64 streams. It is built once, with AppendBatch,
// and shared by the benchmarks.
var benchTree struct {
	once sync.Once
	dir  string
	s    *eventstore.Store
	root uuid.UUID
	leaf uuid.UUID
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchTree.s != nil {
		if err := benchTree.s.Close(); err != nil {
			log.Print(err)
		}
		_ = os.RemoveAll(benchTree.dir)
	}
	os.Exit(code)
}

func buildBenchTree() error {
	dir, err := os.MkdirTemp("", "batpak-causal-bench-")
	if err != nil {
		return err
	}
	benchTree.dir = dir
	s, err := eventstore.Open(dir, eventstore.WithSyncMode(eventstore.SyncNone))
	if err != nil {
		return err
	}
	benchTree.s = s
	ctx := context.Background()
	item := func(i int, cause uuid.UUID) batpak.BatchItem {
		return batpak.BatchItem{
			Coordinate:  batpak.Coordinate{Entity: fmt.Sprintf("node:%d", i%64), Scope: "bench"},
			Event:       batpak.Event{Kind: LedgerPosted, Payload: i},
			CausationID: cause,
		}
	}
	rs, err := s.AppendBatch(ctx, []batpak.BatchItem{item(0, uuid.Nil)})
	if err != nil {
		return err
	}
	benchTree.root = rs[0].EventID
	level := []uuid.UUID{benchTree.root}
	total := 1
	for total < benchGroupSize {
		var next []uuid.UUID
		var batch []batpak.BatchItem
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			rs, err := s.AppendBatch(ctx, batch)
			if err != nil {
				return err
			}
			for _, r := range rs {
				next = append(next, r.EventID)
			}
			batch = batch[:0]
			return nil
		}
		for _, parent := range level {
			for range 10 {
				if total == benchGroupSize {
					break
				}
				batch = append(batch, item(total, parent))
				total++
			}
			if len(batch) >= 1000 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
		level = next
	}
	benchTree.leaf = level[len(level)-1]
	return nil
}

func benchStore(b *testing.B) *eventstore.Store {
	b.Helper()
	benchTree.once.Do(func() { benchTree.err = buildBenchTree() })
	if benchTree.err != nil {
		b.Fatal(benchTree.err)
	}
	return benchTree.s
}

func reportEvents(b *testing.B, perOp int) {
	b.ReportMetric(float64(perOp)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkTrace traces the whole 10,000-event group.
func BenchmarkTrace(b *testing.B) {
	s := benchStore(b)
	b.ReportAllocs()
	for b.Loop() {
		g, err := causal.Trace(context.Background(), s, benchTree.leaf)
		if err != nil {
			b.Fatal(err)
		}
		if g.Len() != benchGroupSize || len(g.Roots) != 1 {
			b.Fatalf("%d events, %d roots", g.Len(), len(g.Roots))
		}
	}
	reportEvents(b, benchGroupSize)
}

// BenchmarkDescendants walks the group down from its root.
func BenchmarkDescendants(b *testing.B) {
	s := benchStore(b)
	b.ReportAllocs()
	for b.Loop() {
		recs, err := causal.Descendants(context.Background(), s, benchTree.root)
		if err != nil {
			b.Fatal(err)
		}
		if len(recs) != benchGroupSize-1 {
			b.Fatalf("%d descendants", len(recs))
		}
	}
	reportEvents(b, benchGroupSize)
}

// BenchmarkAncestors walks from a leaf up to the root (5 events).
func BenchmarkAncestors(b *testing.B) {
	s := benchStore(b)
	b.ReportAllocs()
	for b.Loop() {
		recs, err := causal.Ancestors(context.Background(), s, benchTree.leaf)
		if err != nil {
			b.Fatal(err)
		}
		if len(recs) != 4 {
			b.Fatalf("%d ancestors", len(recs))
		}
	}
	reportEvents(b, 5)
}

// BenchmarkWrite renders the traced group.
func BenchmarkWrite(b *testing.B) {
	g, err := causal.Trace(context.Background(), benchStore(b), benchTree.root)
	if err != nil {
		b.Fatal(err)
	}
	for name, write := range map[string]func(io.Writer) error{
		"text": g.WriteText, "dot": g.WriteDOT, "json": g.WriteJSON,
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := write(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
			reportEvents(b, benchGroupSize)
		})
	}
}
