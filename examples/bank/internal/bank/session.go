package bank

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/projection"
)

// Run is what the example commands do on their store: it starts the read
// models, plays the scenario (steps, if not io.Discard, gets a line per
// step), reports what happened and what the read models show, and stops
// them. It is [Start], [Session.Play] and [Session.Stop].
//
// A store that already holds the bank's accounts, as a second run on the
// same directory or stream finds it, is not played on again: Run appends
// nothing and reports what the store holds ([Report.Ran] is false), so a
// re-run changes no balance and no event count.
func Run(ctx context.Context, store Store, snapshots aggregate.SnapshotStore, now func() time.Time, steps io.Writer, opts ...RunOption) (*Report, error) {
	s, err := Start(ctx, store, snapshots, now, opts...)
	if err != nil {
		return nil, err
	}
	r, err := s.Play(ctx, steps)
	if err = errors.Join(err, s.Stop()); err != nil {
		return nil, err
	}
	return r, nil
}

// Session is the bank on a store with its read models running, from
// [Start] to [Session.Stop].
type Session struct {
	Bank  *Bank
	store Store
	views *liveReadModels
}

// Start makes the bank on store and starts its read models, which catch
// up on what the store holds and then follow it.
func Start(ctx context.Context, store Store, snapshots aggregate.SnapshotStore, now func() time.Time, opts ...RunOption) (*Session, error) {
	var o runOptions
	for _, opt := range opts {
		opt(&o)
	}
	reg := Registry()
	b, err := newBank(store, reg, Policy{DailyLimit: 1000}, snapshots, now, o.tracerProvider())
	if err != nil {
		return nil, err
	}
	if b.nextID, err = lastTransferNumber(ctx, store, reg); err != nil {
		return nil, err
	}
	views, err := startReadModels(ctx, store, reg, o)
	if err != nil {
		return nil, err
	}
	return &Session{Bank: b, store: store, views: views}, nil
}

// Play plays the scenario on a store without the bank's accounts, or
// describes what a store that holds them holds ([Report.Ran] says which),
// and adds what the read models show once they have caught up.
func (s *Session) Play(ctx context.Context, steps io.Writer) (*Report, error) {
	var r *Report
	var err error
	if s.Bank.Opened() {
		r, err = Describe(ctx, s.Bank)
	} else {
		r, err = RunScenario(ctx, s.Bank, steps)
	}
	if err != nil {
		return nil, err
	}
	if r.ReadModels, err = s.ReadModels(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// ReadModels waits for the read models to apply every event the store
// holds and returns what they show.
func (s *Session) ReadModels(ctx context.Context) (*ReadModels, error) {
	// A guard against a hang, not a budget: the read models follow the
	// store in this process and catch up within milliseconds.
	wait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return s.views.read(wait, s.store.LastSequence())
}

// Stop stops the read models.
func (s *Session) Stop() error { return s.views.stop() }

// lastTransferNumber returns the highest transfer number in store, so that
// the transfers of this run are numbered after it (a denied transfer
// takes a number and leaves no event, so counting would reuse numbers).
func lastTransferNumber(ctx context.Context, store Store, reg *batpak.Registry) (int, error) {
	sent, _ := reg.KindOf(TransferSent{})
	n := 0
	for rec, err := range store.Query(ctx, batpak.Region{Scope: Scope, EntityPrefix: "account:", Kinds: []kind.Kind{sent}}) {
		if err != nil {
			return 0, err
		}
		t, err := batpak.DecodeAs[TransferSent](&rec)
		if err != nil {
			return 0, err
		}
		if k, err := strconv.Atoi(strings.TrimPrefix(t.TransferID, "t-")); err == nil {
			n = max(n, k)
		}
	}
	return n, nil
}

// RunOption configures [Run] and [Start].
type RunOption func(*runOptions)

type runOptions struct {
	runner func(*projection.Runner)
	db     *sql.DB
	tp     trace.TracerProvider
}

func (o runOptions) tracerProvider() trace.TracerProvider {
	if o.tp == nil {
		return otel.GetTracerProvider()
	}
	return o.tp
}

// WithRunner hands fn the runner of the read models as they start, say to
// export their status as metrics. Its Status stays readable after they
// have stopped, while the store is open.
func WithRunner(fn func(*projection.Runner)) RunOption {
	return func(o *runOptions) { o.runner = fn }
}

// WithSQL keeps the balances read model in db as well, in table balances
// (account, balance, events), exactly once (package sqlproj): a run goes
// on from the position the last one stored there. The tables are created
// if they are missing.
func WithSQL(db *sql.DB) RunOption {
	return func(o *runOptions) { o.db = db }
}

// WithTracerProvider sends the spans of the bank's transfers, commands,
// gates and read models to tp (default: the global provider, a no-op
// until the program installs one).
func WithTracerProvider(tp trace.TracerProvider) RunOption {
	return func(o *runOptions) { o.tp = tp }
}
