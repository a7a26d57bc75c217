package main

// natsstore: batpak's JetStream backend (natsstore) on an in-process
// nats-server (no listener: the client connects with
// nats.InProcessServer) with file storage in the store directory. Events
// are batpak's (headers, hash chain, index) in one stream; an append
// carries the expected last subject sequence; a Load is one atomic batch
// (AppendBatch of up to 1,000 items). Reads use the client's index and,
// for bodies it no longer caches, batched direct gets; ReadAll is Replay
// (an ordered consumer).
//
// Durability: durable mode starts the server with sync_always (the
// server fsyncs each write, an atomic batch once at its commit, before
// the publish is acknowledged); relaxed mode is JetStream's default
// (fsync every 2 minutes).
//
// It is not among the default backends: -backends natsstore adds it to
// the peer comparison, and -natsstore runs its own rows (see
// runNatsSuite).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/natsstore"
)

type natsBackend struct{}

func (natsBackend) Name() string    { return "natsstore" }
func (natsBackend) Relaxed() string { return "default sync (2 min)" }

func (b natsBackend) Open(dir string, durable bool) (Store, error) {
	return b.open(dir, durable)
}

// open starts the server on dir and opens the store with opts.
func (natsBackend) open(dir string, durable bool, opts ...natsstore.Option) (*natsStore, error) {
	ns, err := server.NewServer(&server.Options{
		ServerName: "bench",
		DontListen: true,
		JetStream:  true,
		StoreDir:   dir,
		SyncAlways: durable,
		NoLog:      true,
		NoSigs:     true,
	})
	if err != nil {
		return nil, err
	}
	ns.Start()
	if !ns.ReadyForConnections(jsTimeout) {
		ns.Shutdown()
		return nil, errors.New("nats-server did not start")
	}
	st := &natsStore{ns: ns}
	st.nc, err = nats.Connect("", nats.InProcessServer(ns), nats.MaxReconnects(-1))
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		start := time.Now()
		st.s, err = natsstore.OpenConn(ctx, st.nc, append([]natsstore.Option{natsstore.WithOpenTimeout(time.Hour)}, opts...)...)
		st.openTime = time.Since(start)
		cancel()
	}
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	return st, nil
}

type natsStore struct {
	ns       *server.Server
	nc       *nats.Conn
	s        *natsstore.Store
	openTime time.Duration // of natsstore.OpenConn, the server already running
}

func (n *natsStore) Append(stream string, expected int64, payloads [][]byte) (uint64, error) {
	events := make([]batpak.Event, len(payloads))
	for i, p := range payloads {
		events[i] = batpak.Event{Kind: batpakKind, Payload: batpak.RawPayload(p)}
	}
	var ev batpak.ExpectedVersion = batpak.Any
	if expected >= 0 {
		ev = batpak.Exactly(uint64(expected))
	}
	rs, err := n.s.Append(context.Background(), coord(stream), events, batpak.ExpectVersion(ev))
	if err != nil {
		if errors.Is(err, batpak.ErrVersionConflict) {
			return 0, errors.Join(ErrConflict, err)
		}
		return 0, err
	}
	return rs[len(rs)-1].Version, nil
}

func (n *natsStore) Load(items []Item) error {
	batch := make([]batpak.BatchItem, len(items))
	for i, it := range items {
		batch[i] = batpak.BatchItem{Coordinate: coord(it.Stream), Event: batpak.Event{Kind: batpakKind, Payload: batpak.RawPayload(it.Payload)}}
	}
	_, err := n.s.AppendBatch(context.Background(), batch)
	return err
}

func (n *natsStore) ReadStream(stream string, fn func(Event) error) error {
	for rec, err := range n.s.ReadStream(context.Background(), coord(stream), 1) {
		if err != nil {
			return err
		}
		if err := fn(Event{Seq: rec.Sequence, Stream: rec.Coordinate.Entity, Version: rec.Version, Payload: rec.Payload}); err != nil {
			return err
		}
	}
	return nil
}

func (n *natsStore) ReadAll(decode func([]byte) error, fn func(Event) error) error {
	fn = decodeInline(decode, fn)
	for rec, err := range n.s.Replay(context.Background(), batpak.Region{}, 0) {
		if err != nil {
			return err
		}
		if err := fn(Event{Seq: rec.Sequence, Stream: rec.Coordinate.Entity, Version: rec.Version, Payload: rec.Payload}); err != nil {
			return err
		}
	}
	return nil
}

func (n *natsStore) Close() error {
	var err error
	if n.s != nil {
		err = n.s.Close()
	}
	if n.nc != nil {
		n.nc.Close()
	}
	n.ns.Shutdown()
	n.ns.WaitForShutdown()
	return err
}

// Extra reports how Open built the index.
func (n *natsStore) Extra() map[string]float64 {
	st := n.s.IndexStats()
	return map[string]float64{
		"open_ms":           float64(st.OpenTime.Microseconds()) / 1000,
		"events_restored":   float64(st.Restored),
		"events_replayed":   float64(st.Replayed),
		"checkpoint_blocks": float64(st.Written),
	}
}

// The natsstore rows (-natsstore): W1, W2 and W3 with 8 goroutines in
// durable mode (sync_always), then Open of a stream of openEvents events
// (10,000 streams, written with Load, that is atomic batches of 1,000),
// from the index checkpoint the loading client wrote at Close, and
// reading the whole stream. The dataset is built once per invocation.
var natsRows = []string{
	"W1 append 1 event durable",
	"W2 batch of 100 durable",
	"W3 8 goroutines durable",
	"open, index checkpoint",
	"open, whole stream",
	"open dataset load",
}

