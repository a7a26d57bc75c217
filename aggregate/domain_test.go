package aggregate_test

// A small account domain for the tests: events, a root, commands, gates
// like the bank example's, and store wrappers that count, inject and fail.

import (
	"context"
	"errors"
	"iter"
	"sync"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/memstore"
	"github.com/batpak-go/batpak/policy"
)

type (
	Opened    struct{ Limit int64 }
	Deposited struct{ Amount int64 }
	Withdrawn struct{ Amount int64 }
	Debited   struct {
		Amount int64
		To     string
	}
	Credited struct {
		Amount int64
		From   string
	}
)

func registry() *batpak.Registry {
	r := batpak.NewRegistry()
	batpak.MustRegister[Opened](r, kind.Custom(0x2, 0x001), "tally.Opened")
	batpak.MustRegister[Deposited](r, kind.Custom(0x2, 0x002), "tally.Deposited")
	batpak.MustRegister[Withdrawn](r, kind.Custom(0x2, 0x003), "tally.Withdrawn")
	batpak.MustRegister[Debited](r, kind.Custom(0x2, 0x004), "tally.Debited")
	batpak.MustRegister[Credited](r, kind.Custom(0x2, 0x005), "tally.Credited")
	return r
}

// Account is the root. Its running totals make the invariant checkable:
// Balance == Deposits - Withdrawals - Out + In.
type Account struct {
	Open        bool
	Limit       int64
	Balance     int64
	Deposits    int64
	Withdrawals int64
	Out         int64
	In          int64
	Events      int
}

func (a *Account) Apply(event any) {
	a.Events++
	switch e := event.(type) {
	case Opened:
		a.Open, a.Limit = true, e.Limit
	case Deposited:
		a.Balance += e.Amount
		a.Deposits += e.Amount
	case Withdrawn:
		a.Balance -= e.Amount
		a.Withdrawals += e.Amount
	case Debited:
		a.Balance -= e.Amount
		a.Out += e.Amount
	case Credited:
		a.Balance += e.Amount
		a.In += e.Amount
	}
}

var (
	errNotOpen     = errors.New("account is not open")
	errAlreadyOpen = errors.New("account is already open")
)

type (
	Open     struct{ Limit int64 }
	Deposit  struct{ Amount int64 }
	Withdraw struct{ Amount int64 }
	Debit    struct {
		Amount int64
		To     string
	}
	Credit struct {
		Amount int64
		From   string
	}
	// DepositMany emits one Deposited per amount.
	DepositMany struct{ Amounts []int64 }
	// Emit emits the given events.
	Emit struct{ Events []any }
	// Nothing emits no events.
	Nothing struct{}
	// Refuse fails with Err.
	Refuse struct{ Err error }
)

func (c Open) Handle(a *Account) ([]any, error) {
	if a.Open {
		return nil, errAlreadyOpen
	}
	return []any{Opened(c)}, nil
}

func (c Deposit) Handle(a *Account) ([]any, error)  { return one(a, Deposited(c)) }
func (c Withdraw) Handle(a *Account) ([]any, error) { return one(a, Withdrawn(c)) }
func (c Debit) Handle(a *Account) ([]any, error)    { return one(a, Debited(c)) }
func (c Credit) Handle(a *Account) ([]any, error)   { return one(a, Credited(c)) }
func (c Emit) Handle(a *Account) ([]any, error) {
	if !a.Open {
		return nil, errNotOpen
	}
	return c.Events, nil
}

func (Nothing) Handle(*Account) ([]any, error)  { return nil, nil }
func (c Refuse) Handle(*Account) ([]any, error) { return nil, c.Err }

func (c DepositMany) Handle(a *Account) ([]any, error) {
	if !a.Open {
		return nil, errNotOpen
	}
	out := make([]any, len(c.Amounts))
	for i, amt := range c.Amounts {
		out[i] = Deposited{Amount: amt}
	}
	return out, nil
}

func one(a *Account, ev any) ([]any, error) {
	if !a.Open {
		return nil, errNotOpen
	}
	return []any{ev}, nil
}

// Policy is the gates' context.
type Policy struct{}

type proposal = aggregate.Proposal[Account]

func movement(p proposal) (debits, credits int64, amounts []int64) {
	for _, ev := range p.Events {
		switch e := ev.(type) {
		case Deposited:
			credits, amounts = credits+e.Amount, append(amounts, e.Amount)
		case Credited:
			credits, amounts = credits+e.Amount, append(amounts, e.Amount)
		case Withdrawn:
			debits, amounts = debits+e.Amount, append(amounts, e.Amount)
		case Debited:
			debits, amounts = debits+e.Amount, append(amounts, e.Amount)
		}
	}
	return debits, credits, amounts
}

func positiveGate() policy.Gate[Policy, proposal] {
	return policy.GateFunc("positive", func(_ Policy, p proposal) *policy.Denial {
		_, _, amounts := movement(p)
		for _, a := range amounts {
			if a <= 0 {
				return policy.Deny("NOT_POSITIVE", "amounts must be positive", "amount", a)
			}
		}
		return nil
	})
}

func overdraftGate() policy.Gate[Policy, proposal] {
	return policy.GateFunc("overdraft", func(_ Policy, p proposal) *policy.Denial {
		debits, credits, _ := movement(p)
		if after := p.State.Balance - debits + credits; debits > 0 && after < -p.State.Limit {
			return policy.Deny("OVERDRAFT", "below the limit", "balance", p.State.Balance, "limit", p.State.Limit)
		}
		return nil
	})
}

