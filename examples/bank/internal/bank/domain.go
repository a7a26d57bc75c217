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
		Owner string
		Limit int64 // how far below zero the balance may go
	}
	Deposited struct{ Amount int64 }
	Withdrawn struct {
		Amount int64
		Day    string
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

// Registry maps the bank's event types to kinds (category 0x1).
func Registry() *batpak.Registry {
	r := batpak.NewRegistry()
	batpak.MustRegister[AccountOpened](r, kind.Custom(0x1, 0x001), "bank.AccountOpened")
	batpak.MustRegister[Deposited](r, kind.Custom(0x1, 0x002), "bank.Deposited")
	batpak.MustRegister[Withdrawn](r, kind.Custom(0x1, 0x003), "bank.Withdrawn")
	batpak.MustRegister[TransferSent](r, kind.Custom(0x1, 0x004), "bank.TransferSent")
	batpak.MustRegister[TransferReceived](r, kind.Custom(0x1, 0x005), "bank.TransferReceived")
	batpak.MustRegister[TransferReturned](r, kind.Custom(0x1, 0x006), "bank.TransferReturned")
	batpak.MustRegister[AccountFrozen](r, kind.Custom(0x1, 0x007), "bank.AccountFrozen")
	batpak.MustRegister[AccountClosed](r, kind.Custom(0x1, 0x008), "bank.AccountClosed")
	batpak.MustRegister[BalanceCorrected](r, kind.Custom(0x1, 0x009), "bank.BalanceCorrected")
	return r
}

// Account is the aggregate root's state.
type Account struct {
	Owner       string
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
		a.Owner, a.Opened, a.Limit = e.Owner, true, e.Limit
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
		Owner string
		Limit int64
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
	return []any{AccountOpened{Owner: c.Owner, Limit: c.Limit}}, nil
}

func (c Deposit) Handle(a *Account) ([]any, error) {
	return one(a.usable(), Deposited{Amount: c.Amount})
}

func (c Withdraw) Handle(a *Account) ([]any, error) {
	return one(a.usable(), Withdrawn{Amount: c.Amount, Day: c.Day})
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
