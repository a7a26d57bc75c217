// Quickstart opens a store, appends two events, reads them back and closes.
package main

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
)

type Deposited struct{ Amount int }

func main() {
	dir, _ := os.MkdirTemp("", "batpak-quickstart-")
	defer os.RemoveAll(dir)
	store, err := eventstore.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	acct := batpak.Coordinate{Entity: "account:42", Scope: "bank"}
	ev := batpak.Event{Kind: kind.Custom(1, 1), Payload: Deposited{Amount: 100}}
	if _, err := store.Append(ctx, acct, []batpak.Event{ev, ev}, batpak.ExpectVersion(batpak.NoStream)); err != nil {
		log.Fatal(err)
	}
	for rec, err := range store.ReadStream(ctx, acct, 1) {
		var d Deposited
		if err != nil || rec.Decode(&d) != nil {
			log.Fatal(err)
		}
		fmt.Printf("#%d %s v%d deposited %d\n", rec.Sequence, rec.Coordinate.Entity, rec.Version, d.Amount)
	}
}
