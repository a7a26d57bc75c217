//go:build unix

package sqlproj_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	"github.com/batpak-go/batpak/projection/sqlproj"
)

const helperEnv = "BATPAK_SQLPROJ_HELPER"

// helperConfig tells a helper process what to run.
type helperConfig struct {
	Store   string // event store directory, opened read-only
	DB      string // SQLite database
	Leases  string // FileLeases directory; "" for none
	Parked  string // FileDeadLetters directory
	By      string // written with each row
	BlockAt uint64 // block forever in the middle of this event's transaction (0: never)
}

// helper is a running helper process and the lines it printed.
type helper struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	at    []time.Time
	more  chan struct{} // closed and replaced with each line
	done  chan struct{} // closed when its output ends
}

// startHelper runs TestHelperProcess with cfg in a child process.
func startHelper(t *testing.T, ctx context.Context, cfg helperConfig) *helper {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The timeout gives the child a timer, so a child blocked on purpose
	// is never taken for a deadlock; the parent kills it long before.
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.timeout=1h")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(b))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe() // never written: a blocked child reads it
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, more: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); _ = stdin.Close() })
	go func() {
		defer close(h.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.mu.Lock()
			h.lines = append(h.lines, sc.Text())
			h.at = append(h.at, time.Now())
			close(h.more)
			h.more = make(chan struct{})
			h.mu.Unlock()
		}
	}()
	return h
}

// waitLine waits for a line that ok accepts and returns when it came.
func (h *helper) waitLine(t *testing.T, ctx context.Context, what string, ok func(string) bool) time.Time {
	t.Helper()
	for i := 0; ; {
		h.mu.Lock()
		for ; i < len(h.lines); i++ {
			if ok(h.lines[i]) {
				at := h.at[i]
				h.mu.Unlock()
				return at
			}
		}
		more := h.more
		h.mu.Unlock()
		select {
		case <-more:
		case <-h.done:
			t.Fatalf("the helper ended before %s", what)
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		}
	}
}

// appliedAtLeast accepts "APPLIED n" for n >= k.
func appliedAtLeast(k uint64) func(string) bool {
	return func(line string) bool {
		n, ok := strings.CutPrefix(line, "APPLIED ")
		seq, err := strconv.ParseUint(n, 10, 64)
		return ok && err == nil && seq >= k
	}
}

func is(s string) func(string) bool { return func(line string) bool { return line == s } }

// kill sends SIGKILL and waits for the process to be gone.
func (h *helper) kill(t *testing.T) time.Time {
	t.Helper()
	if err := h.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	_ = h.cmd.Wait()
	return at
}