func natsOpenEvents(c Config) int {
	switch {
	case c.NatsOpenEvents > 0:
		return c.NatsOpenEvents
	case c.Quick:
		return 100_000
	}
	return 1_000_000
}

// natsSuite runs the natsstore rows in this (child) process.
func (r *runner) natsSuite() error {
	nb := natsBackend{}
	for _, w := range writeWorkloads() {
		if w.row == "W3 64 goroutines" {
			continue
		}
		if err := r.write(w, true); err != nil {
			return fmt.Errorf("%s: %w", w.row, err)
		}
	}
	n := natsOpenEvents(r.cfg)
	dir := filepath.Join(r.cfg.Dir, fmt.Sprintf("natsstore-open-%d", n))
	if _, err := os.Stat(dir + ".done"); err != nil {
		if err := r.natsLoad(dir, n); err != nil {
			return fmt.Errorf("open dataset: %w", err)
		}
	}
	for _, m := range []struct {
		row  string
		opts []natsstore.Option
	}{
		{"open, index checkpoint", nil},
		{"open, whole stream", []natsstore.Option{natsstore.WithIndexCheckpoints(0)}},
	} {
		var st *natsStore
		err := r.profile("natsstore "+m.row, func() error {
			var err error
			st, err = nb.open(dir, true, m.opts...)
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", m.row, err)
		}
		extra := st.Extra()
		got := st.s.LastSequence()
		if err := st.Close(); err != nil {
			return err
		}
		if got != uint64(n) {
			return fmt.Errorf("%s: %d events, want %d", m.row, got, n)
		}
		r.add(Result{Row: m.row, Value: float64(st.openTime.Microseconds()) / 1000, Unit: "ms", Ops: n, Seconds: st.openTime.Seconds(), Extra: extra})
	}
	return nil
}

// natsLoad builds the open dataset: n events over 10,000 streams, 1,000
// per Load, in durable mode; Close writes the index checkpoint.
func (r *runner) natsLoad(dir string, n int) error {
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	st, err := natsBackend{}.open(dir, true)
	if err != nil {
		return err
	}
	start := time.Now()
	items := make([]Item, 0, 1000)
	for i := range n {
		items = append(items, Item{Stream: streamName(i % 10_000), Payload: payload(i)})
		if len(items) == cap(items) || i == n-1 {
			if err := st.Load(items); err != nil {
				_ = st.Close()
				return err
			}
			items = items[:0]
		}
	}
	if err := st.Close(); err != nil {
		return err
	}
	elapsed := time.Since(start)
	r.add(Result{Row: "open dataset load", Value: float64(n) / elapsed.Seconds(), Unit: "events/s", Ops: n, Seconds: elapsed.Seconds()})
	return os.WriteFile(dir+".done", nil, 0o600)
}

// natsParent runs the natsstore rows runs times, each run in a child
// process, and prints the medians as a markdown table.
func natsParent(cfg Config, runs int, dir, jsonOut string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if dir == "" {
		dir = os.TempDir()
	}
	base, err := os.MkdirTemp(dir, "batpak-bench-nats-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(base) }()
	cfg.Dir = base
	m := describeMachine(base)
	var results []Result
	for run := 1; run <= runs; run++ {
		t := time.Now()
		res, err := spawn(ctx, cfg, "natsstore", "natsstore", run)
		if err != nil {
			return err
		}
		results = append(results, res...)
		progress("run %d/%d natsstore %5.1fs", run, runs, time.Since(t).Seconds())
	}
	fmt.Printf("natsstore on an in-process nats-server %s with file storage and sync_always, %s: %s, %d cores, %s, %s, %s; Open of %s events\n\n",
		server.VERSION, m.Date, m.CPU, m.Cores, m.Kernel, m.Filesystem, m.Go, thousands(int64(natsOpenEvents(cfg))))
	fmt.Println("| row | unit | median | min–max | runs |\n|---|---|---:|---:|---:|")
	for _, row := range natsRows {
		var xs []float64
		unit := ""
		for _, r := range results {
			if r.Row == row {
				xs, unit = append(xs, r.Value), r.Unit
			}
		}
		if len(xs) == 0 {
			continue
		}
		fmt.Printf("| %s | %s | %s | %s–%s | %d |\n", row, unit, formatValue(median(xs), unit),
			formatValue(slices.Min(xs), unit), formatValue(slices.Max(xs), unit), len(xs))
	}
	fmt.Println("\nW1: one goroutine, one event per append, with the expected version; W2: atomic batches of 100 events to one of 10 streams; " +
		"W3: 8 goroutines, each its own stream. Open: natsstore.OpenConn of a new client, the server already running, on the stream of the open dataset " +
		"(built once, with Load: atomic batches of 1,000 events over 10,000 streams), from the index checkpoint written at the loading client's Close, " +
		"and reading the whole stream (WithIndexCheckpoints(0)).")
	if jsonOut != "" {
		data, err := json.MarshalIndent(struct {
			Machine Machine  `json:"machine"`
			Config  Config   `json:"config"`
			Runs    int      `json:"runs"`
			Results []Result `json:"results"`
		}{m, cfg, runs, results}, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(jsonOut, data, 0o644)
	}
	return nil
}
