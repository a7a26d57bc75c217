package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/batpak-go/batpak/eventstore"
)

// StatsSource is what a [StoreCollector] reads: *eventstore.Store has it.
type StatsSource interface {
	Stats() eventstore.Stats
}

// StoreCollector is a Prometheus collector of a store's counters and
// gauges: it calls Stats at each scrape and reports what it returns.
type StoreCollector struct {
	src       StatsSource
	stats     []statMetric
	coldStart *prometheus.Desc
	lastScrub *prometheus.Desc
	scrubTook *prometheus.Desc
}

var _ prometheus.Collector = (*StoreCollector)(nil)

// statMetric is one metric read from Stats as it is.
type statMetric struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(*eventstore.Stats) float64
}

// NewStoreCollector returns a collector of src's statistics.
func NewStoreCollector(src StatsSource, opts ...Option) *StoreCollector {
	c := newConfig(opts)
	counter := func(name, help string, v func(*eventstore.Stats) float64) statMetric {
		return statMetric{c.desc("store", name, help), prometheus.CounterValue, v}
	}
	gauge := func(name, help string, v func(*eventstore.Stats) float64) statMetric {
		return statMetric{c.desc("store", name, help), prometheus.GaugeValue, v}
	}
	return &StoreCollector{
		src: src,
		stats: []statMetric{
			counter("appends_total", "Append and AppendBatch calls that committed events since the store was opened.",
				func(s *eventstore.Stats) float64 { return float64(s.Appends) }),
			counter("appended_events_total", "Events appended since the store was opened.",
				func(s *eventstore.Stats) float64 { return float64(s.AppendedEvents) }),
			counter("group_commits_total", "Group commits since the store was opened: each writes its requests together and syncs once.",
				func(s *eventstore.Stats) float64 { return float64(s.Groups) }),
			counter("syncs_total", "Syncs of segment files since the store was opened.",
				func(s *eventstore.Stats) float64 { return float64(s.Syncs) }),
			counter("written_bytes_total", "Bytes of frames written to segment files since the store was opened.",
				func(s *eventstore.Stats) float64 { return float64(s.BytesWritten) }),
			counter("idempotent_hits_total", "Appends answered with the original receipts of an idempotency key committed before.",
				func(s *eventstore.Stats) float64 { return float64(s.IdempotentHits) }),
			counter("checkpoints_total", "Index checkpoints written since the store was opened.",
				func(s *eventstore.Stats) float64 { return float64(s.Checkpoints) }),
			counter("dropped_notifications_total", "Events that subscriptions lost to a full channel.",
				func(s *eventstore.Stats) float64 { return float64(s.DroppedNotifications) }),
			counter("corrupt_reads_total", "Reads, cursors and replays that met damaged data (ErrCorrupt).",
				func(s *eventstore.Stats) float64 { return float64(s.CorruptReads) }),
			counter("scrubs_total", "Complete scrubs: rereads of every sealed segment.",
				func(s *eventstore.Stats) float64 { return float64(s.Scrub.Runs) }),
			counter("scrubbed_bytes_total", "Bytes reread and checked by scrubs, those cut short included.",
				func(s *eventstore.Stats) float64 { return float64(s.Scrub.BytesChecked) }),
			gauge("events", "Events in the store: the global sequence of the newest.",
				func(s *eventstore.Stats) float64 { return float64(s.Events) }),
			gauge("streams", "Streams in the store.",
				func(s *eventstore.Stats) float64 { return float64(s.Streams) }),
			gauge("segments", "Segment files in the store's directory.",
				func(s *eventstore.Stats) float64 { return float64(s.Segments) }),
			gauge("disk_bytes", "Size of the segment files, preallocated space included.",
				func(s *eventstore.Stats) float64 { return float64(s.DiskBytes) }),
			gauge("data_bytes", "Bytes of the segment files that hold data.",
				func(s *eventstore.Stats) float64 { return float64(s.DataBytes) }),
			gauge("subscribers", "Open subscriptions.",
				func(s *eventstore.Stats) float64 { return float64(s.Subscribers) }),
			gauge("scrub_damage", "Damaged places the last complete scrub found.",
				func(s *eventstore.Stats) float64 { return float64(len(s.Scrub.Damage)) }),
			gauge("cold_start_truncated_bytes", "Bytes cut from the active segment's torn tail when the store was opened: writes never acknowledged.",
				func(s *eventstore.Stats) float64 { return float64(s.ColdStart.TruncatedBytes) }),
			gauge("failed", "1 if a failed write or sync turned the store read-only until it is reopened, else 0.",
				func(s *eventstore.Stats) float64 {
					if s.Failed != nil {
						return 1
					}
					return 0
				}),
		},
		coldStart: c.desc("store", "cold_start_seconds",
			"How long opening the store took to rebuild its index, by the fastest source used: checkpoint, footer, scan or empty.", "path"),
		lastScrub: c.desc("store", "last_scrub_timestamp_seconds", "When the last complete scrub started, in seconds since the Unix epoch (absent before the first)."),
		scrubTook: c.desc("store", "last_scrub_duration_seconds", "How long the last complete scrub took (absent before the first)."),
	}
}

// Describe implements [prometheus.Collector].
func (c *StoreCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.stats {
		ch <- m.desc
	}
	ch <- c.coldStart
	ch <- c.lastScrub
	ch <- c.scrubTook
}

// Collect implements [prometheus.Collector]: it reads the store's Stats.
func (c *StoreCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	for _, m := range c.stats {
		ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.value(&st))
	}
	if st.ColdStart.Path != "" {
		ch <- prometheus.MustNewConstMetric(c.coldStart, prometheus.GaugeValue, st.ColdStart.Duration.Seconds(), st.ColdStart.Path)
	}
	if sc := st.Scrub; !sc.LastRun.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.lastScrub, prometheus.GaugeValue, float64(sc.LastRun.UnixNano())/1e9)
		ch <- prometheus.MustNewConstMetric(c.scrubTook, prometheus.GaugeValue, sc.LastDuration.Seconds())
	}
}
