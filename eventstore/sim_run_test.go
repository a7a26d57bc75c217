package eventstore_test

// The simulation's runner (see sim_test.go): applies steps to a real store
// on a faultfs file system, settles each answer with the model and checks
// the invariant after every step.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/vfs"
	"github.com/batpak-go/batpak/vfs/faultfs"
)

// simStats counts what lifetimes did, for the test's log.
type simStats struct {
	lifetimes, steps, events                    int
	crashes, powerLosses, damages, refusals     int
	detected, unnoticed                         int
	lost, adopted, compactions, races, roChecks int
	reopens, ckptIgnored                        int
	ckptReason                                  string // the last reason a clean Close's checkpoint was ignored
}

type simRunner struct {
	t     *testing.T
	cfg   simConfig
	dir   string
	fsys  *faultfs.FS
	s     *eventstore.Store // the writer; nil while a crash step has it down
	ro    *simRO
	m     *simModel
	clock atomic.Int64
	stats *simStats
	// Inside a crash step: failed requests become maybes.
	crashing bool
	maybes   []*simReq
	slow     atomic.Bool // racing steps run on a disk's latencies (simSlowFS)
}

// simRun runs one lifetime in a new directory under base. It returns the
// index of the step that failed (len(steps) for the final checks) and the
// failure, or -1 and nil.
func simRun(t *testing.T, base string, seed uint64, cfg simConfig, steps []simStep, stats *simStats) (int, error) {
	cryptotest.SetGlobalRandom(t, seed) // event ids
	dir, err := os.MkdirTemp(base, "life-")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	r := &simRunner{t: t, cfg: cfg, dir: dir, fsys: faultfs.New(nil), m: newSimModel(), stats: stats}
	r.clock.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro())
	stats.lifetimes++
	defer r.abandon()
	if err := r.open(); err != nil {
		return 0, simFail("open-error", "first open: %v", err)
	}
	for i := range steps {
		stats.steps++
		if err := r.step(&steps[i]); err != nil {
			var f *simFailure
			if errors.As(err, &f) {
				f.Kind = simKindAt(steps[i].Op, f.Kind)
			}
			return i, err
		}
	}
	stats.events += int(r.m.last())
	if err := r.finish(); err != nil {
		return len(steps), err
	}
	return -1, nil
}

// simKindAt classifies a failure of a check kind in a step of op, for
// reports and shrinking: the damage verdict and the crash recovery are
// kinds of their own; a racing step fails in whichever way its schedule
// led to, so all its failures are one kind.
func simKindAt(op simOp, kind string) string {
	switch {
	case kind == "ro-read":
		return kind
	case op == simDamage || op == simCrash:
		return strings.TrimPrefix(op.String(), "sim") + "/" + kind
	case op == simRaceCompact || op == simRaceRead || op == simGroup:
		return strings.TrimPrefix(op.String(), "sim")
	}
	return kind
}

func (r *simRunner) opts() []eventstore.Option {
	return []eventstore.Option{
		eventstore.WithSegmentMaxBytes(r.cfg.SegBytes), eventstore.WithCheckpointEvery(r.cfg.CkptEvery),
		eventstore.WithPreallocation(r.cfg.Prealloc), eventstore.WithSyncMode(eventstore.SyncEveryCommit),
		eventstore.WithClock(func() time.Time { return time.UnixMicro(r.clock.Add(1000)) }),
		eventstore.WithFS(simSlowFS{FS: r.fsys, slow: &r.slow}),
	}
}

func (r *simRunner) open() error {
	s, err := eventstore.Open(r.dir, r.opts()...)
	if err != nil {
		return err
	}
	r.s = s
	return nil
}

// abandon closes whatever is open, ignoring errors (a crashed store).
func (r *simRunner) abandon() {
	if r.ro != nil {
		_ = r.ro.s.Close()
		r.ro = nil
	}
	if r.s != nil {
		_ = r.s.Close()
		r.s = nil
	}
}

func (r *simRunner) step(st *simStep) error {
	var err error
	switch st.Op {
	case simAppend, simBatch, simDelete:
		err = r.request(st, false)
	case simGroup:
		err = r.group(st)
	case simCompact:
		err = r.compact(st)
	case simReopen:
		err = r.reopen()
	case simOpenRO:
		err = r.openRO()
	case simCloseRO:
		err = r.closeRO()
	case simCrash:
		return r.crash(st)
	case simDamage:
		return r.damage(st)
	case simRaceCompact:
		err = r.raceCompact(st)
	case simRaceRead:
		err = r.raceRead(st)
	}
	if err != nil {
		return err
	}
	return r.checkAll(simAllow{})
}

func (r *simRunner) checkAll(al simAllow) error {
	if err := r.check(al); err != nil {
		return err
	}
	return r.checkRO(false)
}

// request sends an append, batch or deletion and settles its answer.
func (r *simRunner) request(st *simStep, concurrent bool) error {
	if r.s == nil {
		return nil // a crash step whose store is down
	}
	r.m.mu.Lock()
	q := r.m.request(st)
	r.m.mu.Unlock()
	ctx := context.Background()
	var opts []batpak.AppendOption
	if q.key != "" {
		opts = append(opts, batpak.WithIdempotencyKey(q.key))
	}
	var rs []batpak.Receipt
	var err error
	switch {
	case q.del != "":
		err = r.s.DeleteStream(ctx, simCoord(q.del))
	case st.Op == simBatch:
		items := make([]batpak.BatchItem, len(q.items))
		for i, it := range q.items {
			items[i] = batpak.BatchItem{Coordinate: simCoord(it.entity), Expected: it.expect,
				Event: batpak.Event{Kind: simKind, Payload: batpak.RawPayload(it.payload)}}
		}
		rs, err = r.s.AppendBatch(ctx, items, opts...)
	default:
		evs := make([]batpak.Event, len(q.items))
		for i, it := range q.items {
			evs[i] = batpak.Event{Kind: simKind, Payload: batpak.RawPayload(it.payload)}
		}
		opts = append(opts, batpak.ExpectVersion(q.items[0].expect))
		rs, err = r.s.Append(ctx, simCoord(st.Entity), evs, opts...)
	}
	maybe, fail := r.m.settle(q, rs, err, r.crashing, concurrent)
	if maybe {
		r.maybes = append(r.maybes, q)
	}
	return fail
}

