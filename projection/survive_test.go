package projection_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/projection"
	"github.com/batpak-go/batpak/vfs/faultfs"
)

// fast retries quickly, so tests do not wait for the default backoff.
func fast(then projection.Action) projection.Policy {
	return projection.Policy{Attempts: 3, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, Then: then}
}

// flaky is a projection whose Apply fails for chosen sequences: fails[seq]
// more times (-1: always).
type flaky struct {
	name    string
	mu      sync.Mutex
	fails   map[uint64]int
	calls   map[uint64]int
	seqs    []uint64 // applied, in order
	retried []uint64 // applied as a ParkedRetry
	changed chan struct{}
}

func newFlaky(name string, fails map[uint64]int) *flaky {
	if fails == nil {
		fails = map[uint64]int{}
	}
	return &flaky{name: name, fails: fails, calls: map[uint64]int{}, changed: make(chan struct{})}
}

func (f *flaky) Name() string          { return f.name }
func (f *flaky) Region() batpak.Region { return batpak.Region{} }
func (f *flaky) Apply(ctx context.Context, rec batpak.Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[rec.Sequence]++
	if n := f.fails[rec.Sequence]; n != 0 {
		if n > 0 {
			f.fails[rec.Sequence] = n - 1
		}
		return fmt.Errorf("cannot apply #%d", rec.Sequence)
	}
	f.seqs = append(f.seqs, rec.Sequence)
	if projection.ParkedRetry(ctx) {
		f.retried = append(f.retried, rec.Sequence)
	}
	close(f.changed)
	f.changed = make(chan struct{})
	return nil
}

// heal makes every later Apply succeed.
func (f *flaky) heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.fails)
}

func (f *flaky) applied() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.seqs)
}

func (f *flaky) retriedParked() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.retried)
}

// waitApplied waits until seq is applied.
func (f *flaky) waitApplied(t *testing.T, ctx context.Context, seq uint64) {
	t.Helper()
	for {
		f.mu.Lock()
		done, changed := slices.Contains(f.seqs, seq), f.changed
		f.mu.Unlock()
		if done {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("%s: waiting for #%d to be applied: %v (applied %v)", f.name, seq, ctx.Err(), f.applied())
		}
	}
}

func without(all []uint64, drop ...uint64) []uint64 {
	return slices.DeleteFunc(slices.Clone(all), func(s uint64) bool { return slices.Contains(drop, s) })
}

func statusOf(t *testing.T, ctx context.Context, r *projection.Runner, name string) projection.Status {
	t.Helper()
	for _, st := range r.Status(ctx) {
		if st.Projection == name {
			return st
		}
	}
	t.Fatalf("no status for %s", name)
	return projection.Status{}
}

