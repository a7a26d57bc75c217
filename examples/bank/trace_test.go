package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
)

// span is one line of the printed span tree.
type span struct {
	line   string
	parent int // index of the parent's line; -1 for the root
}

// parseTree reads the span tree that -trace prints: the lines after the
// "Trace ... of one transfer" header, each indented by three runes a level.
func parseTree(t *testing.T, out string) (traceID string, spans []span) {
	t.Helper()
	m := regexp.MustCompile(`(?s)\nTrace ([0-9a-f]{32}) of one transfer \(-trace\):\n(.*?)\n  its events in the log`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no span tree in the output:\n%s", out)
	}
	var stack []int // the last line seen at each depth
	for line := range strings.Lines(m[2]) {
		line = strings.TrimPrefix(strings.TrimRight(line, "\n"), "  ")
		name := strings.TrimLeft(line, "│├└─ ")
		depth := len([]rune(line[:len(line)-len(name)])) / 3
		if depth > len(stack) {
			t.Fatalf("line %q is deeper than its parent:\n%s", line, m[2])
		}
		stack = append(stack[:depth], len(spans))
		parent := -1
		if depth > 0 {
			parent = stack[depth-1]
		}
		spans = append(spans, span{line: name, parent: parent})
	}
	return m[1], spans
}

// TestRunTrace runs the command with -trace and checks the span tree of
// the scenario's first transfer: the transfer's span, under it each
// command with its load, its gates and its save, under each save the
// store's append and the projections that applied the event; and the transfer's events in the
// log name the trace.
func TestRunTrace(t *testing.T) {
	var out bytes.Buffer
	if err := runWith(context.Background(), options{trace: true}, &out); err != nil {
		t.Fatal(err)
	}
	traceID, spans := parseTree(t, out.String())
	gates := "gates=positive-amount,no-overdraft,frozen-account,daily-withdrawal-limit,no-self-transfer "
	// child and parent, as the start of their lines.
	want := [][2]string{
		{"bank.transfer id=t-1 from=alice to=carol amount=300 outcome=received ", ""},
		{"aggregate.execute entity=account:alice command=bank.SendTransfer event=14 version=5 outcome=committed ", "bank.transfer "},
		{"aggregate.load entity=account:alice version=4 ", "aggregate.execute entity=account:alice "},
		{"policy.evaluate " + gates, "aggregate.execute entity=account:alice "},
		{"aggregate.save entity=account:alice event=14 ", "aggregate.execute entity=account:alice "},
		{"aggregate.execute entity=account:carol command=bank.ReceiveTransfer event=15 version=3 outcome=committed ", "bank.transfer "},
		{"aggregate.load entity=account:carol version=2 ", "aggregate.execute entity=account:carol "},
		{"policy.evaluate " + gates, "aggregate.execute entity=account:carol "},
		{"aggregate.save entity=account:carol event=15 ", "aggregate.execute entity=account:carol "},
		{"batpak.append entity=account:alice event=14 ", "aggregate.save entity=account:alice "},
		{"batpak.append entity=account:carol event=15 ", "aggregate.save entity=account:carol "},
	}
	for _, p := range []string{"bank-balances", "bank-balances-sql", "bank-statement-alice", "bank-large-transfers"} {
		want = append(want, [2]string{"projection.apply projection=" + p + " entity=account:alice event=14 version=5 outcome=applied ", "aggregate.save entity=account:alice "})
	}
	for _, p := range []string{"bank-balances", "bank-balances-sql"} {
		want = append(want, [2]string{"projection.apply projection=" + p + " entity=account:carol event=15 version=3 outcome=applied ", "aggregate.save entity=account:carol "})
	}
	if len(spans) != len(want) {
		t.Errorf("%d spans in the tree, want %d:\n%s", len(spans), len(want), out.String())
	}
	for _, w := range want {
		if !hasSpan(spans, w[0], w[1]) {
			t.Errorf("no span %q under %q in the tree:\n%s", w[0], w[1], out.String())
		}
	}
	for _, ev := range []string{"#14 account:alice TransferSent", "#15 account:carol TransferReceived"} {
		if !regexp.MustCompile(ev + ` traceparent 00-` + traceID + `-[0-9a-f]{16}-01: this trace, span `).MatchString(out.String()) {
			t.Errorf("the output does not say that %s names trace %s:\n%s", ev, traceID, out.String())
		}
	}
}

// hasSpan reports whether a span's line starts with child and its
// parent's with parent ("" for the root).
func hasSpan(spans []span, child, parent string) bool {
	for _, s := range spans {
		if !strings.HasPrefix(s.line, child) {
			continue
		}
		if parent == "" && s.parent < 0 || s.parent >= 0 && strings.HasPrefix(spans[s.parent].line, parent) {
			return true
		}
	}
	return false
}
