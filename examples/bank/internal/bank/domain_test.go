package bank

import (
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate/aggregatetest"
	"github.com/batpak-go/batpak/policy"
)

// TestCommands checks the account's business rules: given its history,
// when a command, then its events or its error.
func TestCommands(t *testing.T) {
	spec := aggregatetest.NewGated(Registry(), Gates(), Policy{DailyLimit: 1000}).On(Stream("alice"))
	opened := AccountOpened{Limit: 100}
	owner := CustomerRegistered{Customer: Customer("alice"), Name: "Alice"}

	// The owner's name is an event of its own, sealed for the customer.
	o := spec.Given().When(Open{Customer: Customer("alice"), Owner: "Alice", Limit: 100}).Then(t, opened, owner).
		ThenState(t, Account{Customer: Customer("alice"), Owner: "Alice", Opened: true, Limit: 100})
	if o.Records[1].Metadata[batpak.MetaSubject] != Customer("alice") || o.Records[0].Metadata[batpak.MetaSubject] != "" {
		t.Errorf("subjects of the opening events: %v, %v", o.Records[0].Metadata, o.Records[1].Metadata)
	}
	spec.Given(opened).When(Open{Owner: "Alice"}).ThenError(t, ErrAlreadyOpen)
	spec.Given().When(Deposit{Amount: 5}).ThenError(t, ErrNotOpen)
	spec.Given(opened, Deposited{Amount: 5}).When(Deposit{Amount: 5}).Then(t, Deposited{Amount: 5}).
		ThenState(t, Account{Opened: true, Limit: 100, Balance: 10})

	// Closing needs an empty account, and a closed one refuses commands.
	spec.Given(opened, Deposited{Amount: 5}).When(Close{}).ThenError(t, ErrNotEmpty)
	spec.Given(opened).When(Close{}).Then(t, AccountClosed{})
	spec.Given(opened, AccountClosed{}).When(Close{}).Then(t) // already closed: nothing to do
	spec.Given(opened, AccountClosed{}).When(Deposit{Amount: 5}).ThenError(t, ErrAccountClosed)
	spec.Given(opened, AccountClosed{}).When(ReceiveTransfer{TransferID: "t", From: "bob", Amount: 5}).
		ThenError(t, ErrAccountClosed)

	// Freezing stops debits, not credits, and happens once.
	frozen := []any{opened, Deposited{Amount: 50}, AccountFrozen{Reason: "stolen card"}}
	spec.Given(opened).When(Freeze{Reason: "stolen card"}).Then(t, AccountFrozen{Reason: "stolen card"})
	spec.Given(frozen...).When(Freeze{Reason: "again"}).Then(t)
	spec.Given(frozen...).When(ReceiveTransfer{TransferID: "t", From: "bob", Amount: 5}).
		Then(t, TransferReceived{TransferID: "t", From: "bob", Amount: 5})
	spec.Given(frozen...).When(SendTransfer{TransferID: "t", To: "bob", Amount: 5, Day: "d"}).
		ThenDenied(t, "frozen-account", "ACCOUNT_FROZEN")

	// A transfer that comes back restores the balance.
	spec.Given(opened, Deposited{Amount: 50}, TransferSent{TransferID: "t", To: "dave", Amount: 30, Day: "d"}).
		When(ReturnTransfer{TransferID: "t", Reason: "account is closed", Amount: 30}).
		Then(t, TransferReturned{TransferID: "t", Reason: "account is closed", Amount: 30}).
		ThenState(t, Account{Opened: true, Limit: 100, Balance: 50, DailyDebits: map[string]int64{"d": 30}})

	// A correction skips the gates on record.
	o = spec.Given(frozen...).WhenBypassed(Correct{Amount: -500, Note: "fee"}, "chargeback", "ops:jane").
		Then(t, BalanceCorrected{Amount: -500, Note: "fee"})
	if m := o.Records[0].Metadata; m[policy.MetaBypassReason] != "chargeback" || m[policy.MetaBypassActor] != "ops:jane" {
		t.Errorf("bypass metadata %v", m)
	}
	spec.Given(frozen...).WhenBypassed(Correct{Amount: -500}, "", "ops:jane").ThenError(t, policy.ErrBypassUnjustified)
}
