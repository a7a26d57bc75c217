package bank_test

import (
	"context"
	"database/sql"
	"io"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/examples/bank/internal/bank"
	"github.com/batpak-go/batpak/examples/bank/internal/bank/banktest"
	"github.com/batpak-go/batpak/memstore"
)

// TestSQLReadModel plays the scenario with the balances also in SQLite,
// keeps the bank busy with the steady workload, and starts a second
// session on the same store and database: the table follows the accounts
// throughout, and the second session applies nothing it already had.
func TestSQLReadModel(t *testing.T) {
	ctx := t.Context()
	store := memstore.New()
	defer store.Close()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "read.db")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := func() time.Time { return banktest.Day }
	s, err := bank.Start(ctx, store, aggregate.NewMemorySnapshots(), now, bank.WithSQL(db))
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Play(ctx, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	checkSQL(t, r.Balances, r.ReadModels.SQL, banktest.Events+1, banktest.Events)

	const steps = 20
	busy, stop := context.WithCancel(ctx)
	var denied int
	if err := s.Steady(busy, time.Millisecond, func(st bank.Step) {
		if st.Denied {
			denied++
		}
		if st.N == steps {
			stop()
		}
	}); err != nil {
		t.Fatal(err)
	}
	rm, err := s.ReadModels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	balances, err := s.Bank.Balances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := store.LastSequence()
	if denied != 0 || last != banktest.Events+steps/2*3 { // a deposit is one event, a transfer two
		t.Errorf("after %d steps, %d denied: %d events", steps, denied, last)
	}
	checkSQL(t, balances, rm.SQL, last+1, last)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}

	again, err := bank.Run(ctx, store, aggregate.NewMemorySnapshots(), now, io.Discard, bank.WithSQL(db))
	if err != nil {
		t.Fatal(err)
	}
	checkSQL(t, again.Balances, again.ReadModels.SQL, last+1, 0)
}

// checkSQL checks the balances table against the accounts' balances, its
// position, and how many events the session applied to it.
func checkSQL(t *testing.T, accounts []bank.Balance, got *bank.SQLReadModel, next, applied uint64) {
	t.Helper()
	if got == nil {
		t.Fatal("no SQL read model in the report")
	}
	for _, b := range accounts {
		if row := got.Rows[b.Account]; row.Balance != b.Balance || row.Events == 0 {
			t.Errorf("%s: the table holds %+v, the account %d", b.Account, row, b.Balance)
		}
	}
	if got.Next != next || got.Applied != applied {
		t.Errorf("the table's position %d, %d applied by this session; want %d and %d", got.Next, got.Applied, next, applied)
	}
}
