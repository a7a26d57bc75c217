package bank

import (
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate/aggregatetest"
)

// history is two accounts' events, and one account of another scope that
// the bank's read models must not see.
func history() *aggregatetest.History {
	alice, bob := Stream("alice"), Stream("bob")
	other := batpak.Coordinate{Entity: Entity("alice"), Scope: "another-bank"}
	return aggregatetest.GivenEvents(Registry(),
		aggregatetest.On(alice, AccountOpened{}, Deposited{Amount: 1000}),
		aggregatetest.On(bob, AccountOpened{}),
		aggregatetest.On(other, AccountOpened{}, Deposited{Amount: 1_000_000}),
		aggregatetest.On(alice, TransferSent{TransferID: "t-1", To: "bob", Amount: 300, Day: "d"}),
		aggregatetest.On(bob, TransferReceived{TransferID: "t-1", From: "alice", Amount: 300}),
		aggregatetest.On(alice, TransferSent{TransferID: "t-2", To: "dave", Amount: 50, Day: "d"},
			TransferReturned{TransferID: "t-2", Amount: 50, Reason: "closed"},
			Withdrawn{Amount: 100, Day: "d", Channel: "app"}),
		aggregatetest.On(bob, AccountFrozen{Reason: "r"}, BalanceCorrected{Amount: 25, Note: "fee"}),
	)
}

func TestReadModels(t *testing.T) {
	reg := Registry()

	balances := newBalancesView(reg)
	history().Project(t, balances)
	aggregatetest.ThenModel(t, balances.snapshot(), map[string]int64{"alice": 600, "bob": 325})

	statement := &statementView{reg: reg, account: "alice"}
	history().Project(t, statement)
	aggregatetest.ThenModel(t, statement.snapshot(), []string{
		"#2   Deposited             +1000  =   1000",
		"#6   TransferSent           -300  =    700",
		"#8   TransferSent            -50  =    650",
		"#9   TransferReturned        +50  =    700",
		"#10  Withdrawn (app)        -100  =    600",
	})

	large := &largeTransfersView{reg: reg, threshold: 250}
	history().Project(t, large)
	aggregatetest.ThenModel(t, large.snapshot(), []string{"t-1: 300 from alice to bob"})
}
