//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/examples/bank/internal/bank"
)

// helperEnv names the store's directory to TestBankProcess.
const helperEnv = "BATPAK_BANK_HELPER"

// TestBankProcess is the process the kill test kills: the command on the
// directory in $BATPAK_BANK_HELPER with the steady workload as fast as it
// goes, printing STEP n after each of its commands, until it is killed.
func TestBankProcess(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("run by TestKilledWhileProjecting")
	}
	err := runWith(context.Background(), options{data: dir, steady: time.Millisecond,
		onStep: func(st bank.Step) { fmt.Println("STEP", st.N) }}, io.Discard)
	t.Fatalf("the command returned %v", err)
}

// TestKilledWhileProjecting runs the command on one -data directory again
// and again, SIGKILLs it at random points while its steady workload
// appends and its read models follow, and checks the SQL read model after
// each kill: the table holds exactly the events before its stored
// position, none applied twice, none skipped. A last run catches the table
// up to the whole log. Set BATPAK_SEED to replay a seed.
func TestKilledWhileProjecting(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("in the helper process")
	}
	if testing.Short() {
		t.Skip("runs helper processes")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("BATPAK_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seed %d (BATPAK_SEED=%d replays it)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	ctx := hangContext(t)
	dir := filepath.Join(t.TempDir(), "bank")

	const kills = 6
	for i := range kills {
		h := startHelper(t, ctx, dir)
		steps := 1 + rng.IntN(60)
		h.waitStep(t, ctx, steps)
		h.kill(t)
		next, last := checkTable(t, ctx, dir)
		t.Logf("kill %d, after %d or more steps: the table's position %d, the log's last event %d", i+1, steps, next, last)
	}

	var out bytes.Buffer
	if err := run(dir, false, &out); err != nil {
		t.Fatal(err)
	}
	if next, last := checkTable(t, ctx, dir); next != last+1 {
		t.Errorf("after a last run the table's position is %d, want %d", next, last+1)
	}
	if !strings.Contains(out.String(), "(table balances: as the accounts hold;") {
		t.Errorf("the last run's report:\n%s", out.String())
	}
}

// checkTable checks that the balances table of the store in dir holds
// exactly the events before its position, and returns that position and
// the log's last sequence.
func checkTable(t *testing.T, ctx context.Context, dir string) (next, last uint64) {
	t.Helper()
	db, err := openReadModels(filepath.Join(dir, readModelsDB))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	table, err := bank.ReadSQL(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	s, err := eventstore.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	last = s.LastSequence()
	if table.Next == 0 || table.Next > last+1 {
		t.Fatalf("the table's position is %d, the log's last event %d", table.Next, last)
	}
	reg := bank.Registry()
	want := make(map[string]bank.SQLRow)
	for rec, err := range s.Query(ctx, batpak.Region{Scope: bank.Scope, EntityPrefix: "account:"}) {
		if err != nil {
			t.Fatal(err)
		}
		if rec.Sequence >= table.Next {
			break
		}
		ev, err := reg.Decode(&rec)
		if err != nil {
			t.Fatal(err)
		}
		id := strings.TrimPrefix(rec.Coordinate.Entity, "account:")
		row := want[id]
		row.Balance += bank.Delta(ev)
		row.Events++
		want[id] = row
	}
	if !maps.Equal(table.Rows, want) {
		t.Fatalf("at position %d the table holds\n%v\nwhere the events before it make\n%v", table.Next, table.Rows, want)
	}
	return table.Next, last
}

// hangContext ends a little before the test's deadline, so that a hang
// fails with what the test waited for.
func hangContext(t *testing.T) context.Context {
	end := time.Now().Add(time.Hour)
	if d, ok := t.Deadline(); ok {
		end = d.Add(-min(time.Until(d)/10, time.Minute))
	}
	ctx, cancel := context.WithDeadline(t.Context(), end)
	t.Cleanup(cancel)
	return ctx
}

// helper is a running TestBankProcess and the steps it reported.
type helper struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	step int           // the last STEP n it printed
	more chan struct{} // closed and replaced with each line
	done chan struct{} // closed when its output ends
}

func startHelper(t *testing.T, ctx context.Context, dir string) *helper {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBankProcess$", "-test.count=1", "-test.timeout=1h")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, more: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	go func() {
		defer close(h.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			n, ok := strings.CutPrefix(sc.Text(), "STEP ")
			step, err := strconv.Atoi(n)
			if !ok || err != nil {
				continue
			}
			h.mu.Lock()
			h.step = step
			close(h.more)
			h.more = make(chan struct{})
			h.mu.Unlock()
		}
	}()
	return h
}

// waitStep waits until the helper reports step n or a later one.
func (h *helper) waitStep(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	for {
		h.mu.Lock()
		step, more := h.step, h.more
		h.mu.Unlock()
		if step >= n {
			return
		}
		select {
		case <-more:
		case <-h.done:
			t.Fatalf("the helper ended before step %d", n)
		case <-ctx.Done():
			t.Fatalf("waiting for step %d: %v", n, ctx.Err())
		}
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (h *helper) kill(t *testing.T) {
	t.Helper()
	if err := h.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = h.cmd.Wait()
}
