package bank

import (
	"errors"
	"fmt"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

// Events of the bank domain. Registering each type once is all the
// aggregate machinery needs: it turns values into events and back.
type (
	AccountOpened struct {
		Limit int64 // how far below zero the balance may go
	}
	Deposited struct{ Amount int64 }
	// Withdrawn is at schema version 2: release 1 wrote WithdrawnV1,
	// without the channel (evolution.go).
	Withdrawn struct {
		Amount  int64
		Day     string
		Channel string // "app", "branch"
	}
	TransferSent struct {
		TransferID string
		To         string
		Amount     int64
		Day        string
	}
	TransferReceived struct {
		TransferID string
		From       string
		Amount     int64
	}
	TransferReturned struct {
		TransferID string
		Amount     int64
		Reason     string
	}
	AccountFrozen    struct{ Reason string }
	AccountClosed    struct{}
	BalanceCorrected struct {
		Amount int64
		Note   string
	}
)

// Registry maps the bank's event types to kinds (category 0x1) and
// stable names, with the upcaster that reads what release 1 wrote.
func Registry() *batpak.Registry {
	r := batpak.NewRegistry()
	batpak.MustRegister[AccountOpened](r, kind.Custom(0x1, 0x001), "bank.AccountOpened")
	batpak.MustRegister[Deposited](r, kind.Custom(0x1, 0x002), "bank.Deposited")
	batpak.MustRegister[Withdrawn](r, kind.Custom(0x1, 0x003), "bank.Withdrawn", withdrawnV1toV2)
	batpak.MustRegister[TransferSent](r, kind.Custom(0x1, 0x004), "bank.TransferSent")
	batpak.MustRegister[TransferReceived](r, kind.Custom(0x1, 0x005), "bank.TransferReceived")
	batpak.MustRegister[TransferReturned](r, kind.Custom(0x1, 0x006), "bank.TransferReturned")
	batpak.MustRegister[AccountFrozen](r, kind.Custom(0x1, 0x007), "bank.AccountFrozen")
	batpak.MustRegister[AccountClosed](r, kind.Custom(0x1, 0x008), "bank.AccountClosed")
	batpak.MustRegister[BalanceCorrected](r, kind.Custom(0x1, 0x009), "bank.BalanceCorrected")
	batpak.MustRegister[CustomerRegistered](r, kind.Custom(0x1, 0x00A), "bank.CustomerRegistered")
	return r
}

// Account is the aggregate root's state.
type Account struct {
	Customer    string // the data subject of the owner's personal data
	Owner       string // the owner's name; "(forgotten)" once erased
	Opened      bool
	Closed      bool
	Frozen      bool
	Balance     int64
	Limit       int64
	DailyDebits map[string]int64 // day → amount debited
}

// Apply folds one event into the account.
func (a *Account) Apply(event any) {
	switch e := event.(type) {
	case AccountOpened:
		a.Opened, a.Limit = true, e.Limit
	case CustomerRegistered:
		a.Customer, a.Owner = e.Customer, e.Name
	case batpak.Erased: // the owner was forgotten: only personal data is sealed
		a.Owner = "(forgotten)"
	case Deposited:
		a.Balance += e.Amount
	case Withdrawn:
		a.debit(e.Day, e.Amount)
	case TransferSent:
		a.debit(e.Day, e.Amount)
	case TransferReceived:
		a.Balance += e.Amount
	case TransferReturned:
		a.Balance += e.Amount
	case AccountFrozen:
		a.Frozen = true
	case AccountClosed:
		a.Closed = true
	case BalanceCorrected:
		a.Balance += e.Amount
	}
}

func (a *Account) debit(day string, amount int64) {
	a.Balance -= amount
	if a.DailyDebits == nil {
		a.DailyDebits = make(map[string]int64)
	}
	a.DailyDebits[day] += amount
}

// Business rules that are not policy: they make a command meaningless.
var (
	ErrNotOpen       = errors.New("account is not open")
	ErrAlreadyOpen   = errors.New("account is already open")
	ErrAccountClosed = errors.New("account is closed")
	ErrNotEmpty      = errors.New("account still holds money")
)

func (a *Account) usable() error {
	switch {
	case !a.Opened:
		return ErrNotOpen
	case a.Closed:
		return ErrAccountClosed
	}
	return nil
}

// Commands. Each looks at the state and returns the events to emit.
type (
	Open struct {
		Customer string // the owner's data subject, "customer:<id>"
		Owner    string
		Limit    int64
	}
	Deposit  struct{ Amount int64 }
	Withdraw struct {
		Amount int64
		Day    string
	}
	SendTransfer struct {
		TransferID, To string
		Amount         int64
		Day            string
	}
	ReceiveTransfer struct {
		TransferID, From string
		Amount           int64
	}
	ReturnTransfer struct {
		TransferID, Reason string
		Amount             int64
	}
	Freeze  struct{ Reason string }
	Close   struct{}
	Correct struct {
		Amount int64
		Note   string
	}
)

func (c Open) Handle(a *Account) ([]any, error) {
	if a.Opened {
		return nil, ErrAlreadyOpen
	}
	// The owner's name goes into an event of its own, sealed with the
	// customer's key, so forgetting the customer erases it and nothing else.
	return []any{AccountOpened{Limit: c.Limit}, CustomerRegistered{Customer: c.Customer, Name: c.Owner}}, nil
}

func (c Deposit) Handle(a *Account) ([]any, error) {
	return one(a.usable(), Deposited{Amount: c.Amount})
}

func (c Withdraw) Handle(a *Account) ([]any, error) {
	return one(a.usable(), Withdrawn{Amount: c.Amount, Day: c.Day, Channel: "app"})
}

func (c SendTransfer) Handle(a *Account) ([]any, error) {
	return one(a.usable(), TransferSent{TransferID: c.TransferID, To: c.To, Amount: c.Amount, Day: c.Day})
}

func (c ReceiveTransfer) Handle(a *Account) ([]any, error) {
	return one(a.usable(), TransferReceived{TransferID: c.TransferID, From: c.From, Amount: c.Amount})
}

func (c ReturnTransfer) Handle(a *Account) ([]any, error) {
	return one(a.usable(), TransferReturned{TransferID: c.TransferID, Amount: c.Amount, Reason: c.Reason})
}

func (c Freeze) Handle(a *Account) ([]any, error) {
	if a.Frozen {
		return nil, nil
	}
	return one(a.usable(), AccountFrozen{Reason: c.Reason})
}

func (c Close) Handle(a *Account) ([]any, error) {
	if a.Closed {
		return nil, nil
	}
	if err := a.usable(); err != nil {
		return nil, err
	}
	if a.Balance != 0 {
		return nil, fmt.Errorf("%w: %d", ErrNotEmpty, a.Balance)
	}
	return []any{AccountClosed{}}, nil
}

func (c Correct) Handle(a *Account) ([]any, error) {
	return one(a.usable(), BalanceCorrected{Amount: c.Amount, Note: c.Note})
}

func one(err error, ev any) ([]any, error) {
	if err != nil {
		return nil, err
	}
	return []any{ev}, nil
}
