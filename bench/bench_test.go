package main

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPayloadIs200Bytes(t *testing.T) {
	for i := range payloads {
		if len(payload(i)) != payloadSize {
			t.Fatalf("payload %d is %d bytes", i, len(payload(i)))
		}
		if err := decodePayload(payload(i)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAdapters runs every adapter through appends, version conflicts
// (also between concurrent writers), an atomic batch, a bulk load, reads
// and a reopen.
func TestAdapters(t *testing.T) {
	for _, b := range append(backends, extraBackends...) {
		t.Run(b.Name(), func(t *testing.T) {
			dir := t.TempDir()
			st, err := b.Open(dir, true)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = st.Close() }()
			mustVersion := func(want uint64) func(uint64, error) {
				return func(v uint64, err error) {
					t.Helper()
					if err != nil || v != want {
						t.Fatalf("append: version %d, %v; want %d", v, err, want)
					}
				}
			}
			mustConflict := func(_ uint64, err error) {
				t.Helper()
				if !errors.Is(err, ErrConflict) {
					t.Fatalf("append: %v, want a version conflict", err)
				}
			}
			mustVersion(1)(st.Append("a", 0, one(0)))
			mustVersion(3)(st.Append("a", 1, [][]byte{payload(1), payload(2)})) // atomic batch
			mustConflict(st.Append("a", 1, one(3)))
			mustConflict(st.Append("a", 0, one(3)))
			mustConflict(st.Append("b", 2, one(3)))
			mustVersion(1)(st.Append("b", Any, one(4)))
			mustVersion(4)(st.Append("a", Any, one(5)))

			// Concurrent writers expecting the same version: exactly one wins.
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Go(func() { _, errs[i] = st.Append("a", 4, one(10+i)) })
			}
			wg.Wait()
			won := 0
			for _, err := range errs {
				switch {
				case err == nil:
					won++
				case !errors.Is(err, ErrConflict):
					t.Fatalf("concurrent append: %v", err)
				}
			}
			if won != 1 {
				t.Fatalf("%d of 8 concurrent appends at version 4 succeeded", won)
			}

			if err := st.Load([]Item{{"c", payload(20)}, {"d", payload(21)}, {"c", payload(22)}}); err != nil {
				t.Fatal(err)
			}
			checkStream(t, st, "a", 5, []int{0, 1, 2, 5, -1})
			checkStream(t, st, "c", 2, []int{20, 22})
			checkStream(t, st, "missing", 0, nil)
			checkAll(t, st, 9)
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}

			// Reopen (relaxed): the versions and sequences carry on.
			if st, err = b.Open(dir, false); err != nil {
				t.Fatal(err)
			}
			mustConflict(st.Append("a", 4, one(30)))
			mustVersion(6)(st.Append("a", 5, one(30)))
			mustVersion(3)(st.Append("c", 2, one(31)))
			checkStream(t, st, "a", 6, []int{0, 1, 2, 5, -1, 30})
			checkAll(t, st, 11)
		})
	}
}

// checkStream reads stream and compares versions and payloads (-1: any payload).
func checkStream(t *testing.T, st Store, stream string, n int, want []int) {
	t.Helper()
	var got int
	var lastSeq uint64
	err := st.ReadStream(stream, func(ev Event) error {
		got++
		if ev.Version != uint64(got) || ev.Stream != stream || ev.Seq <= lastSeq {
			return fmt.Errorf("event %d: %s v%d seq %d", got, ev.Stream, ev.Version, ev.Seq)
		}
		lastSeq = ev.Seq
		if w := want[got-1]; w >= 0 && !bytes.Equal(ev.Payload, payload(w)) {
			return fmt.Errorf("event %d: wrong payload", got)
		}
		return decodePayload(ev.Payload)
	})
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	if got != n {
		t.Fatalf("read %s: %d events, want %d", stream, got, n)
	}
}

