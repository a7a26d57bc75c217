package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/batpak-go/batpak/examples/bank/internal/bank/banktest"
	"github.com/batpak-go/batpak/natsstore"
	"github.com/batpak-go/batpak/natsstore/embedded"
)

// TestScenarioNATS runs the bank's scenario, unchanged, on the JetStream
// backend with an in-process server.
func TestScenarioNATS(t *testing.T) {
	ns, err := embedded.Start(embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	// The store's own time limits are hang guards too: a server slowed down
	// by a loaded machine must not fail the scenario.
	ctx := hangContext(t)
	deadline, _ := ctx.Deadline()
	wait := time.Until(deadline)
	store, err := natsstore.Open(ctx, ns.ClientURL(), natsstore.WithTimeout(wait), natsstore.WithNATSOptions(nats.Timeout(wait)))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	banktest.CheckScenario(t, ctx, store)
}

// TestRunTwice runs the command as `go run ./examples/bank/nats -data DIR`
// does, twice: the server restarts on its files, and the second run
// appends nothing.
func TestRunTwice(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run("", dir, false, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Alice           500") || !strings.Contains(out.String(), "\n18 events in JetStream stream BANK at nats://") ||
		!strings.HasSuffix(out.String(), "; a second run appends nothing\n") {
		t.Fatalf("output:\n%s", out.String())
	}
	out.Reset()
	if err := run("", dir, false, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Alice           500") || !strings.Contains(out.String(), "\n18 events in JetStream stream BANK at nats://") ||
		!strings.HasSuffix(out.String(), ", as before: nothing was appended\n") {
		t.Fatalf("second run's output:\n%s", out.String())
	}
}

// hangContext ends shortly before the test binary's deadline (go test
// -timeout), or with the test: a guard against hangs, not a performance
// budget, so a loaded machine makes the test slower but never fails it.
func hangContext(t *testing.T) context.Context {
	end := time.Now().Add(time.Hour) // go test -timeout 0
	if d, ok := t.Deadline(); ok {
		end = d.Add(-min(time.Until(d)/10, time.Minute))
	}
	ctx, cancel := context.WithDeadline(t.Context(), end)
	t.Cleanup(cancel)
	return ctx
}
