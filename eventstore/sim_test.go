package eventstore_test

// TestSim is a seeded simulation of whole store lifetimes against a model
// (issue 12). One seed makes a lifetime: its options (4 or 16 KiB segments,
// a checkpoint every 0/1/3/8/50 events, preallocation on or off, always
// SyncEveryCommit) and a list of steps drawn up front with a math/rand/v2
// PCG (sim_steps_test.go): appends with right, wrong and no expected
// versions, idempotent keys and retries, atomic batches with a failing
// item, groups of concurrent appends some of which fail, stream deletions
// (also of deleted and unknown streams), compactions with RetainIf, close
// and reopen, read-only stores alongside the writer, crashes at the n-th
// file call (vfs/faultfs) during appends, batches, deletions,
// compactions, closes and opens, followed by a process crash or either kind
// of power loss, damage to the closed store's files (sim_damage_test.go:
// bit flips in frames, the last event, a footer or the checkpoint, a
// deleted checkpoint, cuts of the last segment, to 0 bytes too, an
// interrupted seal, a cut sealed segment), and two racing steps:
// compaction in a loop while two appenders rotate segments, and a
// read-only store reading while the writer appends, deletes and compacts.
// The clock is injected and event ids come from crypto/rand seeded per
// lifetime (testing/cryptotest), so a lifetime replays exactly unless it
// has racing steps, or crash steps while periodic checkpoints are written
// in the background (their file calls shift the crash point).
//
// After every step (sim_check_test.go) every acknowledged event the model
// says is visible reads back identical by Get, ReadAll and ReadStream
// (sequence, id, stream, version, kind, hash, previous hash, payload),
// nothing else is visible, Streams and StreamVersion agree, and a
// read-only store shows what it had at its open. A request that failed
// inside a crash step must be in the store whole or not at all. After
// damage the store must meet the verdict of sim_verdict_test.go: recover
// from crash-shaped damage (the lifetime goes on from there), and refuse
// genuine damage with ErrCorrupt naming a damaged segment or fail the
// reads of the damaged events with ErrCorrupt (then the files and the
// model are put back as they were before the damage). Each lifetime ends
// with Close, Verify, Open and a last check.
//
// Every failing lifetime is reported with its seed; the first of each kind
// of failure (the first three kinds, unless BATPAK_SIM=long) is shrunk
// (sim_shrink_test.go) and printed as a simReplay call to paste into a
// test.
//
// BATPAK_SIM_LIFETIMES (default 24), BATPAK_SIM_STEPS (default 60) and
// BATPAK_SIM_SEED (first seed, default 1) size the run; BATPAK_SIM=long
// runs 2,000 lifetimes of 100 steps. BATPAK_SIM_SHRINK caps the runs a
// shrink may take (default 200; 0 turns shrinking off).

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

func TestSim(t *testing.T) {
	long := os.Getenv("BATPAK_SIM") == "long"
	lifetimes, steps := int64(24), int64(60)
	if long {
		lifetimes, steps = 2000, 100
	}
	lifetimes = envIntLin("BATPAK_SIM_LIFETIMES", lifetimes)
	steps = envIntLin("BATPAK_SIM_STEPS", steps)
	first := uint64(envIntLin("BATPAK_SIM_SEED", 1))
	budget := 200
	if v, err := strconv.Atoi(os.Getenv("BATPAK_SIM_SHRINK")); err == nil && v >= 0 {
		budget = v
	}
	base := dtFastTempDir(t)
	var stats simStats
	start := time.Now()
	seen := map[string]bool{}
	for i := range uint64(lifetimes) {
		seed := first + i
		cfg, list := simGenerate(seed, int(steps))
		at, err := simRun(t, base, seed, cfg, list, &stats)
		if err == nil {
			continue
		}
		kind := simFailureKind(err)
		if seen[kind] {
			t.Errorf("seed %d (lifetime %d): step %d: %v (kind seen before: not shrunk)", seed, i+1, at, err)
			continue
		}
		seen[kind] = true
		t.Errorf("seed %d (lifetime %d of this run) fails at step %d of %d, %#v:\n\t%v", seed, i+1, at, len(list), list[min(at, len(list)-1)], err)
		if budget == 0 || !long && len(seen) > 3 { // bound the time a failing CI run takes
			continue
		}
		sh := &simShrinker{t: t, base: base, seed: seed, cfg: cfg, kind: kind, budget: budget}
		small := sh.shrink(list[:min(at+1, len(list))])
		if sh.last == nil {
			t.Errorf("seed %d did not fail again in %d runs (a race); its steps up to the failure (BATPAK_SIM_SEED=%d BATPAK_SIM_LIFETIMES=1 replays them):\n%s",
				seed, sh.runs, seed, simGoText(cfg, small))
		} else {
			t.Errorf("seed %d shrunk to %d steps in %d runs (BATPAK_SIM_SEED=%d BATPAK_SIM_LIFETIMES=1 replays it):\n\t%v\n%s",
				seed, len(small), sh.runs, seed, sh.last, simGoText(cfg, small))
		}
	}
	t.Logf("simulated %d lifetimes (seeds %d..%d) in %v: %s", stats.lifetimes, first, first+uint64(lifetimes)-1,
		time.Since(start).Round(time.Millisecond), stats.String())
	if stats.ckptIgnored > 0 {
		t.Logf("%d reopens after a clean Close did not use its checkpoint (the last: %q)", stats.ckptIgnored, stats.ckptReason)
	}
}

func (s *simStats) String() string {
	return fmt.Sprintf("%d steps, %d events acknowledged at the ends, %d crashes (%d with power loss), "+
		"%d damage steps (%d refused at open, %d found on read, %d in bytes no read touches, undone after the verdict), "+
		"%d events lost to allowed torn-tail cuts, %d failed requests found committed, %d compactions, %d races, "+
		"%d reopens, %d read-only checks",
		s.steps, s.events, s.crashes, s.powerLosses, s.damages, s.refusals, s.detected, s.unnoticed, s.lost, s.adopted,
		s.compactions, s.races, s.reopens, s.roChecks)
}

// simReplay runs one lifetime from a printed step list and fails the test
// with the failing step. A list with racing steps may need several runs.
func simReplay(t *testing.T, cfg simConfig, steps []simStep) {
	t.Helper()
	var stats simStats
	if at, err := simRun(t, dtFastTempDir(t), 1, cfg, steps, &stats); err != nil {
		t.Fatalf("step %d, %#v: %v", at, steps[min(at, len(steps)-1)], err)
	}
}
