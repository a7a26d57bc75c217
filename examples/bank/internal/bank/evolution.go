package bank

import (
	"context"
	"fmt"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

// How the bank's events outlive its code.
//
// Schema evolution: release 1 of the bank wrote withdrawals without the
// channel they came through (WithdrawnV1). Release 2 added it; its
// registry reads release 1's events through an upcaster, which says they
// came through a branch (there was no app then), so the aggregate, the
// projections and the report only ever see Withdrawn.
//
// Erasure: an owner's name is personal data. It travels in its own
// event, CustomerRegistered, whose payload the store seals with the
// customer's key (it is batpak.Personal); amounts and dates, which the
// bank must keep, are in events without personal data. Forgetting a
// customer destroys the key: the name reads as erased everywhere, the
// balance history stays whole, and the hash chains still verify.

// WithdrawnV1 is a withdrawal as release 1 wrote it.
type WithdrawnV1 struct {
	Amount int64
	Day    string
}

// withdrawnV1toV2 reads release 1's withdrawals.
var withdrawnV1toV2 = batpak.Upcast(func(v WithdrawnV1) (Withdrawn, error) {
	return Withdrawn{Amount: v.Amount, Day: v.Day, Channel: "branch"}, nil
})

// CustomerRegistered records the owner of an account: personal data,
// sealed with the key of the customer's data subject.
type CustomerRegistered struct {
	Customer string // "customer:<id>", the data subject
	Name     string
}

// DataSubject makes the store seal the event with the customer's key.
func (e CustomerRegistered) DataSubject() string { return e.Customer }

// Release1Registry is the registry of release 1: withdrawals without a
// channel. The scenario writes the bank's first withdrawal with it, as
// history that release 1 left in the store.
func Release1Registry() *batpak.Registry {
	r := batpak.NewRegistry()
	batpak.MustRegister[WithdrawnV1](r, kind.Custom(0x1, 0x003), "bank.Withdrawn")
	return r
}

// Customer is the data subject of account id's owner.
func Customer(id string) string { return "customer:" + id }

// release1Withdraw appends a withdrawal from account id as release 1 did,
// without gates: the scenario's stand-in for history written before the
// upgrade.
func (b *Bank) release1Withdraw(ctx context.Context, id string, amount int64) error {
	ev, err := Release1Registry().Event(WithdrawnV1{Amount: amount, Day: b.today()})
	if err != nil {
		return err
	}
	coord := Stream(id)
	_, err = b.store.Append(ctx, coord, []batpak.Event{ev}, batpak.ExpectVersion(batpak.Exactly(b.store.StreamVersion(coord))))
	return err
}

// Forget erases the owner of account id: the customer's key is destroyed,
// so the name reads as "(forgotten)" from now on; the account's balance
// history is untouched.
func (b *Bank) Forget(ctx context.Context, id string) error {
	if err := b.store.Forget(ctx, batpak.Subject{Scope: Scope, ID: Customer(id)}); err != nil {
		return fmt.Errorf("forget the owner of %s: %w", id, err)
	}
	return nil
}
