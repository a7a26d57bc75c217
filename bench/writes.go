package main

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// writeWorkload prepares a store (untimed) and returns the timed part,
// which appends until the deadline or maxOps events and returns how many.
// Streams are named with prefix (a store that already holds the workload's
// streams, as in -scale, gets a new prefix). W1 and W3 record the latency
// of every append into lat, one histogram per goroutine.
type writeWorkload struct {
	id, row    string
	goroutines int // appending goroutines with a latency histogram each; 0: not recorded
	setup      func(st Store, prefix string, lat latencies) (func(until time.Time, maxOps int) (int, error), error)
}

func writeWorkloads() []writeWorkload {
	return []writeWorkload{
		{"W1", "W1 append 1 event", 1, w1},
		{"W2", "W2 batch of 100", 0, w2},
		{"W3", "W3 8 goroutines", 8, w3(8)},
		{"W3", "W3 64 goroutines", 64, w3(64)},
	}
}

// latencyRow names the rows of a workload's append latency and GC pauses:
// "W1 durable, append latency p99".
func (w writeWorkload) latencyRow(durable bool, what string) string {
	name := w.id
	if w.id == "W3" {
		name = w.row
	}
	return name + " " + modeName(durable) + ", " + what
}

// w1: one goroutine appends one event at a time to one stream, each
// with the expected version.
func w1(st Store, prefix string, lat latencies) (func(time.Time, int) (int, error), error) {
	var v uint64
	stream := prefix + "w1"
	for i := range 5 { // warm-up: creates the stream and the files
		var err error
		if v, err = st.Append(stream, int64(v), one(i)); err != nil {
			return nil, err
		}
	}
	return func(until time.Time, maxOps int) (int, error) {
		n := 0
		for ; n < maxOps; n++ {
			t0 := time.Now()
			if !t0.Before(until) {
				break
			}
			nv, err := st.Append(stream, int64(v), one(n))
			if err != nil {
				return n, err
			}
			lat[0].record(time.Since(t0))
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
func w2(st Store, prefix string, _ latencies) (func(time.Time, int) (int, error), error) {
	const size, streams = 100, 10
	batch := make([][]byte, size)
	for i := range batch {
		batch[i] = payload(i)
	}
	versions := make([]uint64, streams)
	for s := range versions { // warm-up
		var err error
		if versions[s], err = st.Append(fmt.Sprintf("%sw2-%d", prefix, s), 0, batch); err != nil {
			return nil, err
		}
	}
	return func(until time.Time, maxOps int) (int, error) {
		n := 0
		for i := 0; n+size <= maxOps && time.Now().Before(until); i++ {
			s := i % streams
			nv, err := st.Append(fmt.Sprintf("%sw2-%d", prefix, s), int64(versions[s]), batch)
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
func w3(g int) func(Store, string, latencies) (func(time.Time, int) (int, error), error) {
	return func(st Store, prefix string, lat latencies) (func(time.Time, int) (int, error), error) {
		for w := range g { // warm-up: one event per stream
			if _, err := st.Append(fmt.Sprintf("%sw3-%d", prefix, w), 0, one(w)); err != nil {
				return nil, err
			}
		}
		return func(until time.Time, maxOps int) (int, error) {
			var total atomic.Int64
			var wg sync.WaitGroup
			errs := make([]error, g)
			for w := range g {
				wg.Go(func() {
					stream, v := fmt.Sprintf("%sw3-%d", prefix, w), uint64(1)
					h := &lat[w]
					for i := 0; total.Add(1) <= int64(maxOps); i++ {
						t0 := time.Now()
						if !t0.Before(until) {
							break
						}
						nv, err := st.Append(stream, int64(v), one(i))
						if err != nil {
							errs[w] = err
							return
						}
						h.record(time.Since(t0))
						v = nv
					}
					total.Add(-1) // the increment that ended the loop wrote nothing
				})
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

// write runs w in a new store, with the fsync rate measured right before
// and after it in durable mode.
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
	res, err := r.timeWrite(st, w, durable, "")
	if err != nil {
		return err
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
		res[0].FsyncAlongside = (before + after) / 2
	}
	for _, x := range res {
		r.add(x)
	}
	return nil
}

// timeWrite runs w on the open store st and returns its rate, then, for a
// workload with latency histograms in durable mode, the rows of its append
// latency quantiles and of the GC's pause p99 during the run. (Relaxed
// runs keep their quantiles in the rate's Extra.)
func (r *runner) timeWrite(st Store, w writeWorkload, durable bool, prefix string) ([]Result, error) {
	lat := newLatencies(max(w.goroutines, 1))
	run, err := w.setup(st, prefix, lat)
	if err != nil {
		return nil, err
	}
	row := w.row + " " + modeName(durable)
	var n int
	var elapsed time.Duration
	var gcBefore gcPauses
	err = r.profile(row, func() error {
		gcBefore = readGCPauses()
		start := time.Now()
		var err error
		n, err = run(start.Add(r.cfg.WriteTime), r.cfg.MaxOps)
		elapsed = time.Since(start)
		return err
	})
	if err != nil {
		return nil, err
	}
	gcs, gcP99 := readGCPauses().since(gcBefore)
	res := Result{Row: row, Value: float64(n) / elapsed.Seconds(), Unit: "events/s", Ops: n, Seconds: elapsed.Seconds(), Extra: map[string]float64{}}
	if s, ok := st.(statser); ok {
		maps.Copy(res.Extra, s.Extra())
	}
	out := []Result{res} // shares res.Extra, filled in below
	if w.goroutines == 0 {
		return out, nil
	}
	h := lat.merged()
	res.Extra["gc_cycles"], res.Extra["gc_pause_p99_us"] = float64(gcs), micros(gcP99)
	res.Extra["latency_max_us"] = micros(h.max)
	for _, q := range latencyQuantiles {
		v := micros(h.quantile(q.q))
		res.Extra["latency_"+q.name+"_us"] = v
		if durable {
			out = append(out, Result{Row: w.latencyRow(durable, "append latency "+q.name), Value: v, Unit: "µs", Ops: int(h.n)})
		}
	}
	if durable {
		out = append(out, Result{Row: w.latencyRow(durable, "GC pause p99"), Value: micros(gcP99), Unit: "µs", Ops: int(gcs),
			Extra: map[string]float64{"gc_cycles": float64(gcs)}})
	}
	return out, nil
}