func (r *simRunner) compact(st *simStep) error {
	if r.s == nil {
		return nil
	}
	r.stats.compactions++
	_, err := r.s.Compact(context.Background(), eventstore.RetainIf(simRetained(st.Drop, st.DropEntity)))
	r.m.compacted(st.Drop, st.DropEntity) // also after an error: it may have rewritten some segments
	if err != nil && !r.crashing {
		return simFail("compact-error", "Compact: %v", err)
	}
	return nil
}

// reopen closes the writer and opens it again. Outside a crash step the
// checkpoint Close wrote must be used.
func (r *simRunner) reopen() error {
	if r.s != nil {
		err := r.s.Close()
		r.s = nil
		if err != nil && !r.crashing {
			return simFail("close-error", "Close: %v", err)
		}
	}
	r.stats.reopens++
	if err := r.open(); err != nil {
		if r.crashing {
			return nil
		}
		return simFail("open-error", "Open after Close: %v", err)
	}
	// A clean Close's checkpoint should be used; that it is not is slow,
	// not wrong (the events are checked either way), so it is counted.
	if cs := r.s.Stats().ColdStart; !r.crashing && r.s.LastSequence() > 0 && cs.Path != "checkpoint" {
		r.stats.ckptIgnored++
		r.stats.ckptReason = cs.CheckpointIgnored
	}
	return nil
}

// crash runs the step's requests with a crash at file call At (or after
// them), abandons the store, cuts the power as the step says and reopens:
// every acknowledged event must be there, and each failed request whole
// or not at all.
func (r *simRunner) crash(st *simStep) error {
	if err := r.closeRO(); err != nil {
		return err
	}
	r.stats.crashes++
	r.fsys.CrashAt(st.At)
	r.crashing, r.maybes = true, nil
	for i := range st.Do {
		sub := &st.Do[i]
		var err error
		switch sub.Op {
		case simAppend, simBatch, simDelete:
			err = r.request(sub, false)
		case simCompact:
			err = r.compact(sub)
		case simReopen:
			err = r.reopen()
		}
		if err != nil {
			r.crashing = false
			return err
		}
	}
	r.crashing = false
	r.fsys.Crash()
	r.abandon()
	var err error
	switch st.Power {
	case simPowerLoss:
		err = r.fsys.PowerLoss()
	case simPowerLossKeepEntries:
		err = r.fsys.PowerLossKeepingEntries()
	}
	if err != nil {
		return fmt.Errorf("harness: power loss: %w", err)
	}
	if st.Power != simProcessCrash {
		r.stats.powerLosses++
	}
	r.fsys.Restart()
	r.m.afterCrash()
	flexDel := map[string]bool{}
	for _, q := range r.maybes {
		if q.del != "" {
			flexDel[q.del] = true
		}
	}
	if err := r.open(); err != nil {
		return simFail("open-error", "Open after a crash: %v", err)
	}
	return r.checkAll(simAllow{maybes: r.maybes, flexDel: flexDel})
}

// finish closes the store, verifies the directory, reopens and checks
// once more.
func (r *simRunner) finish() error {
	if err := r.closeRO(); err != nil {
		return err
	}
	err := r.s.Close()
	r.s = nil
	if err != nil {
		return simFail("close-error", "final Close: %v", err)
	}
	if vr, err := eventstore.Verify(r.dir); err != nil || !vr.OK() {
		return simFail("verify", "Verify after the lifetime: %v %+v", err, vr)
	}
	if err := r.open(); err != nil {
		return simFail("open-error", "final Open: %v", err)
	}
	if err := r.check(simAllow{}); err != nil {
		return err
	}
	err = r.s.Close()
	r.s = nil
	if err != nil {
		return simFail("close-error", "final Close: %v", err)
	}
	return nil
}

// simSlowFS gives the faultfs file system a disk's latencies while a racing
// step runs (as holeSlowFS in trustholes_test.go): on a RAM disk the windows
// inside a rotation and a compaction are too narrow for the races those
// steps look for.
type simSlowFS struct {
	*faultfs.FS
	slow *atomic.Bool
}

func (f simSlowFS) SyncDir(name string) error {
	if f.slow.Load() {
		time.Sleep(300 * time.Microsecond)
	}
	return f.FS.SyncDir(name)
}

func (f simSlowFS) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	if flag == os.O_RDONLY && strings.HasSuffix(name, ".seg") && f.slow.Load() {
		time.Sleep(100 * time.Microsecond)
	}
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return simSlowFile{File: file, slow: f.slow}, nil
}

func (f simSlowFS) Preallocate(file vfs.File, size int64) error {
	if sf, ok := file.(simSlowFile); ok {
		file = sf.File
	}
	return f.FS.Preallocate(file, size)
}

type simSlowFile struct {
	vfs.File
	slow *atomic.Bool
}

func (f simSlowFile) Sync() error {
	if f.slow.Load() {
		time.Sleep(100 * time.Microsecond)
	}
	return f.File.Sync()
}
