package main

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

func TestTraceSVG(t *testing.T) {
	ts := newTestStore(t, 10)
	for _, args := range [][]string{
		{"trace", ts.dir, ts.payment.EventID.String(), "--svg"},
		{"trace", ts.dir, "#11", "--format", "svg"},
	} {
		r := runCmd(t, "", args...)
		r.wantCode(t, exitOK)
		wantContains(t, "trace --svg", r.stdout, "<svg", `class="causal-node"`, "order:7", "payment:7", "shipment:7")
		if n := strings.Count(r.stdout, `class="causal-node"`); n != 3 {
			t.Errorf("%d event boxes, want 3", n)
		}
		dec := xml.NewDecoder(strings.NewReader(r.stdout))
		for {
			_, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("trace --svg is not well-formed XML: %v", err)
			}
		}
	}
	r := runCmd(t, "", "trace", ts.dir, "11", "--svg", "--format", "dot")
	r.wantCode(t, exitUsage)
	wantContains(t, "trace --svg --format dot", r.stderr, "contradict")
}
