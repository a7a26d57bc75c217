package main

import (
	"math"
	"math/bits"
	"runtime/metrics"
	"time"
)

// latHist is an HDR-style histogram of durations: log-linear buckets, 128
// per power of two, so a quantile is within 0.8% of the recorded value,
// from 1 ns to about 4.5 minutes, in fixed memory (32 KiB) with no
// allocation per record. Each appending goroutine records into its own
// histogram; the workload merges them at the end, so recording costs no
// synchronisation. A sorted sample would be exact, but W3 × 64 records
// hundreds of thousands of appends and the sample would grow (and be
// collected) during the run it measures.
type latHist struct {
	counts [latBuckets]uint64
	n      uint64
	max    time.Duration
}

const (
	latSubBits = 7 // 128 linear sub-buckets per power of two
	latSub     = 1 << latSubBits
	latBuckets = (38 - latSubBits + 1) * latSub // values up to 2^38 ns
)

// latIndex maps a duration in ns to its bucket.
func latIndex(v uint64) int {
	if v < latSub {
		return int(v) // exact below 128 ns
	}
	e := bits.Len64(v) - latSubBits // ≥ 1
	i := e*latSub + int(v>>(e-1)) - latSub
	return min(i, latBuckets-1)
}

// latValue is the largest duration in bucket i (quantiles round up).
func latValue(i int) time.Duration {
	if i < latSub {
		return time.Duration(i)
	}
	e := i / latSub
	sub := uint64(i%latSub + latSub)
	return time.Duration((sub+1)<<(e-1) - 1)
}

func (h *latHist) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[latIndex(uint64(d))]++
	h.n++
	h.max = max(h.max, d)
}

func (h *latHist) merge(o *latHist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the duration at or below which a fraction q of the
// records lie (0 if there are none).
func (h *latHist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			return min(latValue(i), h.max)
		}
	}
	return h.max
}

// latencies holds one histogram per appending goroutine.
type latencies []latHist

func newLatencies(goroutines int) latencies { return make(latencies, goroutines) }

func (l latencies) merged() *latHist {
	var h latHist
	for i := range l {
		h.merge(&l[i])
	}
	return &h
}

// latencyQuantiles are the quantiles the table shows, with their row suffixes.
var latencyQuantiles = []struct {
	q    float64
	name string
}{{0.50, "p50"}, {0.99, "p99"}, {0.999, "p99.9"}}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

// gcPauses reads the runtime's cumulative histogram of stop-the-world
// pauses for garbage collection ("/sched/pauses/total/gc:seconds", which
// replaced "/gc/pauses:seconds" in Go 1.22). The difference of two
// snapshots is the pauses in between.
type gcPauses struct {
	counts  []uint64
	buckets []float64 // seconds; len(counts)+1 boundaries
}

const gcPauseMetric = "/sched/pauses/total/gc:seconds"

func readGCPauses() gcPauses {
	s := []metrics.Sample{{Name: gcPauseMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return gcPauses{}
	}
	h := s[0].Value.Float64Histogram()
	return gcPauses{counts: append([]uint64(nil), h.Counts...), buckets: h.Buckets}
}

// since returns how many pauses happened after before and the p99 of
// them: the upper bound of the bucket that holds it (the runtime's
// buckets are a few percent wide in this range), 0 if there was none.
func (g gcPauses) since(before gcPauses) (n uint64, p99 time.Duration) {
	diff := make([]uint64, len(g.counts))
	for i, c := range g.counts {
		if i < len(before.counts) {
			c -= before.counts[i]
		}
		diff[i] = c
		n += c
	}
	if n == 0 {
		return 0, 0
	}
	rank := max(uint64(math.Ceil(0.99*float64(n))), 1)
	var seen uint64
	for i, c := range diff {
		if seen += c; seen >= rank {
			hi := g.buckets[i+1]
			if math.IsInf(hi, 1) {
				hi = g.buckets[i]
			}
			return n, time.Duration(hi * 1e9)
		}
	}
	return n, 0
}
