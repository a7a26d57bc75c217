package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batpak-go/batpak/eventstore"
)

func TestInspectHealthyStore(t *testing.T) {
	ts := newTestStore(t, 200)
	r := runCmd(t, "", "inspect", ts.dir, "--streams", "3")
	r.wantCode(t, exitOK)
	wantContains(t, "inspect", r.stdout,
		fmt.Sprintf("events      %d in 8 streams", ts.events),
		"cold start  checkpoint in ", // a cleanly closed store opens from its checkpoint
		"checkpoint  used: covers events 1-203",
		"0000000001.seg", "sealed, footer", "active",
		"bytes per event",
		"top streams by version (3 of 8)",
	)
	if !strings.Contains(strings.Join(strings.Fields(r.stdout), " "), "bank account:0 40 196 bank account:1 40 197 bank account:2 40 198") {
		t.Error("inspect does not list the three longest streams")
	}
	if n := strings.Count(r.stdout, "sealed, footer"); n < 3 {
		t.Errorf("want several sealed segments, got %d", n)
	}

	// Without the checkpoint the index comes from the footers.
	if err := os.Remove(filepath.Join(ts.dir, eventstore.CheckpointFileName)); err != nil {
		t.Fatal(err)
	}
	r = runCmd(t, "", "inspect", ts.dir)
	r.wantCode(t, exitOK)
	wantContains(t, "inspect", r.stdout, "cold start  footer in ", "checkpoint  absent")
}

func TestStats(t *testing.T) {
	ts := newTestStore(t, 20)
	r := runCmd(t, "", "stats", ts.dir)
	r.wantCode(t, exitOK)
	wantContains(t, "stats", r.stdout, "Events  ", strconv.FormatUint(ts.events, 10), "ColdStart.Path", "checkpoint")
	// Only what describes the store: not the counters of the command's own
	// read-only view, and no scrub without --scrub.
	for _, counter := range []string{"AppendedEvents", "Groups", "Syncs", "BytesWritten", "IdempotentHits", "Subscribers", "Checkpoints", "Scrub"} {
		if strings.Contains(r.stdout, counter) {
			t.Errorf("stats prints %s:\n%s", counter, r.stdout)
		}
	}

	r = runCmd(t, "", "stats", ts.dir, "--json")
	r.wantCode(t, exitOK)
	var st struct {
		Events    uint64
		Streams   int
		ColdStart struct{ Path string }
		Failed    string
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("stats --json: %v", err)
	}
	if st.Events != ts.events || st.Streams != 8 || st.ColdStart.Path != "checkpoint" || st.Failed != "" {
		t.Errorf("stats --json = %+v", st)
	}
	var fields map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &fields); err != nil {
		t.Fatal(err)
	}
	for _, counter := range []string{"AppendedEvents", "Syncs", "Scrub"} {
		if _, ok := fields[counter]; ok {
			t.Errorf("stats --json has %s:\n%s", counter, r.stdout)
		}
	}
}

func TestDump(t *testing.T) {
	ts := newTestStore(t, 30)
	r := runCmd(t, "", "dump", ts.dir)
	r.wantCode(t, exitOK)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if uint64(len(lines)) != ts.events {
		t.Fatalf("%d lines, want %d", len(lines), ts.events)
	}
	for i, line := range lines {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i+1, err, line)
		}
		for _, field := range []string{"sequence", "id", "correlation", "causation", "entity", "scope", "version", "kind", "timestamp", "metadata", "payload", "hash"} {
			if _, ok := ev[field]; !ok {
				t.Fatalf("line %d has no %q: %s", i+1, field, line)
			}
		}
		if ev["sequence"] != float64(i+1) {
			t.Fatalf("line %d: sequence %v", i+1, ev["sequence"])
		}
	}
	var first struct {
		Kind      string
		Payload   deposited
		Metadata  map[string]string
		Causation *string
		Timestamp time.Time
		Hash      string
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first.Kind != "1:002" || first.Payload.Note == "" || first.Metadata["by"] != "test" || first.Causation != nil || first.Timestamp.IsZero() || len(first.Hash) != 64 {
		t.Errorf("first event = %+v", first)
	}
	var payment struct{ Causation string }
	if err := json.Unmarshal([]byte(lines[len(lines)-2]), &payment); err != nil {
		t.Fatal(err)
	}
	if payment.Causation != ts.order.EventID.String() {
		t.Errorf("payment's causation = %q, want the order %s", payment.Causation, ts.order.EventID)
	}

	r = runCmd(t, "", "dump", ts.dir, "--from", strconv.FormatUint(ts.events-1, 10))
	r.wantCode(t, exitOK)
	if n := strings.Count(r.stdout, "\n"); n != 2 {
		t.Errorf("dump --from %d printed %d lines, want 2", ts.events-1, n)
	}
}

