package bank

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/causal"
	"github.com/batpak-go/batpak/policy"
	"github.com/batpak-go/batpak/projection"
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
	nextID   int
}

// New returns a bank over store, judging commands against pol and
// snapshotting accounts every 50 events.
func New(store Store, reg *batpak.Registry, pol Policy, snapshots aggregate.SnapshotStore, now func() time.Time) (*Bank, error) {
	repo, err := aggregate.NewGatedRepository(store, reg, Scope, Gates(), aggregate.WithSnapshots(snapshots, 50))
	if err != nil {
		return nil, err
	}
	return &Bank{store: store, accounts: repo, policy: pol, now: now}, nil
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
func (b *Bank) Transfer(ctx context.Context, from, to string, amount int64) (*Transfer, error) {
	b.nextID++
	t := &Transfer{ID: fmt.Sprintf("t-%d", b.nextID)}
	sent, err := b.Do(ctx, from, SendTransfer{TransferID: t.ID, To: to, Amount: amount, Day: b.today()})
	if err != nil {
		return nil, err
	}
	t.SentID = sent.Receipts[0]
	cause := aggregate.CausedBy(t.SentID.EventID)
	_, err = b.Do(ctx, to, ReceiveTransfer{TransferID: t.ID, From: from, Amount: amount}, cause)
	if err == nil {
		return t, nil
	}
	if errors.Is(err, policy.ErrDenied) || errors.Is(err, ErrAccountClosed) || errors.Is(err, ErrNotOpen) {
		t.Returned = err.Error()
		_, rerr := b.Do(ctx, from, ReturnTransfer{TransferID: t.ID, Amount: amount, Reason: t.Returned}, cause)
		return t, rerr
	}
	return nil, err
}

// Correct applies an administrative balance correction that skips the
// gates. The reason and the actor are stored with the event.
func (b *Bank) Correct(ctx context.Context, id string, amount int64, note, reason, actor string) (*aggregate.Result[Account], error) {
	return b.accounts.Bypass(ctx, Entity(id), Correct{Amount: amount, Note: note}, reason, actor)
}
