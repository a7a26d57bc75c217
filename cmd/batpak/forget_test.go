package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
)

// TestForget: forget counts the subject's events, asks first (refusing
// without a terminal unless --yes, taking no for an answer), destroys the
// key, and the store verifies afterwards with the events erased.
func TestForget(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s, err := eventstore.Open(dir, storeOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, who := range []string{"customer:ann", "customer:bob", "customer:ann"} {
		ev := batpak.Event{Kind: kindDeposited, Type: "bank.Registered", Payload: deposited{Amount: i, Note: who}, Subject: who}
		if _, err := s.Append(ctx, batpak.Coordinate{Entity: who, Scope: "bank"}, []batpak.Event{ev}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	r := runCmd(t, "y\n", "forget", dir, "bank", "customer:ann")
	r.wantCode(t, exitFailure)
	wantContains(t, "stderr", r.stderr, "refusing to forget", "--yes")
	wantContains(t, "stdout", r.stdout, "subject bank/customer:ann: 2 event(s) in 1 stream(s)")
	r = runApp(t, ctx, &app{stdin: strings.NewReader("n\n"), stdinTerminal: true}, "forget", dir, "bank", "customer:ann")
	r.wantCode(t, exitFailure)
	wantContains(t, "stderr", r.stderr, "declined")
	r = runCmd(t, "", "tail", dir, "--all")
	wantContains(t, "tail before", r.stdout, `"Note":"customer:ann"`)

	r = runApp(t, ctx, &app{stdin: strings.NewReader("y\n"), stdinTerminal: true}, "forget", dir, "bank", "customer:ann")
	r.wantCode(t, exitOK)
	wantContains(t, "stdout", r.stdout, "forgot bank/customer:ann")
	r = runCmd(t, "", "tail", dir, "--all")
	if strings.Contains(r.stdout, `"Note":"customer:ann"`) || !strings.Contains(r.stdout, `"Note":"customer:bob"`) || strings.Count(r.stdout, "(erased)") != 2 {
		t.Fatalf("tail after forget:\n%s", r.stdout)
	}
	r = runCmd(t, "", "verify", dir)
	r.wantCode(t, exitOK)
	wantContains(t, "verify", r.stdout, "keys: 1 subject(s), 1 forgotten", "OK")
	r = runCmd(t, "", "forget", dir, "bank", "customer:ann", "--yes")
	r.wantCode(t, exitOK)
	wantContains(t, "stdout", r.stdout, "2 event(s) in 1 stream(s), 2 already erased")
	r = runCmd(t, "", "forget", dir, "bank", "bad\x01subject", "--yes")
	r.wantCode(t, exitUsage)
}
