package main

import (
	"fmt"
	"testing"
)

func TestReplay(t *testing.T) {
	ts := newTestStore(t, 25)
	r := runCmd(t, "", "replay", ts.dir)
	r.wantCode(t, exitOK)
	wantContains(t, "replay", r.stdout, fmt.Sprintf("replayed %d of %d events", ts.events, ts.events), "kind ", "scope ")

	r = runCmd(t, "", "replay", ts.dir, "--from", "3", "--quiet")
	r.wantCode(t, exitOK)
	wantContains(t, "replay --from 3", r.stdout, fmt.Sprintf("replayed %d of", ts.events-2))

	r = runCmd(t, "", "replay", ts.dir, "--kind", "nonsense")
	r.wantCode(t, exitUsage)
}
