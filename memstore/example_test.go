package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/memstore"
)

var (
	accountOpened  = kind.Custom(1, 1)
	moneyDeposited = kind.Custom(1, 2)
)

type opened struct{ Owner string }

type deposited struct{ Cents int64 }

func Example() {
	s := memstore.New()
	defer s.Close()
	ctx := context.Background()

	account := batpak.Coordinate{Entity: "account:42", Scope: "bank:eu"}
	receipts, err := s.Append(ctx, account, []batpak.Event{
		{Kind: accountOpened, Payload: opened{Owner: "alice"}},
		{Kind: moneyDeposited, Payload: deposited{Cents: 2500}},
	}, batpak.ExpectVersion(batpak.NoStream))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("appended versions", receipts[0].Version, "and", receipts[1].Version)

	// A stale expectation is refused with the stream's actual version.
	_, err = s.Append(ctx, account, []batpak.Event{{Kind: moneyDeposited, Payload: deposited{Cents: 100}}},
		batpak.ExpectVersion(batpak.Exactly(1)))
	var conflict *batpak.VersionConflictError
	if errors.As(err, &conflict) {
		fmt.Println("conflict: the stream is at version", conflict.Actual)
	}

	for rec, err := range s.ReadStream(ctx, account, 0) {
		if err != nil {
			log.Fatal(err)
		}
		if rec.Kind == moneyDeposited {
			var d deposited
			if err := rec.Decode(&d); err != nil {
				log.Fatal(err)
			}
			fmt.Printf("v%d deposited %d cents\n", rec.Version, d.Cents)
		}
	}

	// The same entity in another scope is another stream.
	other := batpak.Coordinate{Entity: "account:42", Scope: "bank:us"}
	fmt.Println("versions:", s.StreamVersion(account), s.StreamVersion(other))
	fmt.Println("chain verifies:", s.VerifyChain(ctx, account) == nil)
	// Output:
	// appended versions 1 and 2
	// conflict: the stream is at version 2
	// v2 deposited 2500 cents
	// versions: 2 0
	// chain verifies: true
}
