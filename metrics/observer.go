package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
)

// StoreObserver is an [eventstore.Observer] that keeps the write path's
// timings in histograms, and the Prometheus collector of them. Give it to
// [eventstore.Open] with [eventstore.WithObserver] and register it.
type StoreObserver struct {
	appendSeconds  prometheus.Histogram
	commitSeconds  prometheus.Histogram
	commitRequests prometheus.Histogram
	commitEvents   prometheus.Histogram
	syncSeconds    prometheus.Histogram
	appendErrors   *prometheus.CounterVec
	// errs are appendErrors' counters, one a reason, resolved once so
	// that counting a failure looks up no label.
	errs [len(errorReasons)]prometheus.Counter
}

var (
	_ eventstore.Observer  = (*StoreObserver)(nil)
	_ prometheus.Collector = (*StoreObserver)(nil)
)

// latencyBuckets span 50 µs (a sync on a fast NVMe drive) to about 1.6 s
// (a sync stuck behind a busy disk), doubling.
var latencyBuckets = prometheus.ExponentialBuckets(50e-6, 2, 16)

// errorReasons are the values of the reason label of
// batpak_store_append_errors_total, in the order of reasonOf's indexes.
var errorReasons = [...]string{"conflict", "deleted", "invalid", "unavailable", "canceled", "other"}

// NewStoreObserver returns an observer with empty histograms.
func NewStoreObserver(opts ...Option) *StoreObserver {
	c := newConfig(opts)
	o := &StoreObserver{
		appendSeconds: c.histogram("store", "append_duration_seconds",
			"Time from an Append or AppendBatch call to its successful return: encoding, queueing, the group commit and its sync.", latencyBuckets),
		commitSeconds: c.histogram("store", "commit_duration_seconds",
			"Time one group commit took, from validating its first request to answering its last, writes and syncs included.", latencyBuckets),
		commitRequests: c.histogram("store", "commit_group_requests",
			"Requests (appends and syncs) committed together in one group commit.", prometheus.ExponentialBuckets(1, 2, 11)),
		commitEvents: c.histogram("store", "commit_group_events",
			"Events committed in one group commit.", prometheus.ExponentialBuckets(1, 4, 9)),
		syncSeconds: c.histogram("store", "sync_duration_seconds",
			"Time one successful sync (fdatasync) of the active segment took.", latencyBuckets),
		appendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "batpak", Subsystem: "store", Name: "append_errors_total",
			Help:        "Append and AppendBatch calls that failed, by reason: conflict (expected version), deleted (stream), invalid (argument), unavailable (store failed, read-only or closed), canceled (context), other.",
			ConstLabels: c.constLabels}, []string{"reason"}),
	}
	for i, r := range errorReasons {
		o.errs[i] = o.appendErrors.WithLabelValues(r)
	}
	return o
}

// ObserveAppend implements [eventstore.Observer].
func (o *StoreObserver) ObserveAppend(_ int, d time.Duration, err error) {
	if err != nil {
		o.errs[reasonOf(err)].Inc()
		return
	}
	o.appendSeconds.Observe(d.Seconds())
}

// ObserveCommit implements [eventstore.Observer].
func (o *StoreObserver) ObserveCommit(requests, events, _ int, d time.Duration) {
	o.commitSeconds.Observe(d.Seconds())
	o.commitRequests.Observe(float64(requests))
	o.commitEvents.Observe(float64(events))
}

// ObserveSync implements [eventstore.Observer].
func (o *StoreObserver) ObserveSync(d time.Duration) { o.syncSeconds.Observe(d.Seconds()) }

// Describe implements [prometheus.Collector].
func (o *StoreObserver) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range o.collectors() {
		c.Describe(ch)
	}
}

// Collect implements [prometheus.Collector].
func (o *StoreObserver) Collect(ch chan<- prometheus.Metric) {
	for _, c := range o.collectors() {
		c.Collect(ch)
	}
}

func (o *StoreObserver) collectors() [6]prometheus.Collector {
	return [...]prometheus.Collector{o.appendSeconds, o.commitSeconds, o.commitRequests, o.commitEvents, o.syncSeconds, o.appendErrors}
}

// reasonOf returns the index in errorReasons of why an append failed.
func reasonOf(err error) int {
	switch {
	case errors.Is(err, batpak.ErrVersionConflict):
		return 0
	case errors.Is(err, batpak.ErrStreamDeleted):
		return 1
	case errors.Is(err, batpak.ErrInvalidCoordinate), errors.Is(err, batpak.ErrInvalidExpectedVersion),
		errors.Is(err, batpak.ErrInvalidIdempotencyKey), errors.Is(err, batpak.ErrInvalidMetadata),
		errors.Is(err, batpak.ErrReservedKind), errors.Is(err, batpak.ErrPayloadTooLarge), errors.Is(err, batpak.ErrEmptyAppend):
		return 2
	case errors.Is(err, batpak.ErrStoreFailed), errors.Is(err, batpak.ErrReadOnly), errors.Is(err, batpak.ErrClosed):
		return 3
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return 4
	}
	return 5
}