func gates() *policy.GateSet[Policy, proposal] {
	return policy.NewGateSet(policy.EvaluateAll, positiveGate(), overdraftGate())
}

// The tests' repositories: gated ones in scope "bank" unless they say
// otherwise, and plain ones without gates.
type (
	gated = aggregate.GatedRepository[Account, *Account, Policy]
	plain = aggregate.Repository[Account, *Account]
)

// loader is what both repositories offer to read.
type loader interface {
	Load(ctx context.Context, entity string) (*Account, uint64, error)
}

const scope = "bank"

// co is entity's stream in the tests' scope.
func co(entity string) batpak.Coordinate { return batpak.Coordinate{Entity: entity, Scope: scope} }

func newGated(t tb, s aggregate.Store, opts ...aggregate.Option) *gated {
	t.Helper()
	r, err := aggregate.NewGatedRepository(s, registry(), scope, gates(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newPlain(t tb, s aggregate.Store, opts ...aggregate.Option) *plain {
	t.Helper()
	r, err := aggregate.NewRepository[Account](s, registry(), scope, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// openStore returns a new in-memory store, closed when the test ends.
func openStore(t testing.TB) *memstore.Store {
	t.Helper()
	s := memstore.New()
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// tb is what the helpers need of a *testing.T or a *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// records reads entity's whole stream in the tests' scope.
func records(t tb, s aggregate.Store, entity string) []batpak.Record {
	t.Helper()
	var out []batpak.Record
	for rec, err := range s.ReadStream(context.Background(), co(entity), 0) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}

// fold replays entity from the store without snapshots.
func fold(t tb, s aggregate.Store, entity string) Account {
	t.Helper()
	reg := registry()
	var a Account
	for _, rec := range records(t, s, entity) {
		ev, err := reg.Decode(&rec)
		if err != nil {
			t.Fatal(err)
		}
		a.Apply(ev)
	}
	return a
}

// execute runs cmd through either repository; a gated one judges it
// against Policy{}.
func execute(r loader, entity string, cmd aggregate.Command[Account], opts ...aggregate.ExecOption) (*aggregate.Result[Account], error) {
	ctx := context.Background()
	switch r := r.(type) {
	case *gated:
		return r.Execute(ctx, entity, Policy{}, cmd, opts...)
	case *plain:
		return r.Execute(ctx, entity, cmd, opts...)
	}
	panic("not a repository")
}

func mustExec(t testing.TB, r loader, entity string, cmd aggregate.Command[Account], opts ...aggregate.ExecOption) *aggregate.Result[Account] {
	t.Helper()
	res, err := execute(r, entity, cmd, opts...)
	if err != nil {
		t.Fatalf("Execute(%s, %T %+v): %v", entity, cmd, cmd, err)
	}
	return res
}

// countingStore records the from-version of every ReadStream call.
type countingStore struct {
	aggregate.Store
	mu    sync.Mutex
	reads []uint64
}

func (c *countingStore) ReadStream(ctx context.Context, coord batpak.Coordinate, from uint64, opts ...batpak.ReadOption) iter.Seq2[batpak.Record, error] {
	c.mu.Lock()
	c.reads = append(c.reads, from)
	c.mu.Unlock()
	return c.Store.ReadStream(ctx, coord, from, opts...)
}

func (c *countingStore) take() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.reads
	c.reads = nil
	return r
}

// racingStore appends a competing event (Deposited{Amount: 1000} unless
// event is set) to the same stream just before each of the first inject
// appends it forwards, as a concurrent writer would between the
// repository's load and its save.
type racingStore struct {
	aggregate.Store
	event   any
	inject  int
	mu      sync.Mutex
	appends int
}

func (r *racingStore) arm(inject int, event any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inject, r.appends, r.event = inject, 0, event
}

func (r *racingStore) saves() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.appends
}

func (r *racingStore) Append(ctx context.Context, coord batpak.Coordinate, events []batpak.Event, opts ...batpak.AppendOption) ([]batpak.Receipt, error) {
	r.mu.Lock()
	r.appends++
	inject, event := r.appends <= r.inject, r.event
	r.mu.Unlock()
	if event == nil {
		event = Deposited{Amount: 1000}
	}
	if inject {
		ev, err := registry().Event(event)
		if err != nil {
			return nil, err
		}
		if _, err := r.Store.Append(ctx, coord, []batpak.Event{ev}); err != nil {
			return nil, err
		}
	}
	return r.Store.Append(ctx, coord, events, opts...)
}

// snapshotLog is a SnapshotStore that remembers what was saved.
type snapshotLog struct {
	aggregate.SnapshotStore
	mu    sync.Mutex
	saved []uint64
}

func (s *snapshotLog) Save(ctx context.Context, snap aggregate.Snapshot) error {
	s.mu.Lock()
	s.saved = append(s.saved, snap.Version)
	s.mu.Unlock()
	return s.SnapshotStore.Save(ctx, snap)
}

// fixedSnapshots always loads the same snapshot, or fails.
type fixedSnapshots struct {
	snap aggregate.Snapshot
	ok   bool
	err  error
}

func (f fixedSnapshots) Load(context.Context, batpak.Coordinate) (aggregate.Snapshot, bool, error) {
	return f.snap, f.ok, f.err
}

func (fixedSnapshots) Save(context.Context, aggregate.Snapshot) error { return nil }
