package causal_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"regexp"
	"strings"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/causal"
	"github.com/batpak-go/batpak/eventstore"
)

// exampleStore opens a store in a new temporary directory and appends
// order 7 (see placeOrder); ids are its events in append order. cleanup
// closes the store and removes the directory.
func exampleStore() (s *eventstore.Store, ids []uuid.UUID, cleanup func()) {
	dir, err := os.MkdirTemp("", "batpak-causal-")
	if err != nil {
		log.Fatal(err)
	}
	s, err = eventstore.Open(dir, eventstore.WithSyncMode(eventstore.SyncNone))
	if err != nil {
		log.Fatal(err)
	}
	if ids, err = placeOrder(s, 7); err != nil {
		log.Fatal(err)
	}
	return s, ids, func() {
		if err := s.Close(); err != nil {
			log.Print(err)
		}
		_ = os.RemoveAll(dir)
	}
}

// shortIDs matches the short ids the renderers print. Event ids are
// random, so the examples mask them to keep their output stable.
var shortIDs = regexp.MustCompile(`\b[0-9a-f]{8}\b`)

func Example() {
	s, ids, cleanup := exampleStore()
	defer cleanup()
	captured := ids[3] // PaymentCaptured, caused by PaymentRequested

	g, err := causal.Trace(context.Background(), s, captured)
	if err != nil {
		log.Fatal(err)
	}
	var b strings.Builder
	if err := g.WriteText(&b); err != nil {
		log.Fatal(err)
	}
	fmt.Print(shortIDs.ReplaceAllString(b.String(), "xxxxxxxx"))
	// Output:
	// #1 order:7 v1 1:001 xxxxxxxx
	// ├─ #2 payment:7 v1 1:002 xxxxxxxx
	// │  ├─ #4 payment:7 v2 1:004 xxxxxxxx ◀ traced
	// │  └─ #5 ledger:7 v1 2:001 xxxxxxxx
	// └─ #3 stock:7 v1 1:003 xxxxxxxx
	//    └─ #6 shipment:7 v1 1:005 xxxxxxxx
}

func ExampleTrace() {
	s, ids, cleanup := exampleStore()
	defer cleanup()

	g, err := causal.Trace(context.Background(), s, ids[5])
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(g.Len(), "events,", len(g.Roots), "root")
	for _, n := range g.Nodes {
		cause := "root"
		if n.Parent != nil {
			cause = "caused by #" + fmt.Sprint(n.Parent.Record.Sequence)
		}
		fmt.Printf("%s, %s, %d effects\n", describe(n.Record), cause, len(n.Children))
	}
	// Output:
	// 6 events, 1 root
	// #1 order:7 OrderPlaced, root, 2 effects
	// #2 payment:7 PaymentRequested, caused by #1, 2 effects
	// #3 stock:7 StockReserved, caused by #1, 1 effects
	// #4 payment:7 PaymentCaptured, caused by #2, 0 effects
	// #5 ledger:7 LedgerPosted, caused by #2, 0 effects
	// #6 shipment:7 ShipmentScheduled, caused by #3, 0 effects
}

func ExampleAncestors() {
	s, ids, cleanup := exampleStore()
	defer cleanup()

	causes, err := causal.Ancestors(context.Background(), s, ids[5]) // ShipmentScheduled
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range causes {
		fmt.Println(describe(r))
	}
	// Output:
	// #3 stock:7 StockReserved
	// #1 order:7 OrderPlaced
}

func ExampleDescendants() {
	s, ids, cleanup := exampleStore()
	defer cleanup()

	effects, err := causal.Descendants(context.Background(), s, ids[0], causal.MaxDepth(1))
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range effects {
		fmt.Println(describe(r))
	}
	// Output:
	// #2 payment:7 PaymentRequested
	// #3 stock:7 StockReserved
}

func ExampleWalk() {
	s, ids, cleanup := exampleStore()
	defer cleanup()

	// Every payment event downstream of the order, with its distance.
	for step, err := range causal.Walk(context.Background(), s, ids[0], causal.Kinds(PaymentRequested, PaymentCaptured), causal.MaxNodes(1000)) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(step.Depth, describe(step.Record))
	}
	// Output:
	// 1 #2 payment:7 PaymentRequested
	// 2 #4 payment:7 PaymentCaptured
}