// tailSeqs returns the sequence column of tail's output.
func tailSeqs(t *testing.T, out string) []uint64 {
	t.Helper()
	var seqs []uint64
	for line := range strings.Lines(out) {
		cols := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
		if len(cols) != 6 {
			t.Fatalf("tail line has %d columns, want 6: %q", len(cols), line)
		}
		seq, err := strconv.ParseUint(cols[0], 10, 64)
		if err != nil {
			t.Fatalf("tail line %q: %v", line, err)
		}
		if _, err := time.Parse(time.RFC3339, cols[1]); err != nil {
			t.Fatalf("tail timestamp: %v", err)
		}
		if !json.Valid([]byte(cols[5])) {
			t.Fatalf("tail payload is not JSON: %q", cols[5])
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

func TestTail(t *testing.T) {
	ts := newTestStore(t, 50) // deposits 1-50, then the order chain 51-53
	seqs := func(from, to uint64) string {
		var s []uint64
		for seq := from; seq <= to; seq++ {
			s = append(s, seq)
		}
		return fmt.Sprint(s)
	}
	// As Unix tail: the last 10 by default, -n N the last N, and --all
	// (or --from without -n) everything.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, seqs(44, 53)},
		{[]string{"-n", "3"}, seqs(51, 53)},
		{[]string{"--lines", "0"}, "[]"},
		{[]string{"--all"}, seqs(1, 53)},
		{[]string{"--from", "48"}, seqs(48, 53)},
		{[]string{"--from", "30", "-n", "2"}, seqs(52, 53)},
		{[]string{"--entity", "account:2", "--from", "30"}, "[33 38 43 48]"},
		{[]string{"--entity", "account:2", "-n", "2"}, "[43 48]"},
		{[]string{"--scope", "shop", "--kind", "2:002", "--kind", "8195"}, "[52 53]"}, // 8195 = 0x2003
		{[]string{"--prefix", "account:", "-n", "2"}, "[49 50]"},
		{[]string{"--kind", "shop.Paid,2:003"}, "[52 53]"}, // a type name from the catalog
	} {
		r := runCmd(t, "", append([]string{"tail", ts.dir}, tc.args...)...)
		r.wantCode(t, exitOK)
		if got := fmt.Sprint(tailSeqs(t, r.stdout)); got != tc.want {
			t.Errorf("tail %v: sequences %s, want %s", tc.args, got, tc.want)
		}
	}
	r := runCmd(t, "", "tail", ts.dir, "-n", "1")
	wantContains(t, "tail", r.stdout, "\tshipment:7\tv1\t2:003\t{\"carrier\":\"post\"}\n")
	r = runCmd(t, "", "tail", ts.dir, "-n", "2")
	wantContains(t, "tail", r.stdout, "\tpayment:7\tv1\tshop.Paid\t{\"amount\":12}\n")
	r = runCmd(t, "", "tail", ts.dir, "--kind", "shop.Refunded")
	r.wantCode(t, exitUsage)
	wantContains(t, "tail of an unknown type name", r.stderr, `no event type of the store is named "shop.Refunded"`)
}

func TestTailFollow(t *testing.T) {
	ts := newTestStore(t, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int)
	go func() {
		a := &app{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}
		done <- a.run(ctx, []string{"tail", ts.dir, "--follow", "--interval", "10ms", "--prefix", "account:", "-n", "4"})
	}()
	guard := hangContext(t)
	waitFor := func(what string) {
		t.Helper()
		for !strings.Contains(stdout.String(), what) {
			if guard.Err() != nil {
				t.Fatalf("tail --follow never printed %q; stdout:\n%s\nstderr:\n%s", what, stdout.String(), stderr.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("\n10\t")

	// A writer appends while tail follows: tail sees the new events.
	s, err := eventstore.Open(ts.dir, eventstore.WithSegmentMaxBytes(4096), eventstore.WithPreallocation(false))
	if err != nil {
		t.Fatal(err)
	}
	appendDeposits(t, s, 10, 3) // sequences 14-16
	waitFor("\n16\t")
	appendDeposits(t, s, 13, 30) // 17-46: several new segments
	waitFor("\n46\t")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("tail --follow exited %d after interrupt; stderr:\n%s", code, stderr.String())
		}
	case <-guard.Done():
		t.Fatal("tail --follow did not stop on cancel")
	}
	seqs := tailSeqs(t, stdout.String())
	// The last 4 stored, then every new one.
	want := []uint64{}
	for seq := uint64(7); seq <= 46; seq++ {
		if seq < 11 || seq > 13 { // 11-13 are the order chain, outside --prefix account:
			want = append(want, seq)
		}
	}
	if fmt.Sprint(seqs) != fmt.Sprint(want) {
		t.Errorf("tail --follow printed sequences\n%v\nwant\n%v", seqs, want)
	}
}

func TestTrace(t *testing.T) {
	ts := newTestStore(t, 10) // the order chain is 11 → 12, 13
	r := runCmd(t, "", "trace", ts.dir, ts.payment.EventID.String())
	r.wantCode(t, exitOK)
	wantContains(t, "trace", r.stdout,
		"#11 order:7 v1 shop.Ordered "+shortID(ts.order.EventID),
		"├─ #12 payment:7 v1 shop.Paid "+shortID(ts.payment.EventID)+" ◀ traced",
		"└─ #13 shipment:7 v1 2:003 "+shortID(ts.shipment.EventID),
	)

	// By sequence, as JSON and as DOT.
	r = runCmd(t, "", "trace", ts.dir, "11", "--format", "json")
	r.wantCode(t, exitOK)
	if !json.Valid([]byte(r.stdout)) {
		t.Errorf("trace --format json is not JSON:\n%s", r.stdout)
	}
	wantContains(t, "trace json", r.stdout, ts.order.EventID.String(), ts.shipment.EventID.String())
	r = runCmd(t, "", "trace", ts.dir, "#13", "--format", "dot")
	r.wantCode(t, exitOK)
	wantContains(t, "trace dot", r.stdout, "digraph", "->")

	r = runCmd(t, "", "trace", ts.dir, "999")
	r.wantCode(t, exitFailure)
	wantContains(t, "stderr", r.stderr, "no event with sequence 999")
	r = runCmd(t, "", "trace", ts.dir, "0195a7c4-8d2e-7b41-9c3a-2f6e1d0b5a77")
	r.wantCode(t, exitFailure)
	wantContains(t, "stderr", r.stderr, "no event with id 0195a7c4-8d2e-7b41-9c3a-2f6e1d0b5a77")
}

func TestUsageErrors(t *testing.T) {
	ts := newTestStore(t, 1)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing command"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"verify"}, "accepts 1 arg(s), received 0"},
		{[]string{"inspect", ts.dir, "extra"}, "accepts 1 arg(s), received 2"},
		{[]string{"dump", ts.dir, "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"dump", ts.dir, "--from", "x"}, "invalid argument"},
		{[]string{"tail", ts.dir, "--kind", "1:zz"}, "invalid kind"},
		{[]string{"tail", ts.dir, "--kind", "10:001"}, "invalid kind"},
		{[]string{"trace", ts.dir, "not-an-id"}, "neither an event id"},
		{[]string{"trace", ts.dir, "1", "--format", "png"}, "--format must be text, dot, json or svg"},
		{[]string{"inspect", ts.dir, "--streams", "-1"}, "--streams must be 0 or more"},
		{[]string{"tail", ts.dir, "-n", "-1"}, "--lines must be 0 or more"},
		{[]string{"tail", ts.dir, "--all", "-n", "3"}, "--all and --lines (-n) cannot be used together"},
	} {
		r := runCmd(t, "", tc.args...)
		if r.code != exitUsage {
			t.Errorf("batpak %v: exit %d, want %d", tc.args, r.code, exitUsage)
		}
		wantContains(t, fmt.Sprintf("stderr of %v", tc.args), r.stderr, tc.want, "--help' for usage")
	}
}

func TestNotAStore(t *testing.T) {
	empty := t.TempDir()
	for _, cmd := range []string{"inspect", "verify", "stats", "dump", "tail", "trace", "replay", "repair"} {
		args := []string{cmd, empty}
		if cmd == "trace" {
			args = append(args, "1")
		}
		r := runCmd(t, "", args...)
		if r.code != exitFailure {
			t.Errorf("%s on an empty directory: exit %d, want %d", cmd, r.code, exitFailure)
		}
		wantContains(t, cmd+" stderr", r.stderr, "is not a batpak store")
		if strings.Contains(r.stderr, "did you mean") {
			t.Errorf("%s on an empty directory suggests a store:\n%s", cmd, r.stderr)
		}
	}
	r := runCmd(t, "", "inspect", filepath.Join(empty, "missing"))
	r.wantCode(t, exitFailure)
	wantContains(t, "stderr", r.stderr, "does not exist")
}

// A directory that holds one store one level down, as an application's
// data directory does, gets a hint; one that holds two does not.
func TestNotAStoreHint(t *testing.T) {
	ts := newTestStore(t, 3)
	parent := filepath.Dir(ts.dir)
	if err := os.WriteFile(filepath.Join(parent, "notes.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(parent, "snapshots"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"inspect", "verify", "stats", "dump", "tail", "replay", "repair"} {
		r := runCmd(t, "", cmd, parent)
		r.wantCode(t, exitFailure)
		wantContains(t, cmd+" stderr", r.stderr, parent+" is not a batpak store", "; did you mean "+ts.dir+"?")
	}
	second := newTestStore(t, 1)
	if err := os.Rename(second.dir, filepath.Join(parent, "other")); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, "", "inspect", parent)
	r.wantCode(t, exitFailure)
	wantContains(t, "stderr", r.stderr, "is not a batpak store")
	if strings.Contains(r.stderr, "did you mean") {
		t.Errorf("a hint with two stores below:\n%s", r.stderr)
	}
}

func TestHelp(t *testing.T) {
	r := runCmd(t, "", "--help")
	r.wantCode(t, exitOK)
	wantContains(t, "help", r.stdout, "inspect", "verify", "tail", "trace", "stats", "repair", "dump", "replay", "serve", "Exit codes")
	for _, cmd := range []string{"inspect", "verify", "tail", "trace", "stats", "repair", "dump", "replay", "serve"} {
		r := runCmd(t, "", cmd, "--help")
		r.wantCode(t, exitOK)
		wantContains(t, cmd+" --help", r.stdout, "Usage:", "batpak "+cmd)
	}
}

// Every command says in its help what its exit codes mean.
func TestHelpDocumentsExitCodes(t *testing.T) {
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard}
	root := a.rootCmd()
	if !strings.Contains(root.Long, "Exit codes:") {
		t.Error("batpak --help does not document the exit codes")
	}
	for _, cmd := range root.Commands() {
		if cmd.Hidden || cmd.Name() == "help" {
			continue
		}
		if !strings.Contains(cmd.Long, "Exit codes:") {
			t.Errorf("batpak %s --help does not document its exit codes", cmd.Name())
		}
	}
}
