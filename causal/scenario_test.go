package causal_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
)

// Event kinds of the tests and examples.
var (
	OrderPlaced       = kind.Custom(1, 1)
	PaymentRequested  = kind.Custom(1, 2)
	StockReserved     = kind.Custom(1, 3)
	PaymentCaptured   = kind.Custom(1, 4)
	ShipmentScheduled = kind.Custom(1, 5)
	LedgerPosted      = kind.Custom(2, 1)
)

var kindNames = map[kind.Kind]string{
	OrderPlaced:       "OrderPlaced",
	PaymentRequested:  "PaymentRequested",
	StockReserved:     "StockReserved",
	PaymentCaptured:   "PaymentCaptured",
	ShipmentScheduled: "ShipmentScheduled",
	LedgerPosted:      "LedgerPosted",
}

// describe formats a record without its random id and timestamp.
func describe(r batpak.Record) string {
	return fmt.Sprintf("#%d %s %s", r.Sequence, r.Coordinate.Entity, kindNames[r.Kind])
}

// appendOne appends one event of kind k to entity's stream.
func appendOne(s *eventstore.Store, entity string, k kind.Kind, opts ...batpak.AppendOption) (uuid.UUID, error) {
	rs, err := s.Append(context.Background(), batpak.Coordinate{Entity: entity, Scope: "shop"},
		[]batpak.Event{{Kind: k}}, opts...)
	if err != nil {
		return uuid.Nil, err
	}
	return rs[0].EventID, nil
}

// placeOrder appends the causal tree of order n, across five streams, and
// returns the event ids in append order:
//
//	order:n    OrderPlaced
//	├─ payment:n  PaymentRequested
//	│  ├─ payment:n  PaymentCaptured
//	│  └─ ledger:n   LedgerPosted
//	└─ stock:n    StockReserved
//	   └─ shipment:n ShipmentScheduled
//
// In an empty store the events get sequences 1 to 6 in the order
// OrderPlaced, PaymentRequested, StockReserved, PaymentCaptured,
// LedgerPosted, ShipmentScheduled.
func placeOrder(s *eventstore.Store, n int) ([]uuid.UUID, error) {
	steps := []struct {
		entity string
		kind   kind.Kind
		cause  int // index of the cause in ids, -1 for the root
	}{
		{"order", OrderPlaced, -1},
		{"payment", PaymentRequested, 0},
		{"stock", StockReserved, 0},
		{"payment", PaymentCaptured, 1},
		{"ledger", LedgerPosted, 1},
		{"shipment", ShipmentScheduled, 2},
	}
	var ids []uuid.UUID
	for _, st := range steps {
		var opts []batpak.AppendOption
		if st.cause >= 0 {
			opts = append(opts, batpak.WithCausation(ids[st.cause]))
		}
		id, err := appendOne(s, fmt.Sprintf("%s:%d", st.entity, n), st.kind, opts...)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func openStore(t testing.TB) *eventstore.Store {
	t.Helper()
	s, err := eventstore.Open(t.TempDir(), eventstore.WithSyncMode(eventstore.SyncNone))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// orderStore returns a store holding order 7 (sequences 1 to 6, ids[0] to
// ids[5]) and order 8 (sequences 7 to 12, ids[6] to ids[11]).
func orderStore(t testing.TB) (*eventstore.Store, []uuid.UUID) {
	t.Helper()
	s := openStore(t)
	var ids []uuid.UUID
	for _, n := range []int{7, 8} {
		o, err := placeOrder(s, n)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, o...)
	}
	return s, ids
}

func seqs(recs []batpak.Record) []uint64 {
	out := make([]uint64, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Sequence)
	}
	return out
}
