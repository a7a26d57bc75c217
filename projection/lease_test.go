//go:build unix

package projection_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/projection"
)

// sharedModel is a read model that every runner writes, as a database
// shared by several processes would be: it records who applied which
// sequence, and when.
type sharedModel struct {
	mu      sync.Mutex
	applied []appliedBy
	changed chan struct{}
}

type appliedBy struct {
	seq uint64
	by  string
	at  time.Time
}

func (a appliedBy) String() string { return fmt.Sprintf("%d by %s", a.seq, a.by) }

func newSharedModel() *sharedModel { return &sharedModel{changed: make(chan struct{})} }

// runner returns the projection "shared" as runner by sees it.
func (m *sharedModel) runner(by string) projection.Projection { return &sharedProjection{m: m, by: by} }

func (m *sharedModel) add(seq uint64, by string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.applied = append(m.applied, appliedBy{seq: seq, by: by, at: time.Now()})
	close(m.changed)
	m.changed = make(chan struct{})
}

// waitFor waits until the model holds n applications.
func (m *sharedModel) waitFor(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	for {
		m.mu.Lock()
		got, changed := len(m.applied), m.changed
		m.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("waiting for %d applied events, have %d: %v", n, got, ctx.Err())
		}
	}
}

func (m *sharedModel) snapshot() []appliedBy {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.applied)
}

// checkHandover checks that every sequence of 1..n was applied exactly
// once and in order, by the runners of order one after the other: each
// runner's first application comes after the last of the one before.
func checkHandover(t *testing.T, got []appliedBy, n uint64, order ...string) {
	t.Helper()
	if uint64(len(got)) != n {
		t.Fatalf("%d applications of %d events: %v", len(got), n, got)
	}
	turn := 0
	for i, a := range got {
		if a.seq != uint64(i)+1 {
			t.Fatalf("application %d is sequence %d (by %s): an event applied twice or skipped", i+1, a.seq, a.by)
		}
		for turn < len(order) && a.by != order[turn] {
			turn++
		}
		if turn == len(order) {
			t.Fatalf("sequence %d applied by %s out of turn (order %v)", a.seq, a.by, order)
		}
		if i > 0 && a.at.Before(got[i-1].at) {
			t.Fatalf("sequence %d applied by %s before sequence %d by %s", a.seq, a.by, got[i-1].seq, got[i-1].by)
		}
	}
}

type sharedProjection struct {
	m  *sharedModel
	by string
}

func (p *sharedProjection) Name() string          { return "shared" }
func (p *sharedProjection) Region() batpak.Region { return batpak.Region{} }
func (p *sharedProjection) Apply(_ context.Context, rec batpak.Record) error {
	p.m.add(rec.Sequence, p.by)
	return nil
}

