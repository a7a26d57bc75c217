package bank

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/causal"
	"github.com/batpak-go/batpak/policy"
	"github.com/batpak-go/batpak/projection"
	"github.com/batpak-go/batpak/tracing"
)

// Store is what the bank uses of an event store: the contract every
// backend implements, the projections' replay and follow, and the causal
// links. The embedded *eventstore.Store, the JetStream *natsstore.Store
// and the in-memory *memstore.Store all provide it.
type Store interface {
	batpak.Store
	projection.Source
	causal.Source
}

// Scope is the bank's scope: its accounts' streams are (Scope, Entity(id)).
const Scope = "bank"

// Bank runs account commands through the aggregate repository and its gates.
type Bank struct {
	store    Store
	accounts *aggregate.GatedRepository[Account, *Account, Policy]
	policy   Policy
	now      func() time.Time
	tracer   trace.Tracer
	nextID   int
}

// ScopeName is the instrumentation scope of the bank's own spans
// (bank.transfer).
const ScopeName = "github.com/batpak-go/batpak/examples/bank"

// New returns a bank over store, judging commands against pol and
// snapshotting accounts every 50 events. Its spans, and its repository's,
// go to the global tracer provider.
func New(store Store, reg *batpak.Registry, pol Policy, snapshots aggregate.SnapshotStore, now func() time.Time) (*Bank, error) {
	return newBank(store, reg, pol, snapshots, now, otel.GetTracerProvider())
}

func newBank(store Store, reg *batpak.Registry, pol Policy, snapshots aggregate.SnapshotStore, now func() time.Time, tp trace.TracerProvider) (*Bank, error) {
	// The repository appends through a traced view of the store, so each
	// save has its batpak.append span.
	traced := tracing.Wrap(store, tracing.WithTracerProvider(tp))
	repo, err := aggregate.NewGatedRepository(traced, reg, Scope, Gates(),
		aggregate.WithSnapshots(snapshots, 50), aggregate.WithTracerProvider(tp))
	if err != nil {
		return nil, err
	}
	return &Bank{store: store, accounts: repo, policy: pol, now: now, tracer: tp.Tracer(ScopeName)}, nil
}

// Entity is the entity of account id.
func Entity(id string) string { return "account:" + id }

// Stream is the stream of account id.
func Stream(id string) batpak.Coordinate { return batpak.Coordinate{Entity: Entity(id), Scope: Scope} }

func (b *Bank) today() string { return b.now().UTC().Format(time.DateOnly) }

// Do runs a command on account id.
func (b *Bank) Do(ctx context.Context, id string, cmd aggregate.Command[Account], opts ...aggregate.ExecOption) (*aggregate.Result[Account], error) {
	return b.accounts.Execute(ctx, Entity(id), b.policy, cmd, opts...)
}

// Account returns the current state of account id.
func (b *Bank) Account(ctx context.Context, id string) (*Account, error) {
	a, _, err := b.accounts.Load(ctx, Entity(id))
	return a, err
}

// Transfer is the outcome of a transfer.
type Transfer struct {
	ID       string
	SentID   batpak.Receipt // the TransferSent event
	Returned string         // why the money came back, if it did
}

// Transfer moves amount from one account to another: a command on the
// source whose event causes the credit on the destination. If the
// destination refuses, a compensating return, caused by the same event,
// puts the money back. All three share the source event's correlation id.
//
// The transfer is one span (bank.transfer), so that its commands, their
// gates and appends, and the projections that apply its events are one
// trace, and every event of it carries that trace in its metadata.
func (b *Bank) Transfer(ctx context.Context, from, to string, amount int64) (*Transfer, error) {
	b.nextID++
	t := &Transfer{ID: fmt.Sprintf("t-%d", b.nextID)}
	ctx, span := b.tracer.Start(ctx, "bank.transfer", trace.WithAttributes(
		attribute.String("bank.transfer.id", t.ID), attribute.String("bank.from", from),
		attribute.String("bank.to", to), attribute.Int64("bank.amount", amount)))
	defer span.End()
	err := b.transfer(ctx, t, from, to, amount)
	switch {
	case errors.Is(err, policy.ErrDenied): // the gates' answer, not a failure
		span.SetAttributes(tracing.Outcome.String("denied"))
		return nil, err
	case err != nil:
		span.SetStatus(codes.Error, err.Error())
		return nil, err
	case t.Returned != "":
		span.SetAttributes(tracing.Outcome.String("returned"))
	default:
		span.SetAttributes(tracing.Outcome.String("received"))
	}
	return t, nil
}

func (b *Bank) transfer(ctx context.Context, t *Transfer, from, to string, amount int64) error {
	sent, err := b.Do(ctx, from, SendTransfer{TransferID: t.ID, To: to, Amount: amount, Day: b.today()})
	if err != nil {
		return err
	}
	t.SentID = sent.Receipts[0]
	// The sent event is the root of the transfer's correlation group.
	trace.SpanFromContext(ctx).SetAttributes(tracing.CorrelationID.String(t.SentID.EventID.String()))
	cause := aggregate.CausedBy(t.SentID.EventID)
	_, err = b.Do(ctx, to, ReceiveTransfer{TransferID: t.ID, From: from, Amount: amount}, cause)
	if err == nil {
		return nil
	}
	if errors.Is(err, policy.ErrDenied) || errors.Is(err, ErrAccountClosed) || errors.Is(err, ErrNotOpen) {
		t.Returned = err.Error()
		_, err = b.Do(ctx, from, ReturnTransfer{TransferID: t.ID, Amount: amount, Reason: t.Returned}, cause)
	}
	return err
}

// Correct applies an administrative balance correction that skips the
// gates. The reason and the actor are stored with the event.
func (b *Bank) Correct(ctx context.Context, id string, amount int64, note, reason, actor string) (*aggregate.Result[Account], error) {
	return b.accounts.Bypass(ctx, Entity(id), Correct{Amount: amount, Note: note}, reason, actor)
}
