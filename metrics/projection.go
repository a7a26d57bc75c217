package metrics

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/batpak-go/batpak/projection"
)

// StatusSource is what a [ProjectionCollector] reads: *projection.Runner
// has it.
type StatusSource interface {
	Status(ctx context.Context) []projection.Status
}

// ProjectionCollector is a Prometheus collector of the projections of a
// runner: it calls Status at each scrape and reports every projection the
// runner has run, labelled with its name.
type ProjectionCollector struct {
	src     StatusSource
	timeout time.Duration

	position, lagEvents, lagSeconds *prometheus.Desc
	applied, retried, parked, state *prometheus.Desc
}

var _ prometheus.Collector = (*ProjectionCollector)(nil)

// statusTimeout bounds the reads Status makes to tell whether a projection
// is behind.
const statusTimeout = 5 * time.Second

// NewProjectionCollector returns a collector of src's projections.
func NewProjectionCollector(src StatusSource, opts ...Option) *ProjectionCollector {
	c := newConfig(opts)
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return c.desc("projection", name, help, append([]string{"projection"}, labels...)...)
	}
	return &ProjectionCollector{
		src:        src,
		timeout:    statusTimeout,
		position:   d("position", "The next global sequence the projection will examine."),
		lagEvents:  d("lag_events", "Events of the log the projection has still to examine; 0 when none of them is in its region."),
		lagSeconds: d("lag_seconds", "Age of the newest event the projection applied while it is behind, else 0."),
		applied:    d("applied_total", "Apply calls that succeeded since the runner was made."),
		retried:    d("retried_total", "Apply calls that were retries of a failed one, since the runner was made."),
		parked:     d("parked_events", "Events of the projection parked now, after every attempt to apply them failed."),
		state: d("state", "1 for the state the projection is in: idle, waiting_for_lease, catching_up, following, stopped or failed.",
			"state"),
	}
}

// Describe implements [prometheus.Collector].
func (c *ProjectionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.position, c.lagEvents, c.lagSeconds, c.applied, c.retried, c.parked, c.state} {
		ch <- d
	}
}

// Collect implements [prometheus.Collector]: it reads the runner's Status.
func (c *ProjectionCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	for _, st := range c.src.Status(ctx) {
		p := st.Projection
		ch <- prometheus.MustNewConstMetric(c.position, prometheus.GaugeValue, float64(st.Position), p)
		ch <- prometheus.MustNewConstMetric(c.lagEvents, prometheus.GaugeValue, float64(st.LagEvents), p)
		ch <- prometheus.MustNewConstMetric(c.lagSeconds, prometheus.GaugeValue, st.Lag.Seconds(), p)
		ch <- prometheus.MustNewConstMetric(c.applied, prometheus.CounterValue, float64(st.Applied), p)
		ch <- prometheus.MustNewConstMetric(c.retried, prometheus.CounterValue, float64(st.Retried), p)
		ch <- prometheus.MustNewConstMetric(c.parked, prometheus.GaugeValue, float64(st.Parked), p)
		ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, 1, p, strings.ReplaceAll(st.State.String(), " ", "_"))
	}
}