// checkAll reads every event, decoding the payloads, and checks the order
// and the versions; then a decode that fails ends the read with its error.
func checkAll(t *testing.T, st Store, n int) {
	t.Helper()
	errBad := errors.New("bad payload")
	calls := 0
	err := st.ReadAll(func([]byte) error { return errBad }, func(Event) error { calls++; return nil })
	if !errors.Is(err, errBad) || calls != 0 {
		t.Fatalf("read all with a failing decode: %v after %d events", err, calls)
	}
	var seqs []uint64
	versions := map[string]uint64{}
	err = st.ReadAll(decodePayload, func(ev Event) error {
		seqs = append(seqs, ev.Seq)
		versions[ev.Stream]++
		if ev.Version != versions[ev.Stream] {
			return fmt.Errorf("seq %d: %s v%d, want v%d", ev.Seq, ev.Stream, ev.Version, versions[ev.Stream])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seqs) != n || !slices.IsSorted(seqs) || len(slices.Compact(slices.Clone(seqs))) != n {
		t.Fatalf("read all: sequences %v, want %d increasing", seqs, n)
	}
}

// TestWorkloadsTiny runs every phase of every workload on a tiny scale.
func TestWorkloadsTiny(t *testing.T) {
	cfg := Config{Dir: t.TempDir(), WriteTime: 20 * time.Millisecond, MaxOps: 500, ReadTime: 20 * time.Millisecond,
		Streams: 20, PerStream: 5, FadviseOnly: true}
	for _, b := range backends {
		t.Run(b.Name(), func(t *testing.T) {
			r := &runner{cfg: cfg, b: b, run: 1}
			for _, phase := range []func() error{r.writes, r.load, r.reads} {
				if err := phase(); err != nil {
					t.Fatal(err)
				}
			}
			rowsSeen := map[string]bool{}
			for _, res := range r.out {
				if res.Value <= 0 && res.Unit != "MiB" && !strings.HasSuffix(res.Row, "GC pause p99") {
					t.Errorf("%s: %v %s", res.Row, res.Value, res.Unit)
				}
				rowsSeen[res.Row] = true
			}
			for _, want := range []string{"W1 append 1 event durable", "W1 durable, append latency p99.9", "W3 64 goroutines durable, GC pause p99", "W3 64 goroutines relaxed", "W4 load 1 stream of 100", "W5 full replay, decoded", "W6 cold open + first read", "bytes on disk per event", "bytes on disk per event, written", "heap after open + first read", "heap after open, bytes per event"} {
				if !rowsSeen[want] {
					t.Errorf("no result for %q", want)
				}
			}
			sum := summarize(r.out, []string{b.Name()}, Limits{FsyncFallocate: 1000, WriteMiBps: 100, DecodeNs: 500}, nil)
			var buf bytes.Buffer
			writeTable(&buf, sum, []string{b.Name()}, 1)
			if !bytes.Contains(buf.Bytes(), []byte("| W5 full replay, decoded | events/s |")) || !bytes.Contains(buf.Bytes(), []byte("| "+fsyncShare+" | % |")) {
				t.Errorf("table:\n%s", buf.String())
			}
		})
	}
}

// TestNatsSuiteTiny runs the natsstore rows (-natsstore) on a tiny scale.
func TestNatsSuiteTiny(t *testing.T) {
	cfg := Config{Dir: t.TempDir(), WriteTime: 20 * time.Millisecond, MaxOps: 500, NatsOpenEvents: 2500}
	r := &runner{cfg: cfg, b: natsBackend{}, run: 1}
	if err := r.natsSuite(); err != nil {
		t.Fatal(err)
	}
	got := map[string]Result{}
	for _, res := range r.out {
		if res.Value <= 0 && !strings.HasSuffix(res.Row, "GC pause p99") { // no GC in 20 ms is fine
			t.Errorf("%s: %v %s", res.Row, res.Value, res.Unit)
		}
		got[res.Row] = res
	}
	for _, row := range natsRows {
		if _, ok := got[row]; !ok {
			t.Errorf("no result for %q", row)
		}
	}
	if ex := got["open, index checkpoint"].Extra; ex["events_restored"] != 2500 || ex["events_replayed"] != 0 {
		t.Errorf("open from the checkpoint: %v", ex)
	}
	if ex := got["open, whole stream"].Extra; ex["events_restored"] != 0 || ex["events_replayed"] != 2500 {
		t.Errorf("open without the checkpoint: %v", ex)
	}
}
