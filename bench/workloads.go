package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"
)

// Config sizes the workloads.
type Config struct {
	Quick      bool
	Dir        string        // this invocation's directory (removed at the end)
	WriteTime  time.Duration // each write workload runs this long...
	MaxOps     int           // ...or until this many events
	ReadTime   time.Duration // W4 runs this long
	Streams    int           // read dataset: Streams × PerStream events
	PerStream  int
	ProfileDir string          // CPU profile per workload of the first run, if set
	Only       map[string]bool // workload ids (W1...W6); empty: all
	// FadviseOnly evicts only the store's files from the page cache in W6
	// (tests: leaves the rest of the machine's cache alone).
	FadviseOnly bool `json:"-"`
	// NatsOpenEvents sizes the Open dataset of the natsstore rows
	// (-natsstore); 0: 1,000,000, or 100,000 with Quick.
	NatsOpenEvents int `json:",omitempty"`
}

func fullConfig() Config {
	return Config{WriteTime: 2 * time.Second, MaxOps: 2_000_000, ReadTime: 2 * time.Second, Streams: 10_000, PerStream: 100}
}

func quickConfig() Config {
	return Config{Quick: true, WriteTime: 250 * time.Millisecond, MaxOps: 200_000, ReadTime: 250 * time.Millisecond, Streams: 1_000, PerStream: 100}
}

func (c Config) events() int { return c.Streams * c.PerStream }

func (c Config) want(id string) bool { return len(c.Only) == 0 || c.Only[id] }

func (c Config) wantReads() bool { return c.want("W4") || c.want("W5") || c.want("W6") }

// Result is one measurement of one run.
type Result struct {
	Backend string             `json:"backend"`
	Row     string             `json:"row"` // the table row, e.g. "W1 durable"
	Run     int                `json:"run"`
	Value   float64            `json:"value"`
	Unit    string             `json:"unit"`
	Ops     int                `json:"ops,omitempty"`
	Seconds float64            `json:"seconds,omitempty"`
	Extra   map[string]float64 `json:"extra,omitempty"`
	Note    string             `json:"note,omitempty"`
	// FsyncAlongside is the fsync rate measured right before and after a
	// durable write workload (the mean of the two).
	FsyncAlongside float64 `json:"fsync_alongside,omitempty"`
}

// statser is implemented by adapters with counters worth keeping.
type statser interface{ Extra() map[string]float64 }

// checkpointDropper is implemented by batpak: W6 also runs without its checkpoint.
type checkpointDropper interface{ DropCheckpoint(dir string) error }

// runner runs one phase of one backend in a child process.
type runner struct {
	cfg Config
	b   Backend
	run int
	out []Result
}

func (r *runner) add(res Result) {
	res.Backend, res.Run = r.b.Name(), r.run
	r.out = append(r.out, res)
}

func modeName(durable bool) string {
	if durable {
		return "durable"
	}
	return "relaxed"
}

func streamName(i int) string { return fmt.Sprintf("s-%05d", i) }

func one(i int) [][]byte { return [][]byte{payload(i)} }

// profile runs fn under the CPU profiler on the first run when -cpuprofile is set.
func (r *runner) profile(row string, fn func() error) error {
	if r.cfg.ProfileDir == "" || r.run != 1 {
		return fn()
	}
	name := fmt.Sprintf("%s-%s.pprof", r.b.Name(), sanitize(row))
	f, err := os.Create(filepath.Join(r.cfg.ProfileDir, name))
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	defer pprof.StopCPUProfile()
	return fn()
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}

// writeWorkload prepares a store (untimed) and returns the timed part,
// which appends until the deadline or maxOps events and returns how many.
type writeWorkload struct {
	id, row string
	setup   func(st Store) (func(until time.Time, maxOps int) (int, error), error)
}

func writeWorkloads() []writeWorkload {
	return []writeWorkload{
		{"W1", "W1 append 1 event", w1},
		{"W2", "W2 batch of 100", w2},
		{"W3", "W3 8 goroutines", w3(8)},
		{"W3", "W3 64 goroutines", w3(64)},
	}
}

