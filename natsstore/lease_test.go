package natsstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/natsstore"
	"github.com/batpak-go/batpak/projection"
)

// leaseTTL is the lease TTL of the tests: long enough that a loaded
// machine does not starve a holder's renewals for a third of it.
const leaseTTL = 2 * time.Second

func newKVLeases(t *testing.T, s *natsstore.Store) *natsstore.KVLeases {
	t.Helper()
	ls, err := natsstore.NewKVLeases(hangContext(t), s, leaseTTL)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func TestKVLeasesOneHolderAtATime(t *testing.T) {
	ctx := hangContext(t)
	ns := startServer(t)
	stream := uniqueStream("LEASE")
	la := newKVLeases(t, openStore(t, ns, natsstore.WithStream(stream)))
	lb := newKVLeases(t, openStore(t, ns, natsstore.WithStream(stream)))
	a, err := la.Acquire(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	// Held and renewed: another client does not get it within twice the
	// TTL; another name is free.
	short, cancel := context.WithTimeout(ctx, 2*leaseTTL)
	defer cancel()
	if _, err := lb.Acquire(short, "p"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire of a held lease = %v, want the context's deadline", err)
	}
	q, err := lb.Acquire(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Release(ctx)
	select {
	case <-a.Lost():
		t.Fatal("a renewed lease was lost")
	default:
	}
	// Released: the other takes it at once (within a poll, far less than
	// the TTL it would wait for a holder that died).
	released := time.Now()
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := lb.Acquire(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("taken %v after the release", time.Since(released))
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatalf("second Release: %v", err)
	}
}

// TestKVLeaseHolderCutOff closes the holder's connection: the holder
// reports the lease lost, and only then another client takes it. How soon
// (within the TTL and a poll on an idle machine) is logged, not checked:
// on a loaded one it is later, and a takeover that never comes fails at
// the test's hang guard.
func TestKVLeaseHolderCutOff(t *testing.T) {
	ctx := hangContext(t)
	ns := startServer(t)
	stream := uniqueStream("LEASECUT")
	sa := openStore(t, ns, natsstore.WithStream(stream))
	la := newKVLeases(t, sa)
	lb := newKVLeases(t, openStore(t, ns, natsstore.WithStream(stream)))
	a, err := la.Acquire(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	type taken struct {
		at  time.Time
		err error
	}
	got := make(chan taken, 1)
	go func() {
		b, err := lb.Acquire(ctx, "p")
		got <- taken{time.Now(), err}
		if err == nil {
			_ = b.Release(ctx)
		}
	}()
	cut := time.Now()
	sa.Conn().Close()
	<-a.Lost()
	lost := time.Now()
	b := <-got
	if b.err != nil {
		t.Fatal(b.err)
	}
	t.Logf("holder lost the lease %v after the cut, the other took it %v after the cut", lost.Sub(cut), b.at.Sub(cut))
	if !lost.Before(b.at) {
		t.Fatalf("the lease was taken over %v before the holder gave it up", lost.Sub(b.at))
	}
	if err := a.Release(ctx); err == nil {
		t.Fatal("Release over a closed connection reported success")
	}
}

// TestRunnersHandOverOnJetStream runs one projection in three runners on
// three clients of the store, with KV leases and checkpoints: one runs at
// a time; when the first stops the second takes over at once, when the
// second's connection is cut the third takes over after the TTL, and each
// event is applied exactly once.
func TestRunnersHandOverOnJetStream(t *testing.T) {
	ctx := hangContext(t)
	ns := startServer(t)
	stream := uniqueStream("HANDOVER")
	w := openStore(t, ns, natsstore.WithStream(stream))
	appendEvents := func(n int) {
		t.Helper()
		for i := range n {
			if _, err := w.Append(ctx, coord(fmt.Sprint("e", i%3)), one(kNoted, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	m := newSharedModel()
	type client struct {
		s      *natsstore.Store
		cps    *natsstore.KVCheckpoints
		runner *projection.Runner
		stop   context.CancelFunc
		wait   func() error
	}
	start := func(by string) *client {
		c := &client{s: openStore(t, ns, natsstore.WithStream(stream))}
		var err error
		if c.cps, err = natsstore.NewKVCheckpoints(ctx, c.s); err != nil {
			t.Fatal(err)
		}
		c.runner = projection.NewRunner(c.s, c.cps, projection.WithLeases(newKVLeases(t, c.s)), projection.WithCheckpointEvery(1, 0))
		var rctx context.Context
		rctx, c.stop = context.WithCancel(ctx)
		t.Cleanup(c.stop)
		c.wait = c.runner.Start(rctx, m.projection(by))
		return c
	}
	appendEvents(10)
	a := start("A")
	m.waitFor(t, ctx, 10)
	b := start("B")
	appendEvents(10)
	m.waitFor(t, ctx, 20)

	a.stop()
	if err := a.wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("A ended with %v", err)
	}
	appendEvents(10)
	m.waitFor(t, ctx, 30)
	c := start("C")
	// B idles with its checkpoint saved; then its connection is cut.
	if err := b.runner.Await(ctx, 30); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		next, err := b.cps.Load(ctx, "shared")
		if err != nil {
			t.Fatal(err)
		}
		if next == 31 {
			break
		}
		<-tick.C
	}
	cut := time.Now()
	b.s.Conn().Close()
	appendEvents(10)
	m.waitFor(t, ctx, 40)
	t.Logf("C took over %v after B's connection was cut", m.snapshot()[30].at.Sub(cut))
	if err := b.wait(); err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("B, cut off, ended with %v", err)
	}
	c.stop()
	if err := c.wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("C ended with %v", err)
	}
	checkHandover(t, m.snapshot(), 40, "A", "B", "C")
}

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

// projection returns the projection "shared" as runner by applies it.
func (m *sharedModel) projection(by string) projection.Projection {
	return &sharedProjection{m: m, by: by}
}

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
// once and in order, by the runners of order one after the other.
func checkHandover(t *testing.T, got []appliedBy, n uint64, order ...string) {
	t.Helper()
	if uint64(len(got)) != n {
		t.Fatalf("%d applications of %d events: %v", len(got), n, got)
	}
	turn := 0
	for i, a := range got {
		if a.seq != uint64(i)+1 {
			t.Fatalf("application %d is sequence %d (by %s): an event applied twice or skipped: %v", i+1, a.seq, a.by, got)
		}
		for turn < len(order) && a.by != order[turn] {
			turn++
		}
		if turn == len(order) {
			t.Fatalf("sequence %d applied by %s out of turn (order %v): %v", a.seq, a.by, order, got)
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
