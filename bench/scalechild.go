package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"
)

// The child's side of -scale (see scale.go): build a store of
// cfg.events() events, or open it cold and measure it. Each runs in a
// process of its own, which the parent kills if its anonymous memory
// passes cfg.ScaleMem.

// scaleBatch is the size of each Load of a scale build: large batches in
// the relaxed mode, the fastest way each backend has to fill a store.
const scaleBatch = 10_000

// bulkFill appends streams × perStream events to st in rounds, so that
// streams interleave as an event log's do, batch events per Load; tick is
// called after every Load with the events so far.
func bulkFill(st Store, streams, perStream, batch int, tick func(n int) error) (int, error) {
	items := make([]Item, 0, batch)
	n, total := 0, streams*perStream
	for v := 0; v < perStream; v++ {
		for s := 0; s < streams; s++ {
			items = append(items, Item{Stream: streamName(s), Payload: payload(n)})
			n++
			if len(items) == cap(items) || n == total {
				if err := st.Load(items); err != nil {
					return n, err
				}
				items = items[:0]
				if err := tick(n); err != nil {
					return n, err
				}
			}
		}
	}
	return n, nil
}

// scaleDir is where the scale store of this size lives.
func (r *runner) scaleDir() string {
	return filepath.Join(r.cfg.Dir, fmt.Sprintf("%s-scale-%d", r.b.Name(), r.cfg.events()))
}

func (r *runner) limitMemory() {
	if r.cfg.ScaleMem > 0 {
		debug.SetMemoryLimit(r.cfg.ScaleMem * 9 / 10) // the GC tries; the parent enforces
	}
}

// scaleBuild builds the store in the relaxed mode, printing a progress
// line every twentieth of the way, and closes it cleanly.
func (r *runner) scaleBuild() error {
	r.limitMemory()
	dir, n := r.scaleDir(), r.cfg.events()
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
	every := max(n/20, 1)
	last, lastT := 0, start
	_, err = bulkFill(st, r.cfg.Streams, r.cfg.PerStream, scaleBatch, func(done int) error {
		if done/every == last/every && done != n {
			return nil
		}
		now := time.Now()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fp, _ := diskFootprint(dir)
		rate := float64(done) / now.Sub(start).Seconds()
		progress("scale build %s %s: %s events (%d%%), %s/s (last part %s/s), heap %.0f MiB, anon RSS %.0f MiB, %.2f GB on disk, about %s to go",
			r.b.Name(), thousands(int64(n)), thousands(int64(done)), 100*done/n, kilo(rate), kilo(float64(done-last)/now.Sub(lastT).Seconds()),
			float64(ms.HeapAlloc)/(1<<20), procStatusMiB("RssAnon"), float64(fp.Allocated)/1e9,
			time.Duration(float64(n-done)/rate*float64(time.Second)).Round(time.Second))
		last, lastT = done, now
		return nil
	})
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	hwm, anon := mem.stop()
	fp, err := diskFootprint(dir)
	if err != nil {
		return err
	}
	r.add(Result{Row: "bulk build", Value: float64(n) / elapsed.Seconds(), Unit: "events/s", Ops: n, Seconds: elapsed.Seconds()})
	r.addFootprint(fp, n)
	r.add(Result{Row: "peak RSS, build", Value: hwm, Unit: "MiB"})
	r.add(Result{Row: "peak anon RSS, build", Value: anon, Unit: "MiB"})
	return nil
}

// kilo formats a rate in thousands: "98.4k".
func kilo(v float64) string { return fmt.Sprintf("%.1fk", v/1000) }