func ExampleWalk_up() {
	s, ids, cleanup := exampleStore()
	defer cleanup()

	for step, err := range causal.Walk(context.Background(), s, ids[4], causal.Up()) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(step.Depth, describe(step.Record))
	}
	// Output:
	// 0 #5 ledger:7 LedgerPosted
	// 1 #2 payment:7 PaymentRequested
	// 2 #1 order:7 OrderPlaced
}

func ExampleCorrelation() {
	s, ids, cleanup := exampleStore()
	defer cleanup()
	if _, err := placeOrder(s, 8); err != nil { // another group
		log.Fatal(err)
	}

	group, err := causal.Correlation(context.Background(), s, ids[4])
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range group {
		fmt.Println(describe(r))
	}
	// Output:
	// #1 order:7 OrderPlaced
	// #2 payment:7 PaymentRequested
	// #3 stock:7 StockReserved
	// #4 payment:7 PaymentCaptured
	// #5 ledger:7 LedgerPosted
	// #6 shipment:7 ShipmentScheduled
}

func ExamplePath() {
	s, ids, cleanup := exampleStore()
	defer cleanup()

	path, err := causal.Path(context.Background(), s, ids[0], ids[3]) // OrderPlaced to PaymentCaptured
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range path {
		fmt.Println(describe(r))
	}
	_, err = causal.Path(context.Background(), s, ids[3], ids[5]) // cousins
	fmt.Println(errors.Is(err, causal.ErrNoPath))
	// Output:
	// #1 order:7 OrderPlaced
	// #2 payment:7 PaymentRequested
	// #4 payment:7 PaymentCaptured
	// true
}

func ExampleDanglingError() {
	s, _, cleanup := exampleStore()
	defer cleanup()

	// An event whose cause was never appended, and its effect.
	missing := uuid.New()
	orphan, err := appendOne(s, "audit:1", LedgerPosted, batpak.WithCausation(missing))
	if err != nil {
		log.Fatal(err)
	}
	effect, err := appendOne(s, "audit:1", LedgerPosted, batpak.WithCausation(orphan))
	if err != nil {
		log.Fatal(err)
	}

	causes, err := causal.Ancestors(context.Background(), s, effect)
	var de *causal.DanglingError
	if errors.As(err, &de) {
		fmt.Println("causes found:", len(causes))
		fmt.Println("missing cause of event", de.Sequence, "is the one appended:", de.Missing == missing)
	}
	g, err := causal.Trace(context.Background(), s, effect)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("dangling in the graph:", len(g.Dangling), "root dangling:", g.Roots[0].Dangling)
	// Output:
	// causes found: 1
	// missing cause of event 7 is the one appended: true
	// dangling in the graph: 1 root dangling: true
}

func ExampleGraph_WriteDOT() {
	s, ids, cleanup := exampleStore()
	defer cleanup()

	g, err := causal.Trace(context.Background(), s, ids[2])
	if err != nil {
		log.Fatal(err)
	}
	var b strings.Builder
	if err := g.WriteDOT(&b); err != nil {
		log.Fatal(err)
	}
	fmt.Print(shortIDs.ReplaceAllString(b.String(), "xxxxxxxx"))
	// Output:
	// digraph causal {
	//   node [shape=box, fontname="monospace"];
	//   "n1" [label="#1 order:7 v1\n1:001 xxxxxxxx"];
	//   "n2" [label="#2 payment:7 v1\n1:002 xxxxxxxx"];
	//   "n3" [label="#3 stock:7 v1\n1:003 xxxxxxxx", style=bold, penwidth=2];
	//   "n4" [label="#4 payment:7 v2\n1:004 xxxxxxxx"];
	//   "n5" [label="#5 ledger:7 v1\n2:001 xxxxxxxx"];
	//   "n6" [label="#6 shipment:7 v1\n1:005 xxxxxxxx"];
	//   "n1" -> "n2";
	//   "n1" -> "n3";
	//   "n2" -> "n4";
	//   "n2" -> "n5";
	//   "n3" -> "n6";
	// }
}