// w1: one goroutine appends one event at a time to one stream, each
// with the expected version.
func w1(st Store) (func(time.Time, int) (int, error), error) {
	var v uint64
	for i := range 5 { // warm-up: creates the stream and the files
		var err error
		if v, err = st.Append("w1", int64(v), one(i)); err != nil {
			return nil, err
		}
	}
	return func(until time.Time, maxOps int) (int, error) {
		n := 0
		for ; n < maxOps && time.Now().Before(until); n++ {
			nv, err := st.Append("w1", int64(v), one(n))
			if err != nil {
				return n, err
			}
			if nv != v+1 {
				return n, fmt.Errorf("w1: version %d after %d", nv, v)
			}
			v = nv
		}
		return n, nil
	}, nil
}

// w2: one goroutine appends atomic batches of 100 events, each batch to
// one of 10 streams with the expected version.
func w2(st Store) (func(time.Time, int) (int, error), error) {
	const size, streams = 100, 10
	batch := make([][]byte, size)
	for i := range batch {
		batch[i] = payload(i)
	}
	versions := make([]uint64, streams)
	for s := range versions { // warm-up
		var err error
		if versions[s], err = st.Append(fmt.Sprintf("w2-%d", s), 0, batch); err != nil {
			return nil, err
		}
	}
	return func(until time.Time, maxOps int) (int, error) {
		n := 0
		for i := 0; n+size <= maxOps && time.Now().Before(until); i++ {
			s := i % streams
			nv, err := st.Append(fmt.Sprintf("w2-%d", s), int64(versions[s]), batch)
			if err != nil {
				return n, err
			}
			if nv != versions[s]+size {
				return n, fmt.Errorf("w2: version %d after %d", nv, versions[s])
			}
			versions[s] = nv
			n += size
		}
		return n, nil
	}, nil
}

// w3: g goroutines append one event at a time, each to its own stream
// with the expected version.
func w3(g int) func(st Store) (func(time.Time, int) (int, error), error) {
	return func(st Store) (func(time.Time, int) (int, error), error) {
		for w := range g { // warm-up: one event per stream
			if _, err := st.Append(fmt.Sprintf("w3-%d", w), 0, one(w)); err != nil {
				return nil, err
			}
		}
		return func(until time.Time, maxOps int) (int, error) {
			var total atomic.Int64
			var wg sync.WaitGroup
			errs := make([]error, g)
			for w := range g {
				wg.Add(1)
				go func() {
					defer wg.Done()
					stream, v := fmt.Sprintf("w3-%d", w), uint64(1)
					for i := 0; total.Add(1) <= int64(maxOps) && time.Now().Before(until); i++ {
						nv, err := st.Append(stream, int64(v), one(i))
						if err != nil {
							errs[w] = err
							return
						}
						v = nv
					}
					total.Add(-1) // the increment that ended the loop wrote nothing
				}()
			}
			wg.Wait()
			return int(min(total.Load(), int64(maxOps))), errors.Join(errs...)
		}, nil
	}
}

// writes runs the write workloads in both modes, each in a new store.
func (r *runner) writes() error {
	for _, durable := range []bool{true, false} {
		for _, w := range writeWorkloads() {
			if !r.cfg.want(w.id) {
				continue
			}
			if err := r.write(w, durable); err != nil {
				return fmt.Errorf("%s %s: %w", w.row, modeName(durable), err)
			}
		}
	}
	return nil
}