// newEvents makes a closed store of n events in dir.
func newEvents(t *testing.T, dir string, n int) {
	t.Helper()
	s, err := eventstore.Open(dir, eventstore.WithSyncMode(eventstore.SyncNone))
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// createTables creates the ledger's and the positions' tables before a
// helper runs.
func createTables(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	if _, err := sqlproj.NewPositions(ctx, openDB(t, path)); err != nil {
		t.Fatal(err)
	}
}

// TestKilledMidStream kills a helper process that applies events to
// SQLite, at whatever point it has reached after the first k commits:
// between two events or in the middle of one. The table then holds
// exactly the events before the stored position, each once, and a runner
// started afterwards goes on from there with no gap and no duplicate.
func TestKilledMidStream(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("in the helper process")
	}
	if testing.Short() {
		t.Skip("runs helper processes")
	}
	ctx := hangContext(t)
	const n, k = 1500, 100
	root := t.TempDir()
	cfg := helperConfig{Store: filepath.Join(root, "events"), DB: filepath.Join(root, "read.db"), Parked: filepath.Join(root, "parked"), By: "helper"}
	newEvents(t, cfg.Store, n)
	createTables(t, ctx, cfg.DB)

	h := startHelper(t, ctx, cfg)
	h.waitLine(t, ctx, fmt.Sprintf("APPLIED %d", k), appliedAtLeast(k))
	h.kill(t)

	db := openDB(t, cfg.DB)
	pos, err := sqlproj.NewPositions(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	next, err := pos.Load(ctx, "ledger")
	if err != nil {
		t.Fatal(err)
	}
	got := seqs(rows(t, db))
	if next < k+1 || !slices.Equal(got, dense(1, next-1)) {
		t.Fatalf("killed at position %d, the table holds %d rows: %v", next, len(got), got)
	}
	t.Logf("killed at position %d of %d", next, n+1)

	// A restart goes on from the position.
	s, err := eventstore.OpenReadOnly(cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := projection.NewRunner(s, pos)
	if last, err := r.CatchUp(ctx, pos.Projection(&ledger{by: "restart"})); err != nil || last != n+1 {
		t.Fatalf("CatchUp after the kill = %d, %v", last, err)
	}
	all := rows(t, db)
	if got := seqs(all); !slices.Equal(got, dense(1, n)) {
		t.Fatalf("after the restart the table holds %d rows, want 1..%d once each", len(got), n)
	}
	for _, r := range all {
		if want := map[bool]string{true: "helper", false: "restart"}[r.seq < next]; r.by != want {
			t.Fatalf("#%d written by %s, want %s", r.seq, r.by, want)
		}
	}
}

// TestLeaseHandoverKillsHolder runs one projection in two helper
// processes with FileLeases and a shared SQLite read model: A holds the
// lease and is killed with SIGKILL in the middle of an event's
// transaction; B, waiting for the lease meanwhile, takes over from the
// stored position. Every event is in the table once: A's up to the
// kill, B's after it, and A's half-written event is B's.
func TestLeaseHandoverKillsHolder(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("in the helper process")
	}
	if testing.Short() {
		t.Skip("runs helper processes")
	}
	ctx := hangContext(t)
	const n, blockAt = 300, 120
	root := t.TempDir()
	base := helperConfig{Store: filepath.Join(root, "events"), DB: filepath.Join(root, "read.db"),
		Leases: filepath.Join(root, "leases"), Parked: filepath.Join(root, "parked")}
	newEvents(t, base.Store, n)
	createTables(t, ctx, base.DB)

	cfgA, cfgB := base, base
	cfgA.By, cfgA.BlockAt = "A", blockAt
	cfgB.By = "B"
	a := startHelper(t, ctx, cfgA)
	a.waitLine(t, ctx, "A's lease", is("LEASE"))
	b := startHelper(t, ctx, cfgB)
	b.waitLine(t, ctx, "B waiting for the lease", is("ACQUIRING"))
	a.waitLine(t, ctx, "A blocked in a transaction", is("BLOCKED"))
	killed := a.kill(t)
	took := b.waitLine(t, ctx, "B's lease", is("LEASE"))
	b.waitLine(t, ctx, fmt.Sprintf("B applied %d", n), appliedAtLeast(n))
	t.Logf("B took the lease %v after A was killed", took.Sub(killed))
	if took.Before(killed) {
		t.Fatalf("B had the lease before A was killed")
	}
	b.kill(t)

	db := openDB(t, base.DB)
	all := rows(t, db)
	if got := seqs(all); !slices.Equal(got, dense(1, n)) {
		t.Fatalf("the table holds %d rows, want 1..%d once each: %v", len(got), n, got)
	}
	for _, r := range all {
		if want := map[bool]string{true: "A", false: "B"}[r.seq < blockAt]; r.by != want {
			t.Fatalf("#%d written by %s, want %s", r.seq, r.by, want)
		}
	}
}

// TestHelperProcess is the helper of the tests above: it runs the ledger
// projection as cfg says, printing LEASE when it holds the lease,
// APPLIED n after each commit and BLOCKED once it is stuck in the
// transaction of cfg.BlockAt, until it is killed.
func TestHelperProcess(t *testing.T) {
	env := os.Getenv(helperEnv)
	if env == "" {
		t.Skip("run by the tests that kill it")
	}
	var cfg helperConfig
	if err := json.Unmarshal([]byte(env), &cfg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := eventstore.OpenReadOnly(cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	db := openShared(t, cfg.DB)
	pos, err := sqlproj.NewPositions(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	dls, err := projection.NewFileDeadLetters(cfg.Parked, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := []projection.Option{projection.WithDeadLetters(dls), projection.WithCheckpointEvery(1000, time.Hour)}
	if cfg.Leases != "" {
		ls, err := projection.NewFileLeases(cfg.Leases, projection.WithLeasePoll(5*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, projection.WithLeases(printingLeases{ls}))
	}
	l := &ledger{by: cfg.By, block: func(seq uint64) {
		if seq == cfg.BlockAt {
			fmt.Println("BLOCKED")
			_, _ = io.Copy(io.Discard, os.Stdin) // until killed
		}
	}}
	err = projection.NewRunner(s, pos, opts...).Run(ctx, printing{pos.Projection(l)})
	t.Fatalf("Run returned %v", err)
}

// printing prints APPLIED n once an Apply returned.
type printing struct{ projection.Projection }

func (p printing) Apply(ctx context.Context, rec batpak.Record) error {
	err := p.Projection.Apply(ctx, rec)
	if err == nil {
		fmt.Println("APPLIED", rec.Sequence)
	}
	return err
}

// printingLeases prints ACQUIRING when it starts waiting and LEASE once
// it holds the lease.
type printingLeases struct{ projection.Leases }

func (p printingLeases) Acquire(ctx context.Context, name string) (projection.Lease, error) {
	fmt.Println("ACQUIRING")
	l, err := p.Leases.Acquire(ctx, name)
	if err == nil {
		fmt.Println("LEASE")
	}
	return l, err
}
