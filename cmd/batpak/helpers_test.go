package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/segment"
)

var (
	kindDeposited = kind.Custom(1, 2)
	kindOrdered   = kind.Custom(2, 1)
	kindPaid      = kind.Custom(2, 2)
	kindShipped   = kind.Custom(2, 3)
)

type deposited struct {
	Amount int
	Note   string
}

// testStore is a store built by a test, closed and ready for the commands.
type testStore struct {
	dir    string
	events uint64 // how many were appended
	// order, payment and shipment are a causal chain: the order caused
	// the payment and the shipment (one correlation group).
	order, payment, shipment batpak.Receipt
}

// storeOpts makes small segments, so a few hundred events fill several.
func storeOpts() []eventstore.Option {
	return []eventstore.Option{
		eventstore.WithSegmentMaxBytes(4096),
		eventstore.WithPreallocation(false),
		eventstore.WithSyncMode(eventstore.SyncNone),
	}
}

// newTestStore appends n deposits spread over five accounts, then the
// order → payment, shipment chain, and closes the store.
func newTestStore(t *testing.T, n int) *testStore {
	t.Helper()
	ts := &testStore{dir: filepath.Join(t.TempDir(), "store")}
	s, err := eventstore.Open(ts.dir, storeOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	appendDeposits(t, s, 0, n)
	ts.order, ts.payment, ts.shipment = appendOrder(t, s)
	ts.events = s.LastSequence()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return ts
}

func appendDeposits(t *testing.T, s *eventstore.Store, from, n int) {
	t.Helper()
	ctx := context.Background()
	for i := from; i < from+n; i++ {
		acct := batpak.Coordinate{Entity: fmt.Sprintf("account:%d", i%5), Scope: "bank"}
		ev := batpak.Event{Kind: kindDeposited, Payload: deposited{Amount: i, Note: strings.Repeat("x", 40)}}
		if i%7 == 0 {
			ev.Metadata = map[string]string{"by": "test"}
		}
		if _, err := s.Append(ctx, acct, []batpak.Event{ev}); err != nil {
			t.Fatal(err)
		}
	}
}

func appendOrder(t *testing.T, s *eventstore.Store) (order, payment, shipment batpak.Receipt) {
	t.Helper()
	ctx := context.Background()
	// The order and the payment are named in the store's catalog, the
	// shipment is not.
	names := map[kind.Kind]string{kindOrdered: "shop.Ordered", kindPaid: "shop.Paid"}
	one := func(entity string, k kind.Kind, payload any, opts ...batpak.AppendOption) batpak.Receipt {
		rs, err := s.Append(ctx, batpak.Coordinate{Entity: entity, Scope: "shop"}, []batpak.Event{{Kind: k, Type: names[k], Payload: payload}}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return rs[0]
	}
	order = one("order:7", kindOrdered, map[string]any{"items": []string{"tea"}})
	payment = one("payment:7", kindPaid, map[string]any{"amount": 12}, batpak.WithCausation(order.EventID))
	shipment = one("shipment:7", kindShipped, map[string]any{"carrier": "post"}, batpak.WithCausation(order.EventID))
	return order, payment, shipment
}

// segmentFiles returns the store's segment file paths in id order.
func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, de := range des {
		if _, ok := segment.ParseFileName(de.Name()); ok {
			paths = append(paths, filepath.Join(dir, de.Name()))
		}
	}
	return paths
}

// flipByte inverts the byte at off in path.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xFF
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// result is what one in-process run of the command produced.
type result struct {
	stdout, stderr string
	code           int
}

// runCmd runs the batpak command line args in-process, with stdin as its
// standard input (non-interactive unless the test says otherwise).
func runCmd(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return runApp(t, context.Background(), &app{stdin: strings.NewReader(stdin)}, args...)
}

func runApp(t *testing.T, ctx context.Context, a *app, args ...string) result {
	t.Helper()
	var stdout, stderr syncBuffer
	a.stdout, a.stderr = &stdout, &stderr
	if a.stdin == nil {
		a.stdin = strings.NewReader("")
	}
	code := a.run(ctx, args)
	r := result{stdout: stdout.String(), stderr: stderr.String(), code: code}
	t.Logf("batpak %s → exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, r.stdout, r.stderr)
	return r
}

func (r result) wantCode(t *testing.T, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

func wantContains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not contain %q:\n%s", what, sub, s)
		}
	}
}

// shortID is the form causal's text tree prints.
func shortID(id uuid.UUID) string { s := id.String(); return s[len(s)-8:] }

// hangContext ends shortly before the test binary's deadline (go test
// -timeout), or with the test: a guard against hangs, not a performance
// budget, so a loaded machine makes the test slower but never fails it.
func hangContext(t *testing.T) context.Context {
	end := time.Now().Add(time.Hour) // go test -timeout 0
	if d, ok := t.Deadline(); ok {
		end = d.Add(-min(time.Until(d)/10, time.Minute))
	}
	ctx, cancel := context.WithDeadline(t.Context(), end)
	t.Cleanup(cancel)
	return ctx
}