func (r *runner) write(w writeWorkload, durable bool) error {
	dir, err := os.MkdirTemp(r.cfg.Dir, r.b.Name()+"-write-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	refTime := r.cfg.WriteTime / 10
	var before float64
	if durable {
		if before, err = fsyncNow(dir, refTime); err != nil {
			return err
		}
	}
	st, err := r.b.Open(dir, durable)
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			_ = st.Close()
		}
	}()
	run, err := w.setup(st)
	if err != nil {
		return err
	}
	row := w.row + " " + modeName(durable)
	var n int
	var elapsed time.Duration
	err = r.profile(row, func() error {
		start := time.Now()
		var err error
		n, err = run(start.Add(r.cfg.WriteTime), r.cfg.MaxOps)
		elapsed = time.Since(start)
		return err
	})
	if err != nil {
		return err
	}
	res := Result{Row: row, Value: float64(n) / elapsed.Seconds(), Unit: "events/s", Ops: n, Seconds: elapsed.Seconds()}
	if s, ok := st.(statser); ok {
		res.Extra = s.Extra()
	}
	closed = true
	if err := st.Close(); err != nil {
		return err
	}
	if durable {
		after, err := fsyncNow(dir, refTime)
		if err != nil {
			return err
		}
		res.FsyncAlongside = (before + after) / 2
	}
	r.add(res)
	return nil
}

func (r *runner) dataDir() string { return filepath.Join(r.cfg.Dir, r.b.Name()+"-data") }

// load builds the read dataset (once per invocation): Streams streams of
// PerStream events, appended in rounds so that streams interleave, 1,000
// events per Load, in the relaxed mode; then closes the store.
func (r *runner) load() error {
	dir := r.dataDir()
	if _, err := os.Stat(dir + ".done"); err == nil {
		return nil
	}
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	mem := startMemWatch()
	st, err := r.b.Open(dir, false)
	if err != nil {
		return err
	}
	start := time.Now()
	deadline := start.Add(15 * time.Minute)
	items := make([]Item, 0, 1000)
	n := 0
	for v := 0; v < r.cfg.PerStream; v++ {
		for s := 0; s < r.cfg.Streams; s++ {
			items = append(items, Item{Stream: streamName(s), Payload: payload(n)})
			n++
			if len(items) == cap(items) || n == r.cfg.events() {
				if err := st.Load(items); err != nil {
					_ = st.Close()
					return err
				}
				items = items[:0]
				if time.Now().After(deadline) {
					_ = st.Close()
					return fmt.Errorf("loading took over 15 minutes (%d events)", n)
				}
			}
		}
	}
	if err := st.Close(); err != nil {
		return err
	}
	elapsed := time.Since(start)
	hwm, anon := mem.stop()
	bytes, err := diskUsage(dir)
	if err != nil {
		return err
	}
	r.add(Result{Row: "bulk load", Value: float64(n) / elapsed.Seconds(), Unit: "events/s", Ops: n, Seconds: elapsed.Seconds()})
	r.add(Result{Row: "bytes on disk per event", Value: float64(bytes) / float64(n), Unit: "bytes", Ops: n})
	r.add(Result{Row: "peak RSS, bulk load", Value: hwm, Unit: "MiB", Extra: map[string]float64{"peak_anon_mib": anon}})
	return os.WriteFile(dir+".done", nil, 0o600)
}

