package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
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
	if !strings.HasSuffix(first.String(), "\n18 events in "+dir+" (go run ./cmd/batpak inspect "+dir+"); a second run appends nothing\n") {
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
// promlint, and the command returns when its context ends.
func TestRunServesMetrics(t *testing.T) {
	m, err := listenMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runWith(ctx, "", false, io.Discard, m) }()
	want := []string{
		"batpak_store_appended_events_total 18",
		"batpak_store_append_duration_seconds_count 14",
		`batpak_store_cold_start_seconds{path="empty"}`,
		`batpak_projection_applied_total{projection="bank-balances"} 18`,
		`batpak_projection_position{projection="bank-balances"} 19`,
	}
	var body string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		body = scrape(t, m.url())
		if containsAll(body, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute /metrics lacks one of %q:\n%s", want, body)
		}
	}
	problems, err := testutil.GatherAndLint(m.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
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

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