func newFileLeases(t *testing.T, dir string) *projection.FileLeases {
	t.Helper()
	ls, err := projection.NewFileLeases(dir, projection.WithLeasePoll(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func TestFileLeasesOneHolderAtATime(t *testing.T) {
	ctx := hangContext(t)
	dir := t.TempDir()
	ls := newFileLeases(t, dir)
	a, err := ls.Acquire(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	// Another lease on the same directory (another process would do the
	// same) does not get it while a holds it; a different name is free.
	other := newFileLeases(t, dir)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := other.Acquire(short, "p"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Acquire while held = %v, want the context's deadline", err)
	}
	q, err := other.Acquire(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		b, err := other.Acquire(ctx, "p")
		if err == nil {
			err = b.Release(ctx)
		}
		got <- err
	}()
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	select {
	case <-a.Lost():
		t.Fatal("a file lease reports itself lost")
	default:
	}
	_ = q.Release(ctx)
	if _, err := ls.Acquire(ctx, "../escape"); !errors.Is(err, projection.ErrBadName) {
		t.Fatalf("Acquire of a path = %v, want ErrBadName", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "p.lease")); !strings.HasPrefix(string(b), "pid ") {
		t.Fatalf("lease file holds %q", b)
	}
}

// TestRunnersHandOverWithFileLeases runs two runners of one projection in
// one process: the second waits while the first runs; when the first
// stops, the second takes over from the checkpoint, and every event is
// applied exactly once.
func TestRunnersHandOverWithFileLeases(t *testing.T) {
	ctx := hangContext(t)
	s := openStore(t)
	appendN(t, s, "a", kindAdded, 10)
	cps, err := projection.NewFileCheckpoints(filepath.Join(t.TempDir(), "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	leases := filepath.Join(t.TempDir(), "leases")
	m := newSharedModel()
	// A long checkpoint interval: the handover relies on the save at stop.
	ra := projection.NewRunner(s, cps, projection.WithLeases(newFileLeases(t, leases)), projection.WithCheckpointEvery(1000, time.Hour))
	rb := projection.NewRunner(s, cps, projection.WithLeases(newFileLeases(t, leases)), projection.WithCheckpointEvery(1000, time.Hour))
	ctxA, stopA := context.WithCancel(ctx)
	defer stopA()
	waitA := ra.Start(ctxA, m.runner("A"))
	m.waitFor(t, ctx, 10)
	ctxB, stopB := context.WithCancel(ctx)
	defer stopB()
	waitB := rb.Start(ctxB, m.runner("B"))
	appendN(t, s, "a", kindAdded, 10)
	if err := ra.Await(ctx, s.LastSequence()); err != nil {
		t.Fatal(err)
	}
	// B waits for the lease: it is not running here, so Await returns.
	if err := rb.Await(ctx, s.LastSequence()); err != nil {
		t.Fatal(err)
	}
	stopA()
	if err := waitA(); !errors.Is(err, context.Canceled) {
		t.Fatalf("A ended with %v", err)
	}
	appendN(t, s, "a", kindAdded, 10)
	m.waitFor(t, ctx, 30)
	if err := rb.Await(ctx, s.LastSequence()); err != nil {
		t.Fatal(err)
	}
	stopB()
	if err := waitB(); !errors.Is(err, context.Canceled) {
		t.Fatalf("B ended with %v", err)
	}
	checkHandover(t, m.snapshot(), 30, "A", "B")
	if cp, _ := cps.Load(ctx, "shared"); cp != 31 {
		t.Fatalf("checkpoint %d, want 31", cp)
	}
}

// TestCatchUpWaitsForTheLease: CatchUp and Rebuild hold the lease too.
func TestCatchUpWaitsForTheLease(t *testing.T) {
	ctx := hangContext(t)
	s := openStore(t)
	appendN(t, s, "a", kindAdded, 5)
	ls := newFileLeases(t, t.TempDir())
	held, err := ls.Acquire(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	r := projection.NewRunner(s, projection.NewMemoryCheckpoints(), projection.WithLeases(ls))
	c := &counter{name: "c"}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := r.CatchUp(short, c); !errors.Is(err, context.DeadlineExceeded) || len(c.applied()) != 0 {
		t.Fatalf("CatchUp while another holds the lease = %v, applied %v", err, c.applied())
	}
	if _, err := r.Rebuild(short, c); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Rebuild while another holds the lease = %v", err)
	}
	if err := held.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if next, err := r.Rebuild(ctx, c); err != nil || next != 6 || !equal(c.applied(), dense(1, 5)) {
		t.Fatalf("Rebuild = %d, %v, applied %v", next, err, c.applied())
	}
	// Released after the rebuild: another holder gets it at once.
	again, err := ls.Acquire(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	_ = again.Release(ctx)
}

const leaseHelperEnv = "BATPAK_LEASE_HELPER"

// TestFileLeaseSurvivesKill runs the projection in a helper process, kills
// it with SIGKILL while it holds the lease, and checks that a runner here,
// waiting for the lease meanwhile, takes over from the helper's checkpoint:
// every event is applied exactly once, the helper's before the kill, ours
// after it.
func TestFileLeaseSurvivesKill(t *testing.T) {
	if os.Getenv(leaseHelperEnv) != "" {
		t.Skip("in the helper process")
	}
	ctx := hangContext(t)
	const n, helperApplies = 30, 12
	root := t.TempDir()
	storeDir, leases, cpDir, logPath := filepath.Join(root, "events"), filepath.Join(root, "leases"), filepath.Join(root, "checkpoints"), filepath.Join(root, "applied")
	w, err := eventstore.Open(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, w, "a", kindAdded, n)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestFileLeaseHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), leaseHelperEnv+"="+strings.Join([]string{storeDir, leases, cpDir, logPath, strconv.Itoa(helperApplies)}, string(os.PathListSeparator)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "READY" {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-ctx.Done():
		t.Fatalf("the helper did not get ready: %v\n%s", ctx.Err(), stderr.String())
	}

	// The helper holds the lease and is in the middle of an Apply.
	r, err := eventstore.OpenReadOnly(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cps, err := projection.NewFileCheckpoints(cpDir)
	if err != nil {
		t.Fatal(err)
	}
	waiting := &signalLeases{Leases: newFileLeases(t, leases), acquiring: make(chan struct{})}
	m := newSharedModel()
	runner := projection.NewRunner(r, cps, projection.WithLeases(waiting))
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	wait := runner.Start(rctx, m.runner("here"))
	<-waiting.acquiring
	killed := time.Now()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	m.waitFor(t, ctx, n-helperApplies)
	t.Logf("took over %v after the kill", m.snapshot()[0].at.Sub(killed))
	stop()
	if err := wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("runner ended with %v", err)
	}

	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var all []appliedBy
	for f := range strings.FieldsSeq(string(b)) {
		seq, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			t.Fatalf("helper log %q", b)
		}
		all = append(all, appliedBy{seq: seq, by: "helper", at: killed})
	}
	for _, a := range m.snapshot() {
		if !a.at.After(killed) {
			t.Fatalf("sequence %d applied here before the helper was killed", a.seq)
		}
		all = append(all, a)
	}
	checkHandover(t, all, n, "helper", "here")
}

// signalLeases closes acquiring when Acquire is first called.
type signalLeases struct {
	projection.Leases
	once      sync.Once
	acquiring chan struct{}
}

func (s *signalLeases) Acquire(ctx context.Context, name string) (projection.Lease, error) {
	s.once.Do(func() { close(s.acquiring) })
	return s.Leases.Acquire(ctx, name)
}

// TestFileLeaseHelperProcess is the helper of TestFileLeaseSurvivesKill:
// it runs the projection, writing each applied sequence to a log file and
// saving the checkpoint after each, and after the first k events prints
// READY and blocks in the next Apply until it is killed.
func TestFileLeaseHelperProcess(t *testing.T) {
	env := os.Getenv(leaseHelperEnv)
	if env == "" {
		t.Skip("run by TestFileLeaseSurvivesKill")
	}
	args := filepath.SplitList(env)
	storeDir, leases, cpDir, logPath := args[0], args[1], args[2], args[3]
	k, _ := strconv.ParseUint(args[4], 10, 64)
	s, err := eventstore.OpenReadOnly(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	cps, err := projection.NewFileCheckpoints(cpDir)
	if err != nil {
		t.Fatal(err)
	}
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	r := projection.NewRunner(s, cps, projection.WithLeases(newFileLeases(t, leases)), projection.WithCheckpointEvery(1, 0))
	p := &helperProjection{log: log, k: k}
	err = r.Run(context.Background(), p)
	t.Fatalf("Run returned %v", err)
}

type helperProjection struct {
	log *os.File
	k   uint64
}

func (p *helperProjection) Name() string          { return "shared" }
func (p *helperProjection) Region() batpak.Region { return batpak.Region{} }
func (p *helperProjection) Apply(ctx context.Context, rec batpak.Record) error {
	if rec.Sequence > p.k {
		fmt.Println("READY")
		<-ctx.Done()
		return ctx.Err()
	}
	_, err := fmt.Fprintln(p.log, rec.Sequence)
	return err
}
