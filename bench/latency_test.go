package main

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
)

// TestLatHistQuantiles compares the histogram's quantiles with a sorted
// sample of the same durations: each within the 1/128 bucket width above.
func TestLatHistQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var parts latencies = newLatencies(4)
	var sample []time.Duration
	for i := range 100_000 {
		// log-uniform from 50 ns to 50 ms, as append latencies spread
		d := time.Duration(50 * math.Exp(rng.Float64()*math.Log(1e6)))
		parts[i%4].record(d)
		sample = append(sample, d)
	}
	slices.Sort(sample)
	h := parts.merged()
	if h.n != uint64(len(sample)) || h.max != sample[len(sample)-1] {
		t.Fatalf("merged: %d records, max %v; want %d, %v", h.n, h.max, len(sample), sample[len(sample)-1])
	}
	for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
		want := sample[max(int(math.Ceil(q*float64(len(sample))))-1, 0)]
		got := h.quantile(q)
		if got < want || float64(got) > float64(want)*(1+1.0/128)+1 {
			t.Errorf("q%g: %v, sample says %v", q, got, want)
		}
	}
	var empty latHist
	if empty.quantile(0.99) != 0 {
		t.Errorf("empty histogram: %v", empty.quantile(0.99))
	}
	for i := range latBuckets - 1 {
		if latIndex(uint64(latValue(i))) != i || latIndex(uint64(latValue(i))+1) != i+1 {
			t.Fatalf("bucket %d: upper bound %d maps to %d", i, latValue(i), latIndex(uint64(latValue(i))))
		}
	}
}

func TestGCPausesSince(t *testing.T) {
	before := gcPauses{counts: []uint64{5, 0, 0, 0}, buckets: []float64{0, 1e-6, 1e-5, 1e-4, math.Inf(1)}}
	after := gcPauses{counts: []uint64{104, 1, 0, 0}, buckets: before.buckets}
	if n, p99 := after.since(before); n != 100 || p99 != time.Microsecond {
		t.Errorf("99 of 100 pauses under 1 µs: %d pauses, p99 %v", n, p99)
	}
	after.counts[1] = 3
	if n, p99 := after.since(before); n != 102 || p99 != 10*time.Microsecond {
		t.Errorf("3 of 102 pauses up to 10 µs: %d pauses, p99 %v", n, p99)
	}
	if n, p99 := before.since(before); n != 0 || p99 != 0 {
		t.Errorf("no pause: %d, %v", n, p99)
	}
	// The live histogram: a forced GC is one more pause at least.
	b := readGCPauses()
	runtime.GC()
	if n, _ := readGCPauses().since(b); n == 0 {
		t.Errorf("no GC pause counted across runtime.GC")
	}
}