// TestRunAllIsolatesAFailingProjection: a projection that stops at a
// parked event does not stop the others; it is reported, shows in the
// status, and runs again from the event once the event is retried.
func TestRunAllIsolatesAFailingProjection(t *testing.T) {
	ctx := hangContext(t)
	s := openStore(t)
	appendN(t, s, "a", kindAdded, 5)
	ok, bad := newFlaky("ok", nil), newFlaky("bad", map[uint64]int{3: -1})
	failed := make(chan error, 1)
	r := projection.NewRunner(s, projection.NewMemoryCheckpoints(), projection.WithPolicy(fast(projection.Stop)),
		projection.WithOnFailure(func(name string, err error) {
			if name == "bad" {
				failed <- err
			}
		}))
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wait := r.Start(rctx, ok, bad)
	var ae *projection.ApplyError
	select {
	case err := <-failed:
		if !errors.As(err, &ae) || ae.Sequence != 3 || ae.Attempts != 3 {
			t.Fatalf("reported failure %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the failure was not reported")
	}
	appendN(t, s, "a", kindAdded, 5)
	ok.waitApplied(t, ctx, 10)
	if got := bad.applied(); !equal(got, []uint64{1, 2}) {
		t.Fatalf("bad applied %v past its stop", got)
	}
	st := statusOf(t, ctx, r, "bad")
	if st.State != projection.Stopped || st.Position != 3 || st.Parked != 1 || st.LagEvents != 8 ||
		st.Applied != 2 || st.Retried != 2 || !errors.As(st.Err, &ae) {
		t.Fatalf("status of bad %+v", st)
	}
	if st := statusOf(t, ctx, r, "ok"); st.State != projection.Following || st.LagEvents != 0 || st.Lag != 0 ||
		st.Applied != 10 || st.Parked != 0 {
		t.Fatalf("status of ok %+v", st)
	}

	// Fixed, and retried: bad runs again from #3.
	bad.heal()
	if err := r.Retry(ctx, "bad", 3); err != nil {
		t.Fatal(err)
	}
	bad.waitApplied(t, ctx, 10)
	if err := r.Await(ctx, s.LastSequence()); err != nil {
		t.Fatal(err)
	}
	if got := bad.applied(); !equal(got, dense(1, 10)) {
		t.Fatalf("bad applied %v", got)
	}
	st = statusOf(t, ctx, r, "bad")
	for st.State == projection.CatchingUp { // Await saw the position; the state follows
		select {
		case <-ctx.Done():
			t.Fatalf("bad never left catching up: %+v", st)
		case <-time.After(time.Millisecond):
		}
		st = statusOf(t, ctx, r, "bad")
	}
	if st.State != projection.Following || st.Parked != 0 || st.Position != 11 || st.Err != nil {
		t.Fatalf("status of bad after the retry %+v", st)
	}
	if err := r.Retry(ctx, "bad", 3); !errors.Is(err, projection.ErrNotParked) {
		t.Fatalf("Retry of an event no longer parked = %v", err)
	}
	cancel()
	if err := wait(); !errors.Is(err, context.Canceled) || errors.As(err, &ae) {
		t.Fatalf("RunAll = %v", err)
	}
}

// TestRunAllReturnsFailures: a projection whose source fails stops for
// good, the others go on, and RunAll returns the failure with ctx's error.
func TestRunAllReturnsFailures(t *testing.T) {
	ctx := hangContext(t)
	s := openStore(t)
	appendN(t, s, "a", kindAdded, 3)
	boom := errors.New("checkpoint store down")
	cps := &failingCheckpoints{Checkpoints: projection.NewMemoryCheckpoints(), fail: "broken", err: boom}
	failed := make(chan string, 1)
	r := projection.NewRunner(s, cps, projection.WithOnFailure(func(name string, _ error) { failed <- name }))
	ok := newFlaky("ok", nil)
	rctx, cancel := context.WithCancel(ctx)
	wait := r.Start(rctx, ok, newFlaky("broken", nil))
	if name := <-failed; name != "broken" {
		t.Fatalf("failure reported for %s", name)
	}
	appendN(t, s, "a", kindAdded, 2)
	ok.waitApplied(t, ctx, 5)
	if st := statusOf(t, ctx, r, "broken"); st.State != projection.Failed || !errors.Is(st.Err, boom) {
		t.Fatalf("status of broken %+v", st)
	}
	cancel()
	if err := wait(); !errors.Is(err, context.Canceled) || !errors.Is(err, boom) {
		t.Fatalf("RunAll = %v, want ctx's error and the failure", err)
	}
}

type failingCheckpoints struct {
	projection.Checkpoints
	fail string
	err  error
}

func (f *failingCheckpoints) Load(ctx context.Context, name string) (uint64, error) {
	if name == f.fail {
		return 0, f.err
	}
	return f.Checkpoints.Load(ctx, name)
}

// TestContinueParksAndGoesOn: under Continue a failing event is parked
// and the projection applies the next ones; a retry applies it out of
// order (ParkedRetry) and a skip drops it.
func TestContinueParksAndGoesOn(t *testing.T) {
	ctx := hangContext(t)
	s := openStore(t)
	appendN(t, s, "a", kindAdded, 10)
	var parked []projection.DeadLetter
	cps := projection.NewMemoryCheckpoints()
	r := projection.NewRunner(s, cps, projection.WithPolicyFor("f", fast(projection.Continue)),
		projection.WithOnParked(func(d projection.DeadLetter) { parked = append(parked, d) }))
	f := newFlaky("f", map[uint64]int{3: -1, 7: -1})
	if next, err := r.CatchUp(ctx, f); err != nil || next != 11 {
		t.Fatalf("CatchUp = %d, %v", next, err)
	}
	if got := f.applied(); !equal(got, without(dense(1, 10), 3, 7)) {
		t.Fatalf("applied %v", got)
	}
	list, err := r.Parked(ctx, "f")
	if err != nil || len(list) != 2 || len(parked) != 2 {
		t.Fatalf("Parked = %v, %v; reported %v", list, err, parked)
	}
	d := list[0]
	if d.Projection != "f" || d.Sequence != 3 || d.Attempts != 3 || d.Stopped || d.Error != "cannot apply #3" ||
		d.EventID == ([16]byte{}) || d.Parked.IsZero() || d.LastFailed.Before(d.Parked) {
		t.Fatalf("dead letter %+v", d)
	}
	if st := statusOf(t, ctx, r, "f"); st.Parked != 2 || st.Retried != 4 || st.Applied != 8 || st.Position != 11 {
		t.Fatalf("status %+v", st)
	}

	// Asked for, not done yet: a retry of #3 that fails again stays
	// parked, its attempts added up and the request cleared.
	if err := r.Retry(ctx, "f", 3); err != nil {
		t.Fatal(err)
	}
	if err := r.Skip(ctx, "f", 7); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CatchUp(ctx, f); err != nil {
		t.Fatal(err)
	}
	list, _ = r.Parked(ctx, "f")
	if len(list) != 1 || list[0].Sequence != 3 || list[0].Attempts != 6 || list[0].Resolution != "" || !list[0].Parked.Equal(d.Parked) {
		t.Fatalf("after a failed retry and a skip: %+v", list)
	}
	f.heal()
	if err := r.Retry(ctx, "f", 3); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CatchUp(ctx, f); err != nil {
		t.Fatal(err)
	}
	if list, _ := r.Parked(ctx, "f"); len(list) != 0 {
		t.Fatalf("still parked: %+v", list)
	}
	if got := f.retriedParked(); !equal(got, []uint64{3}) {
		t.Fatalf("applied as parked retries: %v", got)
	}
	if got := f.applied(); !equal(got, append(without(dense(1, 10), 3, 7), 3)) {
		t.Fatalf("applied %v; #7 was skipped", got)
	}
	if err := r.Skip(ctx, "f", 7); !errors.Is(err, projection.ErrNotParked) {
		t.Fatalf("Skip of a skipped event = %v", err)
	}
}

// TestRetriesHideTransientFailures: an Apply that fails fewer times than
// the policy's attempts is retried, counted and not parked.
func TestRetriesHideTransientFailures(t *testing.T) {
	ctx := hangContext(t)
	s := openStore(t)
	appendN(t, s, "a", kindAdded, 4)
	r := projection.NewRunner(s, projection.NewMemoryCheckpoints(), projection.WithPolicy(fast(projection.Stop)))
	f := newFlaky("f", map[uint64]int{2: 2, 4: 1})
	if _, err := r.CatchUp(ctx, f); err != nil {
		t.Fatal(err)
	}
	if got := f.applied(); !equal(got, dense(1, 4)) {
		t.Fatalf("applied %v", got)
	}
	if st := statusOf(t, ctx, r, "f"); st.Retried != 3 || st.Applied != 4 || st.Parked != 0 || st.Err != nil {
		t.Fatalf("status %+v", st)
	}
}

// TestStoppedProjectionSurvivesARestart: the parked event is in the
// checkpoints' directory; a new runner (a restarted process) sees it,
// a skip asked through another handle on the directory (as "batpak
// projections skip" does) is done, and the file goes once nothing is
// parked.
func TestStoppedProjectionSurvivesARestart(t *testing.T) {
	ctx := hangContext(t)
	s := openStore(t)
	appendN(t, s, "a", kindAdded, 10)
	dir := filepath.Join(t.TempDir(), "checkpoints")
	open := func() *projection.Runner {
		cps, err := projection.NewFileCheckpoints(dir)
		if err != nil {
			t.Fatal(err)
		}
		return projection.NewRunner(s, cps, projection.WithPolicy(fast(projection.Stop)), projection.WithCheckpointEvery(1000, time.Hour))
	}
	f := newFlaky("f", map[uint64]int{6: -1})
	var ae *projection.ApplyError
	if _, err := open().CatchUp(ctx, f); !errors.As(err, &ae) || ae.Sequence != 6 {
		t.Fatalf("CatchUp = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "f.parked")); err != nil {
		t.Fatal(err)
	}
	// Restarted, still failing: it stops at #6 again, with more attempts.
	r := open()
	if _, err := r.CatchUp(ctx, f); !errors.As(err, &ae) || ae.Sequence != 6 {
		t.Fatalf("CatchUp after a restart = %v", err)
	}
	list, err := r.Parked(ctx, "f")
	if err != nil || len(list) != 1 || list[0].Attempts != 6 || !list[0].Stopped {
		t.Fatalf("Parked = %+v, %v", list, err)
	}
	other, err := projection.NewFileDeadLetters(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if names, err := other.Names(); err != nil || !slices.Equal(names, []string{"f"}) {
		t.Fatalf("Names = %v, %v", names, err)
	}
	if err := other.Resolve(ctx, "f", 6, projection.ResolveSkip); err != nil {
		t.Fatal(err)
	}
	if next, err := open().CatchUp(ctx, f); err != nil || next != 11 {
		t.Fatalf("CatchUp after the skip = %d, %v", next, err)
	}
	if got := f.applied(); !equal(got, without(dense(1, 10), 6)) {
		t.Fatalf("applied %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "f.parked")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the dead-letter file is still there: %v", err)
	}
}

// TestRunAllSeesAResolutionFromAnotherProcess: a stopped projection under
// RunAll starts again when another handle on the directory resolves its
// event, seen by polling.
func TestRunAllSeesAResolutionFromAnotherProcess(t *testing.T) {
	ctx := hangContext(t)
	s := openStore(t)
	appendN(t, s, "a", kindAdded, 5)
	dir := t.TempDir()
	cps, err := projection.NewFileCheckpoints(dir)
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{}, 1)
	r := projection.NewRunner(s, cps, projection.WithPolicy(fast(projection.Stop)), projection.WithResolvePoll(5*time.Millisecond),
		projection.WithOnFailure(func(string, error) { stopped <- struct{}{} }))
	f := newFlaky("f", map[uint64]int{2: -1})
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wait := r.Start(rctx, f)
	<-stopped
	other, err := projection.NewFileDeadLetters(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.heal()
	if err := other.Resolve(ctx, "f", 2, projection.ResolveRetry); err != nil {
		t.Fatal(err)
	}
	f.waitApplied(t, ctx, 5)
	if got := f.applied(); !equal(got, dense(1, 5)) {
		t.Fatalf("applied %v", got)
	}
	cancel()
	if err := wait(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// TestStatusLag: a projection stopped behind reports how far.
func TestStatusLag(t *testing.T) {
	ctx := hangContext(t)
	s := openStore(t)
	appendN(t, s, "a", kindAdded, 9)
	r := projection.NewRunner(s, projection.NewMemoryCheckpoints(), projection.WithPolicy(fast(projection.Stop)))
	if _, err := r.CatchUp(ctx, newFlaky("f", map[uint64]int{5: -1})); err == nil {
		t.Fatal("CatchUp went through a parked event")
	}
	rec, err := s.GetSequence(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	st := statusOf(t, ctx, r, "f")
	if st.Position != 5 || st.LagEvents != 5 || !st.LastApplied.Equal(rec.Timestamp) || st.Lag <= 0 {
		t.Fatalf("status %+v", st)
	}
	// A new runner (a restart) knows the age of the last applied event
	// from the checkpoint.
	cps := projection.NewMemoryCheckpoints()
	if err := cps.Save(ctx, "g", 5); err != nil {
		t.Fatal(err)
	}
	r2 := projection.NewRunner(s, cps, projection.WithPolicy(fast(projection.Stop)))
	if _, err := r2.CatchUp(ctx, newFlaky("g", map[uint64]int{5: -1})); err == nil {
		t.Fatal("CatchUp went through a parked event")
	}
	if st := statusOf(t, ctx, r2, "g"); !st.LastApplied.Equal(rec.Timestamp) || st.Applied != 0 {
		t.Fatalf("status after a restart %+v", st)
	}
}

// TestFileDeadLetters checks what only files have (deadletterstest holds
// the rest): names unfit for a file are refused, and a damaged file fails
// every call, untouched.
func TestFileDeadLetters(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dl, err := projection.NewFileDeadLetters(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "../x", ".hidden"} {
		if err := dl.Park(ctx, projection.DeadLetter{Projection: bad, Sequence: 1}); !errors.Is(err, projection.ErrBadName) {
			t.Errorf("Park(%q) = %v", bad, err)
		}
	}
	if err := dl.Park(ctx, projection.DeadLetter{Projection: "p", Sequence: 2}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "p.parked")
	b, _ := os.ReadFile(path)
	b[2] ^= 1
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := dl.Parked(ctx, "p"); !errors.Is(err, projection.ErrBadDeadLetters) {
		t.Fatalf("Parked of a damaged file = %v", err)
	}
	if err := dl.Park(ctx, projection.DeadLetter{Projection: "p", Sequence: 1}); !errors.Is(err, projection.ErrBadDeadLetters) {
		t.Fatalf("Park over a damaged file = %v, want it left alone", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, b) {
		t.Fatal("Park changed a damaged file")
	}
}

// TestFileDeadLettersCrashAtEveryCall stops the machine at every counted
// call of a Park: the list read back is the one before or the one after,
// and the one after once Park returned nil.
func TestFileDeadLettersCrashAtEveryCall(t *testing.T) {
	ctx := context.Background()
	first := projection.DeadLetter{Projection: "p", Sequence: 3, Error: "first"}
	second := projection.DeadLetter{Projection: "p", Sequence: 8, Error: "second"}
	open := func(t *testing.T, f *faultfs.FS) (*projection.FileDeadLetters, string) {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "checkpoints")
		dl, err := projection.NewFileDeadLetters(dir, f)
		if err != nil {
			t.Fatal(err)
		}
		if err := dl.Park(ctx, first); err != nil {
			t.Fatal(err)
		}
		return dl, dir
	}
	f := faultfs.New(nil)
	dl, _ := open(t, f)
	before := f.Calls()
	if err := dl.Park(ctx, second); err != nil {
		t.Fatal(err)
	}
	n := f.Calls() - before
	if n < 5 {
		t.Fatalf("a Park makes %d counted calls: it does not go through the FS", n)
	}
	for _, cut := range cuts {
		for k := 1; k <= n+1; k++ {
			t.Run(fmt.Sprintf("%s/at call %d of %d", cut.name, k, n), func(t *testing.T) {
				f := faultfs.New(nil)
				dl, dir := open(t, f)
				f.CrashAt(k)
				err := dl.Park(ctx, second)
				if err := cut.cut(f); err != nil {
					t.Fatal(err)
				}
				after, err2 := projection.NewFileDeadLetters(dir, nil)
				if err2 != nil {
					t.Fatal(err2)
				}
				list, lerr := after.Parked(ctx, "p")
				switch {
				case lerr != nil:
					t.Fatalf("Parked after the cut: %v", lerr)
				case len(list) == 2:
				case err == nil:
					t.Fatalf("Park returned nil, Parked = %+v", list)
				case len(list) != 1 || list[0].Sequence != 3:
					t.Fatalf("Parked = %+v, want the list before or after", list)
				}
			})
		}
	}
	// A failed write is an error that wraps its cause, and the list stays.
	f = faultfs.New(nil)
	dl, _ = open(t, f)
	f.FailOn(faultfs.OpSync, 1, syscall.EIO)
	if err := dl.Park(ctx, second); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Park with a failing sync = %v", err)
	}
	if list, err := dl.Parked(ctx, "p"); err != nil || len(list) != 1 {
		t.Fatalf("Parked after a failed Park = %+v, %v", list, err)
	}
}