// scaleOpen opens the built store cold (the page cache dropped as in W6)
// and reads one stream; then the memory after open, W4 on streams not
// read before (cold) and again (warm), and W1 and W3 durable appends into
// the store, with their latency. The store grows by what they append.
func (r *runner) scaleOpen() error {
	r.limitMemory()
	dir, n := r.scaleDir(), r.cfg.events()
	rng := rand.New(rand.NewPCG(uint64(n), 11))
	method, err := dropCaches(dir, r.cfg.FadviseOnly)
	if err != nil {
		return err
	}
	mem := startMemWatch()
	start := time.Now()
	st, err := r.b.Open(dir, true)
	if err != nil {
		return err
	}
	defer func() {
		if st != nil {
			_ = st.Close()
		}
	}()
	if err := r.loadStream(st, streamName(rng.IntN(r.cfg.Streams))); err != nil {
		return err
	}
	elapsed := time.Since(start)
	res := Result{Row: "cold open + first read", Value: float64(elapsed.Microseconds()) / 1000, Unit: "ms", Seconds: elapsed.Seconds(), Note: "page cache: " + method}
	if s, ok := st.(statser); ok {
		res.Extra = s.Extra()
	}
	r.add(res)
	hwm, anon := mem.peek()
	r.add(Result{Row: "peak RSS, open + first read", Value: hwm, Unit: "MiB"})
	r.add(Result{Row: "peak anon RSS, open + first read", Value: anon, Unit: "MiB"})
	r.heapAfterOpen(n)
	r.add(Result{Row: "RSS after open + first read", Value: procStatusMiB("VmRSS"), Unit: "MiB"})

	// W4: 200 streams chosen at random, each read once right after the
	// open (the segments' pages cold), then the same streams again for
	// ReadTime (warm).
	picks := rng.Perm(r.cfg.Streams)[:min(200, r.cfg.Streams)]
	t := time.Now()
	for _, s := range picks {
		if err := r.loadStream(st, streamName(s)); err != nil {
			return err
		}
	}
	d := time.Since(t)
	r.add(Result{Row: "W4 load 1 stream, cold", Value: micros(d) / float64(len(picks)), Unit: "µs", Ops: len(picks), Seconds: d.Seconds()})
	t = time.Now()
	reads := 0
	for ; reads < len(picks) || time.Since(t) < r.cfg.ReadTime; reads++ {
		if err := r.loadStream(st, streamName(picks[reads%len(picks)])); err != nil {
			return err
		}
	}
	d = time.Since(t)
	r.add(Result{Row: "W4 load 1 stream, warm", Value: micros(d) / float64(reads), Unit: "µs", Ops: reads, Seconds: d.Seconds()})

	prefix := fmt.Sprintf("scale-%d-", time.Now().UnixNano()) // new streams, also in a kept store
	refTime := r.cfg.WriteTime / 10
	for _, w := range writeWorkloads() {
		if w.goroutines == 0 {
			continue // W2 is not asked for at scale
		}
		before, err := fsyncNow(r.cfg.Dir, refTime)
		if err != nil {
			return err
		}
		out, err := r.timeWrite(st, w, true, fmt.Sprintf("%s%d-", prefix, w.goroutines))
		if err != nil {
			return fmt.Errorf("%s: %w", w.row, err)
		}
		after, err := fsyncNow(r.cfg.Dir, refTime)
		if err != nil {
			return err
		}
		out[0].FsyncAlongside = (before + after) / 2
		for _, x := range out {
			r.add(x)
		}
	}
	hwm, anon = mem.peek()
	r.add(Result{Row: "peak RSS, open + reads + appends", Value: hwm, Unit: "MiB"})
	r.add(Result{Row: "peak anon RSS, open + reads + appends", Value: anon, Unit: "MiB"})
	t = time.Now()
	err = st.Close() // writes the checkpoint of the whole store
	st = nil
	if err != nil {
		return err
	}
	d = time.Since(t)
	hwm, anon = mem.stop()
	r.add(Result{Row: "close (with its checkpoint)", Value: float64(d.Microseconds()) / 1000, Unit: "ms", Seconds: d.Seconds()})
	r.add(Result{Row: "peak RSS, to the end of close", Value: hwm, Unit: "MiB"})
	r.add(Result{Row: "peak anon RSS, to the end of close", Value: anon, Unit: "MiB"})
	return nil
}
