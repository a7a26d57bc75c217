package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

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
	if !strings.Contains(out.String(), "alice     500") ||
		!strings.HasSuffix(out.String(), "\n14 events, in a temporary store that is removed on exit (-data DIR keeps the store in DIR)\n") {
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
	if !strings.HasSuffix(first.String(), "\n14 events in "+dir+" (go run ./cmd/batpak inspect "+dir+"); a second run appends nothing\n") {
		t.Fatalf("first run:\n%s", first.String())
	}
	if err := run(dir, false, &second); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(second.String(), dir+" already holds the bank's accounts") ||
		!strings.HasSuffix(second.String(), "\n14 events in "+dir+", as before: nothing was appended\n") {
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
	if n, v := s.LastSequence(), s.StreamVersion(bank.Stream("alice")); n != 14 || v != 6 {
		t.Errorf("after two runs: %d events, alice at version %d; want 14 and 6", n, v)
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
