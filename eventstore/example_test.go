package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
)

// Event kinds and payloads of the examples.
var (
	AccountOpened  = kind.Custom(1, 1)
	MoneyDeposited = kind.Custom(1, 2)
	MoneyWithdrawn = kind.Custom(1, 3)
)

type OpenedPayload struct{ Owner string }

type AmountPayload struct{ Cents int64 }

// openExampleStore opens a store in a new temporary directory; cleanup
// closes it and removes the directory.
func openExampleStore() (s *eventstore.Store, cleanup func()) {
	dir, err := os.MkdirTemp("", "batpak-example-")
	if err != nil {
		log.Fatal(err)
	}
	s, err = eventstore.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	return s, func() {
		if err := s.Close(); err != nil {
			log.Print(err)
		}
		_ = os.RemoveAll(dir)
	}
}

func ExampleOpen() {
	s, cleanup := openExampleStore()
	defer cleanup()
	ctx := context.Background()

	account := batpak.Coordinate{Entity: "account:42", Scope: "bank:eu"}
	receipts, err := s.Append(ctx, account, []batpak.Event{
		{Kind: AccountOpened, Payload: OpenedPayload{Owner: "alice"}},
		{Kind: MoneyDeposited, Payload: AmountPayload{Cents: 2500}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("appended versions", receipts[0].Version, "and", receipts[1].Version)

	for rec, err := range s.ReadStream(context.Background(), batpak.Coordinate{Entity: "account:42", Scope: "bank:eu"}, 0) {
		if err != nil {
			log.Fatal(err)
		}
		switch rec.Kind {
		case AccountOpened:
			var p OpenedPayload
			if err := rec.Decode(&p); err != nil {
				log.Fatal(err)
			}
			fmt.Printf("v%d #%d opened by %s\n", rec.Version, rec.Sequence, p.Owner)
		case MoneyDeposited:
			var p AmountPayload
			if err := rec.Decode(&p); err != nil {
				log.Fatal(err)
			}
			fmt.Printf("v%d #%d deposited %d\n", rec.Version, rec.Sequence, p.Cents)
		}
	}
	// Output:
	// appended versions 1 and 2
	// v1 #1 opened by alice
	// v2 #2 deposited 2500
}

func ExampleVersionConflictError() {
	s, cleanup := openExampleStore()
	defer cleanup()
	ctx := context.Background()
	account := batpak.Coordinate{Entity: "account:7", Scope: "bank:eu"}

	// Two writers read the stream at version 0; both try to open the account.
	open := []batpak.Event{{Kind: AccountOpened, Payload: OpenedPayload{Owner: "bob"}}}
	if _, err := s.Append(ctx, account, open, batpak.ExpectVersion(batpak.NoStream)); err != nil {
		log.Fatal(err)
	}
	_, err := s.Append(ctx, account, open, batpak.ExpectVersion(batpak.NoStream))
	var conflict *batpak.VersionConflictError
	if errors.As(err, &conflict) {
		fmt.Println("conflict: the stream is at version", conflict.Actual)
	}

	// The loser reloads and retries against the version it now knows.
	deposit := []batpak.Event{{Kind: MoneyDeposited, Payload: AmountPayload{Cents: 100}}}
	rs, err := s.Append(ctx, account, deposit, batpak.ExpectVersion(batpak.Exactly(conflict.Actual)))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("deposit stored as version", rs[0].Version)
	fmt.Println("is ErrVersionConflict:", errors.Is(err, batpak.ErrVersionConflict), errors.Is(conflict, batpak.ErrVersionConflict))
	// Output:
	// conflict: the stream is at version 1
	// deposit stored as version 2
	// is ErrVersionConflict: false true
}

func ExampleStore_AppendBatch() {
	s, cleanup := openExampleStore()
	defer cleanup()
	ctx := context.Background()
	from := batpak.Coordinate{Entity: "account:1", Scope: "bank:eu"}
	to := batpak.Coordinate{Entity: "account:2", Scope: "bank:eu"}
	if _, err := s.Append(ctx, from, []batpak.Event{{Kind: MoneyDeposited, Payload: AmountPayload{Cents: 500}}}); err != nil {
		log.Fatal(err)
	}

	// A transfer: both events or neither, each with its own precondition.
	rs, err := s.AppendBatch(ctx, []batpak.BatchItem{
		{Coordinate: from, Event: batpak.Event{Kind: MoneyWithdrawn, Payload: AmountPayload{Cents: 200}}, Expected: batpak.Exactly(1)},
		{Coordinate: to, Event: batpak.Event{Kind: MoneyDeposited, Payload: AmountPayload{Cents: 200}}, Expected: batpak.NoStream},
	}, batpak.WithIdempotencyKey("transfer-0001"))
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range rs {
		fmt.Printf("sequence %d, version %d\n", r.Sequence, r.Version)
	}

	// Retrying with the same key writes nothing and returns the same receipts.
	again, err := s.AppendBatch(ctx, []batpak.BatchItem{
		{Coordinate: from, Event: batpak.Event{Kind: MoneyWithdrawn, Payload: AmountPayload{Cents: 200}}, Expected: batpak.Exactly(1)},
		{Coordinate: to, Event: batpak.Event{Kind: MoneyDeposited, Payload: AmountPayload{Cents: 200}}, Expected: batpak.NoStream},
	}, batpak.WithIdempotencyKey("transfer-0001"))
	fmt.Println("retry:", err, again[0] == rs[0] && again[1] == rs[1], "last sequence", s.LastSequence())

	// A batch whose second item fails writes nothing at all.
	_, err = s.AppendBatch(ctx, []batpak.BatchItem{
		{Coordinate: from, Event: batpak.Event{Kind: MoneyWithdrawn, Payload: AmountPayload{Cents: 1}}},
		{Coordinate: to, Event: batpak.Event{Kind: MoneyDeposited, Payload: AmountPayload{Cents: 1}}, Expected: batpak.NoStream},
	})
	fmt.Println("failed batch:", errors.Is(err, batpak.ErrVersionConflict), "last sequence", s.LastSequence())
	// Output:
	// sequence 2, version 2
	// sequence 3, version 1
	// retry: <nil> true last sequence 3
	// failed batch: true last sequence 3
}

func ExampleStore_Cursor() {
	s, cleanup := openExampleStore()
	defer cleanup()
	ctx := context.Background()
	appendAmount := func(entity string, k kind.Kind, cents int64) {
		c := batpak.Coordinate{Entity: entity, Scope: "bank:eu"}
		if _, err := s.Append(ctx, c, []batpak.Event{{Kind: k, Payload: AmountPayload{Cents: cents}}}); err != nil {
			log.Fatal(err)
		}
	}
	appendAmount("account:1", MoneyDeposited, 100)
	appendAmount("account:2", MoneyWithdrawn, 40)
	appendAmount("account:1", MoneyWithdrawn, 30)

	// Every withdrawal, from the beginning of the log, exactly once.
	withdrawals := s.Cursor(batpak.Region{Kinds: []kind.Kind{MoneyWithdrawn}}, 0)
	show := func() {
		rec, err := withdrawals.Next(ctx) // waits for the next withdrawal
		if err != nil {
			log.Fatal(err)
		}
		var a AmountPayload
		if err := rec.Decode(&a); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("#%d %s withdrew %d\n", rec.Sequence, rec.Coordinate.Entity, a.Cents)
	}
	show()
	show()
	appendAmount("account:3", MoneyWithdrawn, 5)
	show()
	// Position is where a projection resumes after a restart.
	fmt.Println("resume at", withdrawals.Position())
	// Output:
	// #2 account:2 withdrew 40
	// #3 account:1 withdrew 30
	// #4 account:3 withdrew 5
	// resume at 5
}

func ExampleStore_Subscribe() {
	s, cleanup := openExampleStore()
	defer cleanup()
	ctx := context.Background()

	// Subscriptions see new events only, and drop them (counted) when the
	// buffer is full rather than slow the writer down.
	sub, err := s.Subscribe(batpak.Region{EntityPrefix: "account:"}, 16)
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	for i, entity := range []string{"account:9", "audit:1", "account:9"} {
		c := batpak.Coordinate{Entity: entity, Scope: "bank:eu"}
		if _, err := s.Append(ctx, c, []batpak.Event{{Kind: MoneyDeposited, Payload: AmountPayload{Cents: int64(i)}}}); err != nil {
			log.Fatal(err)
		}
	}
	for range 2 {
		rec := <-sub.Events()
		fmt.Printf("#%d %s v%d\n", rec.Sequence, rec.Coordinate.Entity, rec.Version)
	}
	fmt.Println("dropped", sub.Dropped())
	// Output:
	// #1 account:9 v1
	// #3 account:9 v2
	// dropped 0
}

func ExampleDecodeParallel() {
	s, cleanup := openExampleStore()
	defer cleanup()
	ctx := context.Background()
	reg := batpak.NewRegistry()
	batpak.MustRegister[OpenedPayload](reg, AccountOpened, "bank.Opened")
	batpak.MustRegister[AmountPayload](reg, MoneyDeposited, "bank.Amount")
	account := batpak.Coordinate{Entity: "account:7", Scope: "bank:eu"}
	if _, err := s.Append(ctx, account, []batpak.Event{
		{Kind: AccountOpened, Payload: OpenedPayload{Owner: "bob"}},
		{Kind: MoneyDeposited, Payload: AmountPayload{Cents: 700}},
		{Kind: MoneyDeposited, Payload: AmountPayload{Cents: 50}},
	}); err != nil {
		log.Fatal(err)
	}

	// Replay the whole log with the payloads decoded to their registered
	// types by worker goroutines; the events still arrive in order.
	for ev, err := range eventstore.DecodeParallel(s.Replay(context.Background(), batpak.Region{}, 0), 0, reg.Decode) {
		if err != nil {
			log.Fatal(err)
		}
		switch p := ev.Value.(type) {
		case OpenedPayload:
			fmt.Printf("#%d opened by %s\n", ev.Sequence, p.Owner)
		case AmountPayload:
			fmt.Printf("#%d deposit of %d\n", ev.Sequence, p.Cents)
		}
	}
	// Output:
	// #1 opened by bob
	// #2 deposit of 700
	// #3 deposit of 50
}
