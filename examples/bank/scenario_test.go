package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/memstore"
	"github.com/batpak-go/batpak/natsstore"
	"github.com/batpak-go/batpak/natsstore/embedded"
)

func TestScenario(t *testing.T) {
	store, err := eventstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	checkScenario(t, store)
}

// TestScenarioNATS runs the same scenario, unchanged, on the JetStream
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
	checkScenario(t, store)
}

// TestRunNATSEmbedded runs the command as `-nats embedded` does.
func TestRunNATSEmbedded(t *testing.T) {
	var out bytes.Buffer
	if err := runWith(t.TempDir(), "embedded", false, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "alice     500") || !strings.Contains(out.String(), "14 events in JetStream stream BANK") {
		t.Fatalf("output:\n%s", out.String())
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

// TestScenarioMemstore runs the same scenario on the in-memory store.
func TestScenarioMemstore(t *testing.T) {
	store := memstore.New()
	defer store.Close()
	checkScenario(t, store)
}

func checkScenario(t *testing.T, store interface {
	Store
	VerifyChain(ctx context.Context, coord batpak.Coordinate) error
}) {
	t.Helper()
	day := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	bank, err := NewBank(store, Registry(), Policy{DailyLimit: 1000}, aggregate.NewMemorySnapshots(), func() time.Time { return day })
	if err != nil {
		t.Fatal(err)
	}
	views := startReadModels(context.Background(), store, Registry())
	r, err := RunScenario(context.Background(), bank, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := views.read(context.Background(), store.LastSequence())
	if err != nil {
		t.Fatal(err)
	}
	if err := views.stop(); err != nil {
		t.Fatal(err)
	}
	for _, b := range r.Balances {
		if rm.Balances[b.Account] != b.Balance {
			t.Errorf("read model balance of %s = %d, aggregate says %d", b.Account, rm.Balances[b.Account], b.Balance)
		}
	}
	if len(rm.LargeTransfers) != 1 || !strings.Contains(rm.LargeTransfers[0], "300 from alice to carol") {
		t.Errorf("large transfers %q", rm.LargeTransfers)
	}
	if len(rm.Statement) != 5 || !strings.HasSuffix(rm.Statement[4], "=    500") {
		t.Errorf("statement %q", rm.Statement)
	}
	want := []Balance{{"alice", 500, "open"}, {"bob", 525, "frozen"}, {"carol", 300, "open"}, {"dave", 0, "closed"}}
	if len(r.Balances) != len(want) {
		t.Fatalf("balances %v", r.Balances)
	}
	for i, b := range want {
		if r.Balances[i] != b {
			t.Errorf("balance %d = %+v, want %+v", i, r.Balances[i], b)
		}
	}
	wantGates := map[string]string{
		"bob deposit -50":    "positive-amount",
		"bob withdraw 600":   "no-overdraft",
		"alice withdraw 900": "daily-withdrawal-limit",
		"bob withdraw 10":    "frozen-account",
	}
	if len(r.Denials) != len(wantGates) {
		t.Fatalf("denials %+v", r.Denials)
	}
	for _, d := range r.Denials {
		if g := wantGates[d.Account+" "+d.Command]; g != d.Denial.Gate {
			t.Errorf("%s %s denied by %q, want %q", d.Account, d.Command, d.Denial.Gate, g)
		}
	}
	if len(r.Bypass) != 1 || r.Bypass[0].Actor != "ops:jane" || !strings.Contains(r.Bypass[0].Reason, "charged twice") {
		t.Errorf("bypasses %+v", r.Bypass)
	}
	if len(r.Chains) != 2 || !strings.Contains(r.Chains[0], "TransferReceived") || !strings.Contains(r.Chains[1], "TransferReturned") {
		t.Errorf("chains %q", r.Chains)
	}
	// Every stream's hash chain verifies.
	for _, id := range accounts {
		if err := store.VerifyChain(context.Background(), Stream(id)); err != nil {
			t.Error(err)
		}
	}
}

func TestRunKeepsDataDir(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run(dir, false, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "alice     500") {
		t.Fatalf("output:\n%s", out.String())
	}
	// A second run on the same directory reuses the accounts.
	out.Reset()
	if err := run(dir, false, &out); err != nil {
		t.Fatal(err)
	}
	s, err := eventstore.OpenReadOnly(filepath.Join(dir, "events"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v := s.StreamVersion(Stream("alice")); v < 7 {
		t.Fatalf("alice at version %d after two runs", v)
	}
}
