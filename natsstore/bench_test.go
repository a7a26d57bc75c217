package natsstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/natsstore"
	"github.com/batpak-go/batpak/natsstore/embedded"
)

// The peer workloads of the benchmark suite (bench/), on this backend and
// on the embedded store, in one process:
//
//	W1  one goroutine appends one event at a time to one stream, with the expected version
//	W2  one goroutine appends atomic batches of 100 events, each to one of 10 streams, with the expected version
//	W3  8 or 64 goroutines append one event at a time, each to its own stream, with the expected version
//
// Backends: "embedded" is eventstore with SyncEveryCommit (durable) or
// SyncNone (relaxed); "jetstream-R1" is this package on one in-process
// nats-server with sync_always (durable) or the default 2-minute sync
// (relaxed); "jetstream-R3" on a 3-node in-process cluster on loopback
// (relaxed sync: an acknowledged event is on a quorum of two nodes).
// Every event is a 200-byte msgpack payload.
//
//	go test -run '^$' -bench Workloads -benchtime 3s ./natsstore/

type benchStore interface {
	Append(ctx context.Context, c batpak.Coordinate, events []batpak.Event, opts ...batpak.AppendOption) ([]batpak.Receipt, error)
	Close() error
}

var benchPayloads = func() []batpak.RawPayload {
	type payload struct {
		Account  string `msgpack:"account"`
		Amount   int64  `msgpack:"amount"`
		Currency string `msgpack:"currency"`
		At       int64  `msgpack:"at"`
		Blob     []byte `msgpack:"blob"`
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pool := make([]batpak.RawPayload, 1024)
	for i := range pool {
		p := payload{Account: fmt.Sprintf("account:%06d", i), Amount: int64(rng.IntN(1_000_000)), Currency: "EUR", At: 1_700_000_000_000_000 + int64(i)}
		b, _ := msgpack.Marshal(&p)
		p.Blob = make([]byte, 200-len(b)-1)
		for j := range p.Blob {
			p.Blob[j] = byte(rng.Uint32())
		}
		pool[i], _ = msgpack.Marshal(&p)
	}
	return pool
}()

func benchEvents(i, n int) []batpak.Event {
	evs := make([]batpak.Event, n)
	for j := range evs {
		evs[j] = batpak.Event{Kind: kind.Custom(1, 1), Payload: benchPayloads[(i+j)%len(benchPayloads)]}
	}
	return evs
}

type benchBackend struct {
	name string
	open func(b *testing.B, durable bool) benchStore
}

func benchBackends() []benchBackend {
	return []benchBackend{
		{"embedded", func(b *testing.B, durable bool) benchStore {
			mode := eventstore.SyncNone
			if durable {
				mode = eventstore.SyncEveryCommit
			}
			s, err := eventstore.Open(b.TempDir(), eventstore.WithSyncMode(mode))
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"jetstream-R1", func(b *testing.B, durable bool) benchStore {
			ns, err := embedded.Start(embedded.Options{Dir: b.TempDir(), RelaxedSync: !durable})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(ns.Shutdown)
			return openBench(b, ns.ClientURL(), 1)
		}},
		{"jetstream-R3", func(b *testing.B, durable bool) benchStore {
			if durable {
				b.Skip("the cluster runs with the default sync: replication is its durability")
			}
			c := startCluster(b, 3)
			return openBench(b, c.urls(), 3)
		}},
	}
}

func openBench(b *testing.B, urls string, replicas int) benchStore {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := natsstore.Open(ctx, urls, natsstore.WithReplicas(replicas))
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkWorkloads(b *testing.B) {
	for _, durable := range []bool{true, false} {
		mode := map[bool]string{true: "durable", false: "relaxed"}[durable]
		for _, be := range benchBackends() {
			b.Run(fmt.Sprintf("W1/%s/%s", be.name, mode), func(b *testing.B) { benchW1(b, be.open(b, durable)) })
			b.Run(fmt.Sprintf("W2/%s/%s", be.name, mode), func(b *testing.B) { benchW2(b, be.open(b, durable)) })
			for _, g := range []int{8, 64} {
				b.Run(fmt.Sprintf("W3-%d/%s/%s", g, be.name, mode), func(b *testing.B) { benchW3(b, be.open(b, durable), g) })
			}
		}
	}
}

func mustAppend(b *testing.B, s benchStore, entity string, v uint64, evs []batpak.Event) uint64 {
	rs, err := s.Append(context.Background(), batpak.Coordinate{Entity: entity, Scope: "bench"}, evs,
		batpak.ExpectVersion(batpak.Exactly(v)))
	if err != nil {
		b.Fatal(err)
	}
	return rs[len(rs)-1].Version
}

func benchW1(b *testing.B, s benchStore) {
	defer s.Close()
	var v uint64
	for i := range 5 {
		v = mustAppend(b, s, "w1", v, benchEvents(i, 1))
	}
	b.ResetTimer()
	for i := range b.N {
		v = mustAppend(b, s, "w1", v, benchEvents(i, 1))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func benchW2(b *testing.B, s benchStore) {
	defer s.Close()
	const size, streams = 100, 10
	versions := make([]uint64, streams)
	for i := range versions {
		versions[i] = mustAppend(b, s, fmt.Sprintf("w2-%d", i), 0, benchEvents(i, size))
	}
	b.ResetTimer()
	for i := range b.N {
		k := i % streams
		versions[k] = mustAppend(b, s, fmt.Sprintf("w2-%d", k), versions[k], benchEvents(i, size))
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
}

func benchW3(b *testing.B, s benchStore, g int) {
	defer s.Close()
	for w := range g {
		mustAppend(b, s, fmt.Sprintf("w3-%d", w), 0, benchEvents(w, 1))
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range g {
		n := b.N / g
		if w < b.N%g {
			n++
		}
		wg.Go(func() {
			v := uint64(1)
			for i := range n {
				v = mustAppend(b, s, fmt.Sprintf("w3-%d", w), v, benchEvents(i, 1))
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkReadStreamUncached reads a stream of 2,000 events whose bodies
// are not cached (WithCacheBytes(0)), so every payload comes from the
// server: jetstream-R1 with the default 2-minute sync (reads do not
// depend on it).
//
//	go test -run '^$' -bench ReadStreamUncached ./natsstore/
func BenchmarkReadStreamUncached(b *testing.B) {
	ns, err := embedded.Start(embedded.Options{Dir: b.TempDir(), RelaxedSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ns.Shutdown)
	ctx := context.Background()
	s, err := natsstore.Open(ctx, ns.ClientURL(), natsstore.WithCacheBytes(0))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	// 2,000 events of "read" interleaved with 2,000 of another stream.
	const want = 2000
	for i := 0; i < 2*want; i += 1000 {
		items := make([]batpak.BatchItem, 1000)
		for j := range items {
			entity := "other"
			if j%2 == 0 {
				entity = "read"
			}
			items[j] = batpak.BatchItem{Coordinate: batpak.Coordinate{Entity: entity, Scope: "bench"}, Event: benchEvents(i+j, 1)[0]}
		}
		if _, err := s.AppendBatch(ctx, items); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		got := 0
		for _, err := range s.ReadStream(ctx, batpak.Coordinate{Entity: "read", Scope: "bench"}, 1) {
			if err != nil {
				b.Fatal(err)
			}
			got++
		}
		if got != want {
			b.Fatalf("read %d events, want %d", got, want)
		}
	}
	b.ReportMetric(float64(b.N*want)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/read")
}

// BenchmarkKeyedAppend is W1 (one goroutine, one event per append, one
// stream, expected version) with and without an idempotency key on every
// append: jetstream-R1 with the default 2-minute sync, so that the
// figures show the client's round trips rather than the disk's fsyncs.
//
//	go test -run '^$' -bench KeyedAppend ./natsstore/
func BenchmarkKeyedAppend(b *testing.B) {
	for _, keyed := range []bool{false, true} {
		b.Run(map[bool]string{false: "unkeyed", true: "keyed"}[keyed], func(b *testing.B) {
			ns, err := embedded.Start(embedded.Options{Dir: b.TempDir(), RelaxedSync: true})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(ns.Shutdown)
			s := openBench(b, ns.ClientURL(), 1)
			defer s.Close()
			c := batpak.Coordinate{Entity: "keyed", Scope: "bench"}
			var v uint64
			b.ResetTimer()
			for i := range b.N {
				opts := []batpak.AppendOption{batpak.ExpectVersion(batpak.Exactly(v))}
				if keyed {
					opts = append(opts, batpak.WithIdempotencyKey(fmt.Sprintf("key-%d", i)))
				}
				rs, err := s.Append(context.Background(), c, benchEvents(i, 1), opts...)
				if err != nil {
					b.Fatal(err)
				}
				v = rs[0].Version
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// benchOpenEvents is the size of BenchmarkOpen's stream:
// BATPAK_BENCH_OPEN_EVENTS, default 100,000.
func benchOpenEvents(b *testing.B) int {
	n := 100_000
	if v := os.Getenv("BATPAK_BENCH_OPEN_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1000 {
			b.Fatalf("BATPAK_BENCH_OPEN_EVENTS=%q: want a number of events, at least 1000", v)
		}
	}
	return n
}

// BenchmarkOpen measures Open of a stream of benchOpenEvents events
// (10,000 streams, 200-byte payloads, written in atomic batches of 1,000)
// on one in-process server with file storage (the default 2-minute sync,
// which Open does not depend on): from the index checkpoint
// written when the stream was built, and without it (reading the whole
// stream).
//
//	BATPAK_BENCH_OPEN_EVENTS=1000000 go test -run '^$' -bench Open -benchtime 3x -timeout 1h ./natsstore/
func BenchmarkOpen(b *testing.B) {
	n := benchOpenEvents(b)
	ns := benchOpenServer(b, n)
	for _, mode := range []struct {
		name string
		opts []natsstore.Option
	}{
		{"checkpoint", nil},
		{"replay", []natsstore.Option{natsstore.WithIndexCheckpoints(0)}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			var st natsstore.IndexStats
			for range b.N {
				s, err := natsstore.Open(context.Background(), ns.ClientURL(), append(mode.opts, natsstore.WithOpenTimeout(time.Hour))...)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				st = s.IndexStats()
				if got := s.LastSequence(); got != uint64(n) {
					b.Fatalf("opened %d events, want %d", got, n)
				}
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/open")
			b.ReportMetric(float64(st.Restored), "restored")
			b.ReportMetric(float64(st.Replayed), "replayed")
		})
	}
}

// benchOpenServer starts a server holding a stream of n events. With
// BATPAK_BENCH_OPEN_DIR set, the server keeps its files there and a later
// run with the same n reuses them instead of writing the stream again.
func benchOpenServer(b *testing.B, n int) *server.Server {
	dir := os.Getenv("BATPAK_BENCH_OPEN_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	ns, err := embedded.Start(embedded.Options{Dir: dir, RelaxedSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ns.Shutdown)
	ctx := context.Background()
	s, err := natsstore.Open(ctx, ns.ClientURL(), natsstore.WithCacheBytes(0), natsstore.WithTimeout(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if got := s.LastSequence(); got != 0 {
		if got != uint64(n) {
			b.Fatalf("%s holds %d events, want %d: remove it or set BATPAK_BENCH_OPEN_EVENTS=%d", dir, got, n, got)
		}
		return ns
	}
	start := time.Now()
	items := make([]batpak.BatchItem, 1000)
	for i := 0; i < n; i += len(items) {
		for j := range items {
			items[j] = batpak.BatchItem{
				Coordinate: batpak.Coordinate{Entity: fmt.Sprintf("s-%05d", (i+j)%10_000), Scope: "bench"},
				Event:      benchEvents(i+j, 1)[0],
			}
		}
		if _, err := s.AppendBatch(ctx, items); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("wrote %d events in %s", n, time.Since(start).Round(time.Millisecond))
	return ns
}
