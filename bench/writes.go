package main

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

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