// reads runs W6 (cold open and first read), then W5 (full replay) and W4
// (stream loads) with the files in the page cache, in one process whose
// peak memory is reported.
func (r *runner) reads() error {
	dir := r.dataDir()
	rng := rand.New(rand.NewPCG(uint64(r.run), 7))
	mem := startMemWatch()
	var st Store
	defer func() {
		if st != nil {
			_ = st.Close()
		}
	}()
	coldOpen := func(row string) error {
		method, err := dropCaches(dir, r.cfg.FadviseOnly)
		if err != nil {
			return err
		}
		var elapsed time.Duration
		err = r.profile(row, func() error {
			start := time.Now()
			var err error
			if st, err = r.b.Open(dir, true); err != nil {
				return err
			}
			if err := r.loadStream(st, streamName(rng.IntN(r.cfg.Streams))); err != nil {
				return err
			}
			elapsed = time.Since(start)
			return nil
		})
		if err != nil {
			return err
		}
		res := Result{Row: row, Value: float64(elapsed.Microseconds()) / 1000, Unit: "ms", Seconds: elapsed.Seconds(), Note: "page cache: " + method}
		if s, ok := st.(statser); ok {
			res.Extra = s.Extra()
		}
		r.add(res)
		return nil
	}
	if r.cfg.want("W6") {
		if err := coldOpen("W6 cold open + first read"); err != nil {
			return err
		}
		if d, ok := r.b.(checkpointDropper); ok {
			if err := st.Close(); err != nil {
				return err
			}
			st = nil
			if err := d.DropCheckpoint(dir); err != nil {
				return err
			}
			// Close writes a new checkpoint for the runs that follow.
			if err := coldOpen("W6 without checkpoint"); err != nil {
				return err
			}
		}
	} else {
		var err error
		if st, err = r.b.Open(dir, true); err != nil {
			return err
		}
	}
	if err := warm(dir); err != nil {
		return err
	}
	if r.cfg.want("W5") {
		// Decoded the backend's own way (batpak: in worker goroutines),
		// decoded by the reader itself (the same for every backend), and
		// not decoded.
		for _, m := range []struct {
			row, profile string
			decode       func([]byte) error // handed to the backend
			inline       bool               // decode in the reading goroutine
		}{
			{"W5 full replay, decoded", "W5 replay", decodePayload, false},
			{"W5 full replay, decoded in the reading goroutine", "W5 replay decoded inline", nil, true},
			{"W5 full replay, payload not decoded", "W5 replay undecoded", nil, false},
		} {
			if err := r.replay(st, m.row, m.profile, m.decode, m.inline); err != nil {
				return err
			}
		}
	}
	if r.cfg.want("W4") {
		n := 0
		var elapsed time.Duration
		err := r.profile("W4 load stream", func() error {
			start := time.Now()
			until := start.Add(r.cfg.ReadTime)
			for ; n < r.cfg.MaxOps && time.Now().Before(until); n++ {
				if err := r.loadStream(st, streamName(rng.IntN(r.cfg.Streams))); err != nil {
					return err
				}
			}
			elapsed = time.Since(start)
			return nil
		})
		if err != nil {
			return err
		}
		r.add(Result{Row: "W4 load 1 stream of 100", Value: float64(elapsed.Microseconds()) / float64(n), Unit: "µs", Ops: n, Seconds: elapsed.Seconds()})
	}
	err := st.Close()
	st = nil
	if err != nil {
		return err
	}
	hwm, anon := mem.stop()
	r.add(Result{Row: "peak RSS, open + reads", Value: hwm, Unit: "MiB"})
	r.add(Result{Row: "peak anon RSS, open + reads", Value: anon, Unit: "MiB"})
	return nil
}

// replay reads the whole dataset in order once and records the rate as row.
func (r *runner) replay(st Store, row, profile string, decode func([]byte) error, inline bool) error {
	var n int
	var elapsed time.Duration
	err := r.profile(profile, func() error {
		var last uint64
		fn := func(ev Event) error {
			if ev.Seq <= last {
				return fmt.Errorf("replay: sequence %d after %d", ev.Seq, last)
			}
			last = ev.Seq
			n++
			return nil
		}
		if inline {
			fn = decodeInline(decodePayload, fn)
		}
		start := time.Now()
		err := st.ReadAll(decode, fn)
		elapsed = time.Since(start)
		return err
	})
	if err != nil {
		return err
	}
	if n != r.cfg.events() {
		return fmt.Errorf("replay: %d events, want %d", n, r.cfg.events())
	}
	r.add(Result{Row: row, Value: float64(n) / elapsed.Seconds(), Unit: "events/s", Ops: n, Seconds: elapsed.Seconds()})
	return nil
}

// loadStream reads and decodes one stream of the dataset, as an aggregate load would.
func (r *runner) loadStream(st Store, stream string) error {
	var v uint64
	err := st.ReadStream(stream, func(ev Event) error {
		v++
		if ev.Version != v || ev.Stream != stream {
			return fmt.Errorf("read %s: got %s v%d, want v%d", stream, ev.Stream, ev.Version, v)
		}
		return decodePayload(ev.Payload)
	})
	if err == nil && v != uint64(r.cfg.PerStream) {
		err = fmt.Errorf("read %s: %d events, want %d", stream, v, r.cfg.PerStream)
	}
	return err
}
