package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/projection"
)

// picky fails to apply the events of its list.
type picky struct {
	name    string
	fail    map[uint64]bool
	applied []uint64
}

func (p *picky) Name() string          { return p.name }
func (p *picky) Region() batpak.Region { return batpak.Region{} }
func (p *picky) Apply(_ context.Context, rec batpak.Record) error {
	if p.fail[rec.Sequence] {
		return fmt.Errorf("no room for #%d", rec.Sequence)
	}
	p.applied = append(p.applied, rec.Sequence)
	return nil
}

// projectionsDir runs three projections over the store in checkpoint
// directory dir: "all" applies everything, "orders" stops at #5 and
// "mail" parks #3 and #4 and goes on.
func projectionsDir(t *testing.T, ctx context.Context, store, dir string) {
	t.Helper()
	s, err := eventstore.OpenReadOnly(store)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cps, err := projection.NewFileCheckpoints(dir)
	if err != nil {
		t.Fatal(err)
	}
	fast := projection.Policy{Attempts: 2, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
	cont := fast
	cont.Then = projection.Continue
	r := projection.NewRunner(s, cps, projection.WithPolicy(fast), projection.WithPolicyFor("mail", cont))
	if _, err := r.CatchUp(ctx, &picky{name: "all"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CatchUp(ctx, &picky{name: "orders", fail: map[uint64]bool{5: true}}); err == nil {
		t.Fatal("orders went past #5")
	}
	if _, err := r.CatchUp(ctx, &picky{name: "mail", fail: map[uint64]bool{3: true, 4: true}}); err != nil {
		t.Fatal(err)
	}
}

func TestProjections(t *testing.T) {
	ctx := hangContext(t)
	ts := newTestStore(t, 20)
	dir := filepath.Join(t.TempDir(), "checkpoints")
	projectionsDir(t, ctx, ts.dir, dir)

	r := runCmd(t, "", "projections", dir)
	r.wantCode(t, exitOK)
	wantContains(t, "projections", r.stdout,
		"PROJECTION", "all ", "orders ", "mail ",
		"1 (stopped at #5)", "parked events:",
		"no room for #5", "no room for #3", "stopped", "passed",
	)
	r = runCmd(t, "", "projections", dir, "--store", ts.dir)
	r.wantCode(t, exitOK)
	wantContains(t, "projections --store", r.stdout, fmt.Sprintf("%d", ts.events-4))

	r = runCmd(t, "", "projections", dir, "--store", ts.dir, "--json")
	r.wantCode(t, exitOK)
	var infos []struct {
		Projection string
		Position   uint64
		LagEvents  *uint64 `json:"lag_events"`
		Parked     []projection.DeadLetter
	}
	if err := json.Unmarshal([]byte(r.stdout), &infos); err != nil {
		t.Fatal(err)
	}
	if len(infos) != 3 || infos[0].Projection != "all" || infos[1].Projection != "mail" || infos[2].Projection != "orders" {
		t.Fatalf("projections --json = %+v", infos)
	}
	if o := infos[2]; o.Position != 5 || o.LagEvents == nil || *o.LagEvents != ts.events-4 ||
		len(o.Parked) != 1 || !o.Parked[0].Stopped || o.Parked[0].Attempts != 2 {
		t.Fatalf("orders = %+v", o)
	}
	if m := infos[1]; m.Position != ts.events+1 || *m.LagEvents != 0 || len(m.Parked) != 2 || m.Parked[0].Stopped {
		t.Fatalf("mail = %+v", m)
	}

	// Asked for: the listing shows it, and the next run does it.
	r = runCmd(t, "", "projections", "skip", dir, "orders", "5")
	r.wantCode(t, exitOK)
	wantContains(t, "projections skip", r.stdout, "asked to skip #5 of orders")
	r = runCmd(t, "", "projections", "retry", dir, "mail", "4")
	r.wantCode(t, exitOK)
	r = runCmd(t, "", "projections", dir)
	wantContains(t, "projections after the requests", r.stdout, "stopped, skip asked", "passed, retry asked")

	s, err := eventstore.OpenReadOnly(ts.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cps, _ := projection.NewFileCheckpoints(dir)
	runner := projection.NewRunner(s, cps)
	orders, mail := &picky{name: "orders"}, &picky{name: "mail"}
	if next, err := runner.CatchUp(ctx, orders); err != nil || next != ts.events+1 || len(orders.applied) != int(ts.events)-5 {
		t.Fatalf("orders after the skip: CatchUp = %d, %v, applied %v", next, err, orders.applied)
	}
	if _, err := runner.CatchUp(ctx, mail); err != nil || len(mail.applied) != 1 || mail.applied[0] != 4 {
		t.Fatalf("mail after the retry: %v, applied %v", err, mail.applied)
	}
	r = runCmd(t, "", "projections", dir, "--json")
	r.wantCode(t, exitOK)
	infos = nil
	_ = json.Unmarshal([]byte(r.stdout), &infos)
	if len(infos) != 3 || len(infos[2].Parked) != 0 || len(infos[1].Parked) != 1 || infos[1].Parked[0].Sequence != 3 {
		t.Fatalf("after the requests: %+v", infos)
	}
}

func TestProjectionsErrors(t *testing.T) {
	ctx := hangContext(t)
	ts := newTestStore(t, 10)
	dir := filepath.Join(t.TempDir(), "checkpoints")
	projectionsDir(t, ctx, ts.dir, dir)

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"missing dir", []string{"projections", filepath.Join(dir, "nope")}, exitFailure, "does not exist"},
		{"empty dir", []string{"projections", t.TempDir()}, exitFailure, "holds no projection"},
		{"not parked", []string{"projections", "retry", dir, "orders", "6"}, exitFailure, "no parked event #6"},
		{"unknown projection", []string{"projections", "skip", dir, "nobody", "5"}, exitFailure, "no parked event"},
		{"bad sequence", []string{"projections", "retry", dir, "orders", "x"}, exitUsage, "invalid sequence"},
		{"zero sequence", []string{"projections", "retry", dir, "orders", "0"}, exitUsage, "invalid sequence"},
		{"missing arguments", []string{"projections", "skip", dir}, exitUsage, "accepts 3 arg(s)"},
		{"bad name", []string{"projections", "skip", dir, "../x", "5"}, exitFailure, "name must match"},
		{"bad store", []string{"projections", dir, "--store", dir}, exitFailure, "not a batpak store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCmd(t, "", tc.args...)
			r.wantCode(t, tc.code)
			wantContains(t, "stderr", r.stderr, tc.stderr)
		})
	}

	// A damaged dead-letter file is shown and fails the listing.
	path := filepath.Join(dir, "orders.parked")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[1] ^= 0x20
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, "", "projections", dir)
	r.wantCode(t, exitFailure)
	wantContains(t, "stdout", r.stdout, "orders", "damaged")
	wantContains(t, "stderr", r.stderr, "1 projection(s) have a damaged")
}
