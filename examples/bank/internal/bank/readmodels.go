package bank

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/projection"
)

// Read models kept live by the projection runner while the scenario runs.

// balancesView holds every account's balance.
type balancesView struct {
	reg *batpak.Registry
	mu  sync.Mutex
	m   map[string]int64
}

func newBalancesView(reg *batpak.Registry) *balancesView {
	return &balancesView{reg: reg, m: make(map[string]int64)}
}

func (v *balancesView) Name() string { return "bank-balances" }

func (v *balancesView) Region() batpak.Region {
	return batpak.Region{Scope: Scope, EntityPrefix: "account:"}
}

func (v *balancesView) Apply(_ context.Context, rec batpak.Record) error {
	ev, err := v.reg.Decode(&rec)
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	id := strings.TrimPrefix(rec.Coordinate.Entity, "account:")
	v.m[id] += Delta(ev)
	return nil
}

func (v *balancesView) Reset(context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	clear(v.m)
	return nil
}

func (v *balancesView) snapshot() map[string]int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make(map[string]int64, len(v.m))
	for k, b := range v.m {
		out[k] = b
	}
	return out
}

// Delta is what an event does to its account's balance.
func Delta(ev any) int64 {
	switch e := ev.(type) {
	case Deposited:
		return e.Amount
	case Withdrawn:
		return -e.Amount
	case TransferSent:
		return -e.Amount
	case TransferReceived:
		return e.Amount
	case TransferReturned:
		return e.Amount
	case BalanceCorrected:
		return e.Amount
	}
	return 0
}

// statementView is one account's statement.
type statementView struct {
	reg     *batpak.Registry
	account string
	mu      sync.Mutex
	lines   []string
	balance int64
}

func (v *statementView) Name() string { return "bank-statement-" + v.account }

func (v *statementView) Region() batpak.Region {
	return batpak.Region{Scope: Scope, Entity: Entity(v.account)}
}

func (v *statementView) Apply(_ context.Context, rec batpak.Record) error {
	ev, err := v.reg.Decode(&rec)
	if err != nil {
		return err
	}
	d := Delta(ev)
	if d == 0 {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.balance += d
	what := reflect.TypeOf(ev).Name()
	if w, ok := ev.(Withdrawn); ok { // release 1's withdrawals read as from a branch
		what += " (" + w.Channel + ")"
	}
	v.lines = append(v.lines, fmt.Sprintf("#%-3d %-20s %+6d  = %6d", rec.Sequence, what, d, v.balance))
	return nil
}

func (v *statementView) snapshot() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.lines)
}

// largeTransfersView reports transfers at or above a threshold.
type largeTransfersView struct {
	reg       *batpak.Registry
	threshold int64
	mu        sync.Mutex
	lines     []string
}

func (v *largeTransfersView) Name() string { return "bank-large-transfers" }

func (v *largeTransfersView) Region() batpak.Region {
	k, _ := v.reg.KindOf(TransferSent{})
	return batpak.Region{Scope: Scope, EntityPrefix: "account:", Kinds: []kind.Kind{k}}
}

func (v *largeTransfersView) Apply(_ context.Context, rec batpak.Record) error {
	t, err := batpak.DecodeAs[TransferSent](&rec)
	if err != nil {
		return err
	}
	if t.Amount < v.threshold {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lines = append(v.lines, fmt.Sprintf("%s: %d from %s to %s", t.TransferID, t.Amount, strings.TrimPrefix(rec.Coordinate.Entity, "account:"), t.To))
	return nil
}

func (v *largeTransfersView) snapshot() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.lines)
}

// ReadModels is what the projections showed at the end of the scenario.
type ReadModels struct {
	Balances       map[string]int64
	Statement      []string // alice's statement
	LargeTransfers []string
	// SQL is the balances table, when the read models ran with a
	// database ([WithSQL]).
	SQL *SQLReadModel
}

// SQLReadModel is the balances table and what this run did to it.
type SQLReadModel struct {
	SQLTable
	Applied uint64 // events this run applied to it; the others were there
}

// liveReadModels runs the bank's projections side by side, in one runner.
type liveReadModels struct {
	runner    *projection.Runner
	balances  *balancesView
	statement *statementView
	transfers *largeTransfersView
	db        *sql.DB // nil: no SQL read model
	cancel    context.CancelFunc
	wait      func() error // until the projections stop
}

// startReadModels starts the projections; they catch up on the existing
// history with the sequential scanner, then follow new events live. The
// in-memory ones keep their checkpoints in memory and rebuild on every
// start; the SQL one, with o.db, resumes from the position in its database.
func startReadModels(ctx context.Context, store projection.Source, reg *batpak.Registry, o runOptions) (*liveReadModels, error) {
	l := &liveReadModels{
		balances:  newBalancesView(reg),
		statement: &statementView{reg: reg, account: "alice"},
		transfers: &largeTransfersView{reg: reg, threshold: 250},
		db:        o.db,
	}
	cps := checkpoints{mem: projection.NewMemoryCheckpoints()}
	ps := []projection.Projection{l.balances, l.statement, l.transfers}
	if o.db != nil {
		pos, err := openSQL(ctx, o.db)
		if err != nil {
			return nil, err
		}
		cps.sql = pos
		ps = append(ps, pos.Projection(sqlBalances{reg: reg}))
	}
	l.runner = projection.NewRunner(store, cps, projection.WithTracerProvider(o.tracerProvider()))
	if o.runner != nil {
		o.runner(l.runner)
	}
	ctx, l.cancel = context.WithCancel(ctx)
	l.wait = l.runner.Start(ctx, ps...)
	return l, nil
}

// read waits until the projections have seen every event up to seq and
// returns what they show.
func (l *liveReadModels) read(ctx context.Context, seq uint64) (*ReadModels, error) {
	if err := l.runner.Await(ctx, seq); err != nil {
		return nil, err
	}
	rm := &ReadModels{Balances: l.balances.snapshot(), Statement: l.statement.snapshot(), LargeTransfers: l.transfers.snapshot()}
	if l.db == nil {
		return rm, nil
	}
	t, err := ReadSQL(ctx, l.db)
	if err != nil {
		return nil, err
	}
	rm.SQL = &SQLReadModel{SQLTable: *t}
	for _, st := range l.runner.Status(ctx) {
		if st.Projection == SQLBalancesName {
			rm.SQL.Applied = st.Applied
		}
	}
	return rm, nil
}

func (l *liveReadModels) stop() error {
	l.cancel()
	if err := l.wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
