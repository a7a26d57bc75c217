package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/examples/bank/internal/bank"
)

// balances returns the Balances block of the command's output.
func balances(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)Balances:\n(.*?)\n\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no balances in the output:\n%s", out)
	}
	return m[1]
}

func TestRunTemporary(t *testing.T) {
	var out bytes.Buffer
	if err := run("", false, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Alice           500") ||
		!strings.HasSuffix(out.String(), "\n18 events, in a temporary store that is removed on exit (-data DIR keeps the store in DIR)\n") {
		t.Fatalf("output:\n%s", out.String())
	}
}

// TestRunTwice runs the command twice on one -data directory: the second
// run appends nothing, shows the same balances and says so; the directory
// is the store, as batpak inspect DIR expects.
func TestRunTwice(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bank")
	var first, second bytes.Buffer
	if err := run(dir, false, &first); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(first.String(), "\n18 events in "+dir+" (go run ./cmd/batpak inspect "+dir+"), the SQL read model in "+
		filepath.Join(dir, readModelsDB)+";\na second run does not play the scenario again\n") {
		t.Fatalf("first run:\n%s", first.String())
	}
	if err := run(dir, false, &second); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(second.String(), dir+" already holds the bank's accounts") ||
		!strings.HasSuffix(second.String(), "\n18 events in "+dir+", as before: nothing was appended\n") {
		t.Fatalf("second run:\n%s", second.String())
	}
	if b1, b2 := balances(t, first.String()), balances(t, second.String()); b1 != b2 {
		t.Errorf("balances after the second run\n%s\ndiffer from the first's\n%s", b2, b1)
	}
	// The SQL read model went on from its position: nothing applied twice.
	for out, want := range map[string]string{
		first.String():  "(table balances: as the accounts hold; position 19, this run applied 18 events to it)",
		second.String(): "(table balances: as the accounts hold; position 19, this run applied none: it went on from there)",
	} {
		if !strings.Contains(out, "balances in SQL: alice=500 bob=525 carol=300 dave=0\n    "+want) {
			t.Errorf("no %q in the output:\n%s", want, out)
		}
	}
	s, err := eventstore.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, v := s.LastSequence(), s.StreamVersion(bank.Stream("alice")); n != 18 || v != 7 {
		t.Errorf("after two runs: %d events, alice at version %d; want 18 and 7", n, v)
	}
}

// TestNoJetStream keeps the JetStream server and client out of the main
// command's build: a first `go run ./examples/bank` compiles only what the
// embedded store needs.
func TestNoJetStream(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	// go test puts its own go command first on the PATH.
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on the PATH")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for pkg := range strings.Lines(string(out)) {
		if strings.Contains(pkg, "nats") {
			t.Errorf("the bank command depends on %s", strings.TrimSpace(pkg))
		}
	}
}

// TestRunServesMetrics runs the command with -metrics: once the scenario
// ran, /metrics shows the store's and the read models' figures, which pass
// promlint; the steady workload then moves the store's counters and the
// projections' positions from one scrape to the next; and the command
// returns when its context ends.
func TestRunServesMetrics(t *testing.T) {
	m, err := listenMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runWith(ctx, options{metrics: m, steady: 10 * time.Millisecond}, io.Discard) }()
	projections := []string{"bank-balances", "bank-balances-sql", "bank-statement-alice", "bank-large-transfers"}
	first := waitMetrics(t, m.url(), "the scenario's figures", func(v metricValues) bool {
		_, cold := v[`batpak_store_cold_start_seconds{path="empty"}`]
		ok := cold && v["batpak_store_appended_events_total"] >= 18 && v["batpak_store_append_duration_seconds_count"] >= 14
		for _, p := range projections {
			ok = ok && v[`batpak_projection_position{projection="`+p+`"}`] >= 19
		}
		return ok
	})
	problems, err := testutil.GatherAndLint(m.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	moving := []string{
		"batpak_store_appends_total", "batpak_store_appended_events_total", "batpak_store_group_commits_total",
		"batpak_store_syncs_total", "batpak_store_written_bytes_total", "batpak_store_events",
		"batpak_store_append_duration_seconds_count", "batpak_store_commit_duration_seconds_count",
		"batpak_store_sync_duration_seconds_count",
		`batpak_projection_position{projection="bank-balances"}`, `batpak_projection_applied_total{projection="bank-balances"}`,
		`batpak_projection_position{projection="bank-balances-sql"}`, `batpak_projection_applied_total{projection="bank-balances-sql"}`,
	}
	waitMetrics(t, m.url(), "the steady workload to move every figure", func(v metricValues) bool {
		for _, name := range moving {
			if v[name] <= first[name] {
				return false
			}
		}
		return true
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the command did not return after its context ended")
	}
}

// metricValues are the samples of a scrape, by name and labels as the
// text format writes them.
type metricValues map[string]float64

// waitMetrics scrapes url until ok accepts what it shows, for as long as
// the test may run, and returns that scrape.
func waitMetrics(t *testing.T, url, what string, ok func(metricValues) bool) metricValues {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	if d, set := t.Deadline(); set {
		deadline = d.Add(-time.Until(d) / 10)
	}
	for {
		body := scrape(t, url)
		v := parseMetrics(t, body)
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s, /metrics shows:\n%s", what, body)
		}
		time.Sleep(20 * time.Millisecond) // between scrapes
	}
}

func parseMetrics(t *testing.T, body string) metricValues {
	t.Helper()
	v := make(metricValues)
	for line := range strings.Lines(body) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		f, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("a line of /metrics that is no sample: %q", line)
		}
		v[line[:i]] = f
	}
	return v
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
