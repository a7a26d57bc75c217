package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

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
	n, err := bulkFill(st, r.cfg.Streams, r.cfg.PerStream, 1000, func(n int) error {
		if time.Now().After(deadline) {
			return fmt.Errorf("loading took over 15 minutes (%d events)", n)
		}
		return nil
	})
	if err != nil {
		_ = st.Close()
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	elapsed := time.Since(start)
	hwm, anon := mem.stop()
	fp, err := diskFootprint(dir)
	if err != nil {
		return err
	}
	r.add(Result{Row: "bulk load", Value: float64(n) / elapsed.Seconds(), Unit: "events/s", Ops: n, Seconds: elapsed.Seconds()})
	r.addFootprint(fp, n)
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
		r.heapAfterOpen(r.cfg.events())
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
		if err := r.loadStream(st, streamName(rng.IntN(r.cfg.Streams))); err != nil {
			return err
		}
		r.heapAfterOpen(r.cfg.events())
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
