package metrics

import "github.com/prometheus/client_golang/prometheus"

// Option configures a collector or an observer of this package.
type Option func(*config)

type config struct {
	constLabels prometheus.Labels
}

// WithConstLabels adds labels with fixed values to every metric, to tell
// apart two stores or runners registered with one registry (say
// {"store": "orders"}).
func WithConstLabels(l prometheus.Labels) Option {
	return func(c *config) { c.constLabels = l }
}

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		o(&c)
	}
	return c
}

// desc names a metric of this package: batpak_<subsystem>_<name>.
func (c config) desc(subsystem, name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName("batpak", subsystem, name), help, labels, c.constLabels)
}

// histogram makes a histogram of this package, named as desc names the
// other metrics.
func (c config) histogram(subsystem, name, help string, buckets []float64) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "batpak", Subsystem: subsystem, Name: name,
		Help: help, ConstLabels: c.constLabels, Buckets: buckets})
}
