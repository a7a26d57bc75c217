package projection_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/projection"
)

var (
	kindAdded   = kind.Custom(2, 1)
	kindRemoved = kind.Custom(2, 2)
)

type Added struct{ N int }

func openStore(t testing.TB, opts ...eventstore.Option) *eventstore.Store {
	t.Helper()
	s, err := eventstore.Open(t.TempDir(), append([]eventstore.Option{eventstore.WithSyncMode(eventstore.SyncNone)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

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

func appendN(t testing.TB, s *eventstore.Store, entity string, k kind.Kind, n int) {
	t.Helper()
	for i := range n {
		if _, err := s.Append(context.Background(), batpak.Coordinate{Entity: entity, Scope: "test"},
			[]batpak.Event{{Kind: k, Payload: Added{N: i}}}); err != nil {
			t.Fatal(err)
		}
	}
}

// counter counts what it applies and remembers the sequences.
type counter struct {
	name   string
	region batpak.Region
	mu     sync.Mutex
	seqs   []uint64
	failAt uint64
}

func (c *counter) Name() string          { return c.name }
func (c *counter) Region() batpak.Region { return c.region }
func (c *counter) Apply(_ context.Context, rec batpak.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rec.Sequence == c.failAt {
		return errors.New("boom")
	}
	c.seqs = append(c.seqs, rec.Sequence)
	return nil
}
func (c *counter) Reset(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seqs = nil
	return nil
}
func (c *counter) applied() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]uint64(nil), c.seqs...)
}

func dense(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCatchUpResumesWithoutReapplying(t *testing.T) {
	s := openStore(t, eventstore.WithSegmentMaxBytes(4096)) // several segments
	appendN(t, s, "a", kindAdded, 100)
	cps := projection.NewMemoryCheckpoints()
	c := &counter{name: "c"}
	r := projection.NewRunner(s, cps)
	next, err := r.CatchUp(context.Background(), c)
	if err != nil || next != 101 {
		t.Fatalf("CatchUp = %d, %v", next, err)
	}
	appendN(t, s, "a", kindAdded, 20)
	if _, err := r.CatchUp(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if got := c.applied(); !equal(got, dense(1, 120)) {
		t.Fatalf("applied %v", got)
	}
	if cp, _ := cps.Load(context.Background(), "c"); cp != 121 {
		t.Fatalf("checkpoint %d", cp)
	}
}

func TestRegionFilter(t *testing.T) {
	s := openStore(t)
	appendN(t, s, "a", kindAdded, 3)
	appendN(t, s, "b", kindRemoved, 3)
	appendN(t, s, "a", kindRemoved, 2)
	tests := []struct {
		name   string
		region batpak.Region
		want   []uint64
	}{
		{"all", batpak.Region{}, dense(1, 8)},
		{"entity", batpak.Region{Entity: "a"}, []uint64{1, 2, 3, 7, 8}},
		{"kind", batpak.Region{Kinds: []kind.Kind{kindRemoved}}, dense(4, 8)},
		{"both", batpak.Region{Entity: "a", Kinds: []kind.Kind{kindRemoved}}, []uint64{7, 8}},
		{"range", batpak.Region{FromSequence: 3, ToSequence: 5}, []uint64{3, 4, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &counter{name: tt.name, region: tt.region}
			cps := projection.NewMemoryCheckpoints()
			if _, err := projection.NewRunner(s, cps).CatchUp(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			if got := c.applied(); !equal(got, tt.want) {
				t.Fatalf("applied %v, want %v", got, tt.want)
			}
			// The checkpoint covers the events outside the region too.
			if cp, _ := cps.Load(context.Background(), tt.name); cp != 9 {
				t.Fatalf("checkpoint %d, want 9", cp)
			}
		})
	}
}

func TestRunFollowsLiveAndAwait(t *testing.T) {
	s := openStore(t)
	appendN(t, s, "a", kindAdded, 10)
	cps := projection.NewMemoryCheckpoints()
	r := projection.NewRunner(s, cps, projection.WithCheckpointEvery(1000, time.Hour))
	evens := &counter{name: "b-only", region: batpak.Region{Entity: "b"}}
	all := &counter{name: "all"}
	ctx, cancel := context.WithCancel(context.Background())
	wait := r.Start(ctx, all, evens)
	appendN(t, s, "a", kindAdded, 15)
	appendN(t, s, "b", kindAdded, 5)
	appendN(t, s, "a", kindAdded, 5) // the last events match only "all"
	if err := r.Await(hangContext(t), s.LastSequence()); err != nil {
		t.Fatal(err)
	}
	if got := all.applied(); !equal(got, dense(1, 35)) {
		t.Fatalf("all applied %v", got)
	}
	if got := evens.applied(); !equal(got, dense(26, 30)) {
		t.Fatalf("b-only applied %v", got)
	}
	cancel()
	if err := wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("RunAll = %v", err)
	}
	// Stopping saved the checkpoints even though the interval never came.
	if cp, _ := cps.Load(context.Background(), "all"); cp != 36 {
		t.Fatalf("checkpoint of all = %d", cp)
	}
}

func TestApplyErrorStopsAndRetries(t *testing.T) {
	s := openStore(t)
	appendN(t, s, "a", kindAdded, 10)
	cps := projection.NewMemoryCheckpoints()
	c := &counter{name: "c", failAt: 6}
	r := projection.NewRunner(s, cps, projection.WithCheckpointEvery(1, time.Hour), projection.WithPolicy(fast(projection.Stop)))
	var ae *projection.ApplyError
	if _, err := r.CatchUp(context.Background(), c); !errors.As(err, &ae) || ae.Sequence != 6 {
		t.Fatalf("CatchUp through a failing Apply = %v", err)
	}
	if cp, _ := cps.Load(context.Background(), "c"); cp != 6 {
		t.Fatalf("checkpoint after failure = %d, want 6 (the failed event is offered again)", cp)
	}
	c.failAt = 0
	if _, err := r.CatchUp(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if got := c.applied(); !equal(got, dense(1, 10)) {
		t.Fatalf("applied %v", got)
	}
}

func TestRebuild(t *testing.T) {
	s := openStore(t)
	appendN(t, s, "a", kindAdded, 7)
	cps := projection.NewMemoryCheckpoints()
	c := &counter{name: "c"}
	r := projection.NewRunner(s, cps)
	if _, err := r.CatchUp(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Rebuild(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if got := c.applied(); !equal(got, dense(1, 7)) {
		t.Fatalf("after rebuild applied %v", got)
	}
	type plain struct{ projection.Projection }
	if _, err := r.Rebuild(context.Background(), plain{c}); !errors.Is(err, projection.ErrNotResettable) {
		t.Fatalf("Rebuild of a non-resettable projection = %v", err)
	}
}

func TestProgress(t *testing.T) {
	s := openStore(t)
	appendN(t, s, "a", kindAdded, 250)
	var reports []projection.Progress
	r := projection.NewRunner(s, projection.NewMemoryCheckpoints(), projection.WithProgress(func(p projection.Progress) {
		reports = append(reports, p)
	}))
	if _, err := r.CatchUp(context.Background(), &counter{name: "c"}); err != nil {
		t.Fatal(err)
	}
	if len(reports) < 10 {
		t.Fatalf("%d progress reports", len(reports))
	}
	last := reports[len(reports)-1]
	if !last.CaughtUp || last.Done != 250 || last.Total != 250 {
		t.Fatalf("last report %+v", last)
	}
	for i := 1; i < len(reports); i++ {
		if reports[i].Done < reports[i-1].Done {
			t.Fatalf("progress went backwards: %+v then %+v", reports[i-1], reports[i])
		}
	}
}

func TestFileCheckpoints(t *testing.T) {
	dir := t.TempDir()
	cps, err := projection.NewFileCheckpoints(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if v, err := cps.Load(ctx, "p"); err != nil || v != 0 {
		t.Fatalf("Load of a missing checkpoint = %d, %v", v, err)
	}
	if err := cps.Save(ctx, "p", 42); err != nil {
		t.Fatal(err)
	}
	if v, err := cps.Load(ctx, "p"); err != nil || v != 42 {
		t.Fatalf("Load = %d, %v", v, err)
	}
	for _, bad := range []string{"", "../x", "a/b", ".hidden", string(make([]byte, 200))} {
		if err := cps.Save(ctx, bad, 1); !errors.Is(err, projection.ErrBadName) {
			t.Errorf("Save(%q) = %v", bad, err)
		}
	}
	path := filepath.Join(dir, "p.checkpoint")
	b, _ := os.ReadFile(path)
	b[3] ^= 1
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := cps.Load(ctx, "p"); !errors.Is(err, projection.ErrBadCheckpoint) {
		t.Fatalf("Load of a damaged checkpoint = %v", err)
	}
}

// total is a per-entity view for Project and Cache.
type total struct{ Sum, Events int }

func (t *total) Apply(ev any) {
	if a, ok := ev.(Added); ok {
		t.Sum += a.N
		t.Events++
	}
}

func registry() *batpak.Registry {
	r := batpak.NewRegistry()
	batpak.MustRegister[Added](r, kindAdded, "counter.Added")
	return r
}

// countingSource counts the events each ReadStream yields.
type countingSource struct {
	*eventstore.Store
	read int
}

func (c *countingSource) ReadStream(ctx context.Context, coord batpak.Coordinate, from uint64, opts ...batpak.ReadOption) iter.Seq2[batpak.Record, error] {
	return func(yield func(batpak.Record, error) bool) {
		for rec, err := range c.Store.ReadStream(ctx, coord, from, opts...) {
			c.read++
			if !yield(rec, err) {
				return
			}
		}
	}
}

func TestProjectAndCache(t *testing.T) {
	s := openStore(t)
	appendN(t, s, "a", kindAdded, 10) // 0+1+…+9 = 45
	reg := registry()
	v, ver, err := projection.Project[total](context.Background(), s, reg, batpak.Coordinate{Entity: "a", Scope: "test"})
	if err != nil || v.Sum != 45 || v.Events != 10 || ver != 10 {
		t.Fatalf("Project = %+v v%d, %v", v, ver, err)
	}
	src := &countingSource{Store: s}
	cache := projection.NewCache[total](src, reg)
	first, _, err := cache.Get(context.Background(), batpak.Coordinate{Entity: "a", Scope: "test"})
	if err != nil || first.Sum != 45 || src.read != 10 {
		t.Fatalf("first Get = %+v after reading %d, %v", first, src.read, err)
	}
	again, _, _ := cache.Get(context.Background(), batpak.Coordinate{Entity: "a", Scope: "test"})
	if again != first || src.read != 10 {
		t.Fatalf("unchanged stream was read again (%d events)", src.read)
	}
	appendN(t, s, "a", kindAdded, 2) // +0 +1
	updated, ver, err := cache.Get(context.Background(), batpak.Coordinate{Entity: "a", Scope: "test"})
	if err != nil || updated.Sum != 46 || updated.Events != 12 || ver != 12 {
		t.Fatalf("updated Get = %+v v%d, %v", updated, ver, err)
	}
	if src.read != 12 {
		t.Fatalf("update read %d events in all, want only the 2 new ones", src.read)
	}
	if first.Sum != 45 || first.Events != 10 {
		t.Fatalf("an earlier view was modified: %+v", first)
	}
}

func ExampleRunner() {
	dir, _ := os.MkdirTemp("", "batpak-projection-")
	defer os.RemoveAll(dir)
	store, _ := eventstore.Open(dir)
	defer store.Close()
	for i := 1; i <= 3; i++ {
		_, _ = store.Append(context.Background(), batpak.Coordinate{Entity: "counter:1", Scope: "demo"},
			[]batpak.Event{{Kind: kindAdded, Payload: Added{N: i}}})
	}
	sum := &summer{}
	runner := projection.NewRunner(store, projection.NewMemoryCheckpoints())
	next, _ := runner.CatchUp(context.Background(), sum)
	fmt.Println("sum:", sum.total, "next sequence:", next)
	// Output: sum: 6 next sequence: 4
}

type summer struct{ total int }

func (s *summer) Name() string          { return "sum" }
func (s *summer) Region() batpak.Region { return batpak.Region{Kinds: []kind.Kind{kindAdded}} }
func (s *summer) Apply(_ context.Context, rec batpak.Record) error {
	a, err := batpak.DecodeAs[Added](&rec)
	s.total += a.N
	return err
}
