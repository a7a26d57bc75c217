package batpak_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/memstore"
)

type Deposited struct{ Amount int }

var kindDeposited = kind.Custom(1, 1)

// A store is any backend; the examples use the in-memory one. Append
// checks the expected version, ReadStream reads the stream back.
func Example() {
	ctx := context.Background()
	var store batpak.Store = memstore.New()
	defer store.Close()

	acct := batpak.Coordinate{Entity: "account:42", Scope: "bank"}
	_, err := store.Append(ctx, acct,
		[]batpak.Event{{Kind: kindDeposited, Payload: Deposited{Amount: 100}}},
		batpak.ExpectVersion(batpak.NoStream))
	if err != nil {
		fmt.Println(err)
		return
	}
	for rec, err := range store.ReadStream(ctx, acct, 0) {
		if err != nil {
			fmt.Println(err)
			return
		}
		var d Deposited
		_ = rec.Decode(&d)
		fmt.Printf("%s v%d deposited %d\n", rec.Coordinate, rec.Version, d.Amount)
	}
	// Output: bank/account:42 v1 deposited 100
}

// Two writers that read the same version race; the second one's append
// fails with a version conflict that names the stream's actual version.
func ExampleExactly() {
	ctx := context.Background()
	store := memstore.New()
	defer store.Close()
	acct := batpak.Coordinate{Entity: "account:7", Scope: "bank"}
	deposit := []batpak.Event{{Kind: kindDeposited, Payload: Deposited{Amount: 5}}}

	v := store.StreamVersion(acct) // both writers read version 0
	_, first := store.Append(ctx, acct, deposit, batpak.ExpectVersion(batpak.Exactly(v)))
	_, second := store.Append(ctx, acct, deposit, batpak.ExpectVersion(batpak.Exactly(v)))

	var conflict *batpak.VersionConflictError
	fmt.Println(first, errors.As(second, &conflict), conflict.Actual)
	// Output: <nil> true 1
}

// An append retried with the same idempotency key stores nothing and
// returns the first append's receipts.
func ExampleWithIdempotencyKey() {
	ctx := context.Background()
	store := memstore.New()
	defer store.Close()
	acct := batpak.Coordinate{Entity: "account:9", Scope: "bank"}
	deposit := []batpak.Event{{Kind: kindDeposited, Payload: Deposited{Amount: 20}}}

	first, _ := store.Append(ctx, acct, deposit, batpak.WithIdempotencyKey("deposit-7f3a"))
	retry, _ := store.Append(ctx, acct, deposit, batpak.WithIdempotencyKey("deposit-7f3a"))
	fmt.Println(first[0].Sequence == retry[0].Sequence, store.StreamVersion(acct))
	// Output: true 1
}

// A stream is its whole coordinate: the same entity in two scopes is two
// streams.
func ExampleCoordinate() {
	ctx := context.Background()
	store := memstore.New()
	defer store.Close()
	a := batpak.Coordinate{Entity: "user:7", Scope: "tenantA"}
	b := batpak.Coordinate{Entity: "user:7", Scope: "tenantB"}
	ev := []batpak.Event{{Kind: kindDeposited, Payload: Deposited{Amount: 1}}}

	_, _ = store.Append(ctx, a, ev)
	_, _ = store.Append(ctx, a, ev)
	_, _ = store.Append(ctx, b, ev)
	fmt.Println(store.StreamVersion(a), store.StreamVersion(b))
	// Output: 2 1
}

// A cursor yields every matching event once, in order, and waits at the
// end of the log for the next one.
func ExampleCursor() {
	ctx := context.Background()
	store := memstore.New()
	defer store.Close()
	cur := store.Cursor(batpak.Region{EntityPrefix: "account:"}, 0)

	go func() {
		for i := range 3 {
			c := batpak.Coordinate{Entity: fmt.Sprintf("account:%d", i), Scope: "bank"}
			_, _ = store.Append(ctx, c, []batpak.Event{{Kind: kindDeposited, Payload: Deposited{Amount: i}}})
		}
	}()
	for range 3 {
		rec, err := cur.Next(ctx) // waits until the next event is appended
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(rec.Sequence, rec.Coordinate.Entity)
	}
	// Output:
	// 1 account:0
	// 2 account:1
	// 3 account:2
}

// A Registry maps kinds to Go types, so records decode to typed values.
func ExampleRegistry() {
	reg := batpak.NewRegistry()
	batpak.MustRegister[Deposited](reg, kindDeposited, "bank.Deposited")
	ev, _ := reg.Event(Deposited{Amount: 3})
	store := memstore.New()
	defer store.Close()
	ctx := context.Background()
	rs, _ := store.Append(ctx, batpak.Coordinate{Entity: "account:1", Scope: "bank"}, []batpak.Event{ev})
	rec, _ := store.GetSequence(ctx, rs[0].Sequence)
	v, _ := reg.Decode(&rec)
	fmt.Printf("%T %+v\n", v, v)
	// Output: batpak_test.Deposited {Amount:3}
}

// A scoped view sees and writes one tenant's streams only.
func ExampleScoped() {
	ctx := context.Background()
	store := memstore.New()
	defer store.Close()
	tenantA, _ := batpak.Scoped(store, "tenantA")
	tenantB, _ := batpak.Scoped(store, "tenantB")
	user := batpak.Coordinate{Entity: "user:7"} // each view fills in its scope
	ev := []batpak.Event{{Kind: kindDeposited, Payload: Deposited{Amount: 1}}}

	_, _ = tenantA.Append(ctx, user, ev)
	_, _ = tenantA.Append(ctx, user, ev)
	_, _ = tenantB.Append(ctx, user, ev)
	_, err := tenantA.Append(ctx, batpak.Coordinate{Entity: "user:7", Scope: "tenantB"}, ev)
	fmt.Println(tenantA.StreamVersion(user), tenantB.StreamVersion(user), errors.Is(err, batpak.ErrOutOfScope))
	// Output: 2 1 true
}
