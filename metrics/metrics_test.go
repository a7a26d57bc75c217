package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/metrics"
	"github.com/batpak-go/batpak/projection"
)

var testKind = kind.Custom(1, 1)

func openStore(t *testing.T, opts ...eventstore.Option) *eventstore.Store {
	t.Helper()
	s, err := eventstore.Open(t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func appendN(t *testing.T, s batpak.Store, entity string, n int) {
	t.Helper()
	for i := range n {
		ev := batpak.Event{Kind: testKind, Payload: map[string]int{"i": i}}
		if _, err := s.Append(context.Background(), batpak.Coordinate{Entity: entity, Scope: "test"}, []batpak.Event{ev}); err != nil {
			t.Fatal(err)
		}
	}
}

// value returns the value of the metric name with the given labels (all
// of its labels but the constant ones, as name=value pairs): a counter's
// or gauge's value, a histogram's sample count. ok is false if there is
// no such metric.
func value(t *testing.T, g prometheus.Gatherer, name string, labels ...string) (v float64, ok bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, l := range labels {
				k, want, _ := strings.Cut(l, "=")
				if labelValue(m, k) != want {
					continue metric
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func mustValue(t *testing.T, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	v, ok := value(t, g, name, labels...)
	if !ok {
		t.Fatalf("no metric %s%v", name, labels)
	}
	return v
}

func lint(t *testing.T, g prometheus.Gatherer) {
	t.Helper()
	problems, err := testutil.GatherAndLint(g)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func TestStoreMetrics(t *testing.T) {
	obs := metrics.NewStoreObserver()
	s := openStore(t, eventstore.WithObserver(obs), eventstore.WithSegmentMaxBytes(4<<10))
	store := metrics.NewStoreCollector(s)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(obs, store)
	lint(t, reg)

	// 20 counters and gauges, the cold start; 5 histograms and 6 error reasons.
	if n := testutil.CollectAndCount(store); n != 21 {
		t.Errorf("the store collector reports %d metrics, want 21", n)
	}
	if n := testutil.CollectAndCount(obs); n != 11 {
		t.Errorf("the observer reports %d metrics, want 11", n)
	}
	if v := mustValue(t, reg, "batpak_store_cold_start_seconds", "path=empty"); v <= 0 {
		t.Errorf("cold start of a new store took %v s", v)
	}
	if v := mustValue(t, reg, "batpak_store_appends_total"); v != 0 {
		t.Fatalf("%v appends before any", v)
	}

	appendN(t, s, "a", 50)
	ctx := context.Background()
	c := batpak.Coordinate{Entity: "a", Scope: "test"}
	ev := []batpak.Event{{Kind: testKind, Payload: 1}}
	if _, err := s.Append(ctx, c, ev, batpak.ExpectVersion(batpak.NoStream)); !errors.Is(err, batpak.ErrVersionConflict) {
		t.Fatalf("append expecting no stream: %v", err)
	}
	for range 3 {
		if _, err := s.Append(ctx, c, ev, batpak.WithIdempotencyKey("once")); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := s.Subscribe(batpak.Region{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	appendN(t, s, "b", 3) // the subscription holds one, drops two

	for name, want := range map[string]float64{
		"batpak_store_appends_total":                   54,
		"batpak_store_appended_events_total":           54,
		"batpak_store_events":                          54,
		"batpak_store_streams":                         2,
		"batpak_store_idempotent_hits_total":           2,
		"batpak_store_dropped_notifications_total":     2,
		"batpak_store_subscribers":                     1,
		"batpak_store_append_duration_seconds":         56, // the conflict is not timed
		"batpak_store_corrupt_reads_total":             0,
		"batpak_store_failed":                          0,
		"batpak_store_scrub_damage":                    0,
		"batpak_store_cold_start_truncated_bytes":      0,
		"batpak_store_append_errors_total|conflict":    1,
		"batpak_store_append_errors_total|invalid":     0,
		"batpak_store_append_errors_total|canceled":    0,
		"batpak_store_append_errors_total|other":       0,
		"batpak_store_append_errors_total|deleted":     0,
		"batpak_store_append_errors_total|unavailable": 0,
	} {
		var labels []string
		if n, reason, ok := strings.Cut(name, "|"); ok {
			name, labels = n, []string{"reason=" + reason}
		}
		if got := mustValue(t, reg, name, labels...); got != want {
			t.Errorf("%s%v = %v, want %v", name, labels, got, want)
		}
	}
	st := s.Stats()
	for name, want := range map[string]float64{
		"batpak_store_group_commits_total":     float64(st.Groups),
		"batpak_store_commit_group_requests":   float64(st.Groups),
		"batpak_store_commit_group_events":     float64(st.Groups),
		"batpak_store_commit_duration_seconds": float64(st.Groups),
		"batpak_store_written_bytes_total":     float64(st.BytesWritten),
		"batpak_store_segments":                float64(st.Segments),
		"batpak_store_disk_bytes":              float64(st.DiskBytes),
	} {
		if got := mustValue(t, reg, name); got != want {
			t.Errorf("%s = %v, Stats says %v", name, got, want)
		}
	}
	if st.Segments < 2 || st.BytesWritten == 0 {
		t.Errorf("Stats: %d segments, %d bytes written: the test meant to rotate", st.Segments, st.BytesWritten)
	}
	if v := mustValue(t, reg, "batpak_store_sync_duration_seconds"); v == 0 || v > float64(st.Syncs) {
		t.Errorf("%v syncs timed, Stats counts %d", v, st.Syncs)
	}
	if _, ok := value(t, reg, "batpak_store_last_scrub_timestamp_seconds"); ok {
		t.Error("a scrub time before any scrub")
	}
	if _, err := s.Scrub(ctx); err != nil {
		t.Fatal(err)
	}
	if v := mustValue(t, reg, "batpak_store_scrubs_total"); v != 1 {
		t.Errorf("%v scrubs, want 1", v)
	}
	if v := mustValue(t, reg, "batpak_store_last_scrub_timestamp_seconds"); time.Since(time.Unix(int64(v), 0)) > time.Minute {
		t.Errorf("last scrub at %v", time.Unix(int64(v), 0))
	}
	lint(t, reg)
}

func TestStoreMetricsAfterReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := eventstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, "a", 5)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = eventstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrics.NewStoreCollector(s, metrics.WithConstLabels(prometheus.Labels{"store": "reopened"})))
	lint(t, reg)
	if v := mustValue(t, reg, "batpak_store_events", "store=reopened"); v != 5 {
		t.Errorf("%v events, want 5", v)
	}
	if v := mustValue(t, reg, "batpak_store_appends_total"); v != 0 {
		t.Errorf("%v appends since the reopen, want 0", v)
	}
	if _, ok := value(t, reg, "batpak_store_cold_start_seconds", "path=checkpoint"); !ok {
		t.Errorf("no cold start by checkpoint after a clean close")
	}
}

type counting struct {
	name  string
	fail  func(batpak.Record) bool
	count int
}

func (p *counting) Name() string          { return p.name }
func (p *counting) Region() batpak.Region { return batpak.Region{Scope: "test"} }
func (p *counting) Apply(_ context.Context, rec batpak.Record) error {
	if p.fail != nil && p.fail(rec) {
		return fmt.Errorf("#%d refused", rec.Sequence)
	}
	p.count++
	return nil
}

func TestProjectionMetrics(t *testing.T) {
	s := openStore(t, eventstore.WithSyncMode(eventstore.SyncNone))
	appendN(t, s, "a", 10)
	r := projection.NewRunner(s, projection.NewMemoryCheckpoints(),
		projection.WithPolicyFor("picky", projection.Policy{Attempts: 3, MinBackoff: time.Millisecond, Then: projection.Continue}))
	col := metrics.NewProjectionCollector(r)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	if n := testutil.CollectAndCount(col); n != 0 {
		t.Errorf("%d metrics before any projection ran", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	all := &counting{name: "all"}
	picky := &counting{name: "picky", fail: func(rec batpak.Record) bool { return rec.Sequence == 4 }}
	wait := r.Start(ctx, all, picky)
	defer func() {
		cancel()
		if err := wait(); err != nil && !errors.Is(err, context.Canceled) {
			t.Error(err)
		}
	}()
	if err := r.Await(ctx, 10); err != nil {
		t.Fatal(err)
	}
	lint(t, reg)
	if n := testutil.CollectAndCount(col); n != 14 {
		t.Errorf("%d metrics for 2 projections, want 14", n)
	}
	check := func(name, proj string, want float64, labels ...string) {
		t.Helper()
		if got := mustValue(t, reg, name, append([]string{"projection=" + proj}, labels...)...); got != want {
			t.Errorf("%s{projection=%s %v} = %v, want %v", name, proj, labels, got, want)
		}
	}
	check("batpak_projection_position", "all", 11)
	check("batpak_projection_applied_total", "all", 10)
	check("batpak_projection_lag_events", "all", 0)
	check("batpak_projection_lag_seconds", "all", 0)
	check("batpak_projection_state", "all", 1, "state=following")
	check("batpak_projection_applied_total", "picky", 9)
	check("batpak_projection_retried_total", "picky", 2)
	check("batpak_projection_parked_events", "picky", 1)
	check("batpak_projection_retried_total", "all", 0)

	appendN(t, s, "a", 5)
	if err := r.Await(ctx, 15); err != nil {
		t.Fatal(err)
	}
	check("batpak_projection_position", "all", 16)
	check("batpak_projection_applied_total", "all", 15)
}
