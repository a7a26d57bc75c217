// Command nats runs the bank example's scenario (package bank, unchanged)
// on NATS JetStream through natsstore, with the accounts' snapshots in a
// KV bucket beside the stream. It is its own command so that the main
// example, ./examples/bank, does not build the JetStream server.
//
//	go run ./examples/bank/nats                   # a JetStream server started in this process
//	go run ./examples/bank/nats -data DIR         # ... with its files in DIR, kept
//	go run ./examples/bank/nats -server URL       # the server(s) at URL, comma-separated
//
// A second run on the same stream (the same -data, or the same servers)
// finds the accounts there: it appends nothing and shows what the stream
// holds.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/batpak-go/batpak/examples/bank/internal/bank"
	"github.com/batpak-go/batpak/natsstore"
	"github.com/batpak-go/batpak/natsstore/embedded"
)

func main() {
	server := flag.String("server", "", "the JetStream server URL(s), comma-separated (default: start a server in this process)")
	data := flag.String("data", "", "with no -server, the directory of the in-process server's files, kept afterwards (default: a temporary directory, removed on exit)")
	verbose := flag.Bool("v", false, "print each step")
	flag.Parse()
	if err := run(*server, *data, *verbose, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// bankStream is the JetStream stream of the bank's events.
const bankStream = "BANK"

// openNATS opens the bank's store on JetStream: at url, or, when url is
// empty, on a server started in this process with its files in dir.
func openNATS(url, dir string) (*natsstore.Store, func(), error) {
	stop := func() {}
	if url == "" {
		ns, err := embedded.Start(embedded.Options{Dir: dir, Name: "bank"})
		if err != nil {
			return nil, nil, err
		}
		url, stop = ns.ClientURL(), ns.Shutdown
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := natsstore.Open(ctx, url, natsstore.WithStream(bankStream))
	if err != nil {
		stop()
		return nil, nil, err
	}
	return s, stop, nil
}

func run(server, data string, verbose bool, out io.Writer) error {
	dir := data
	if server == "" && dir == "" {
		tmp, err := os.MkdirTemp("", "batpak-bank-nats-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	store, stop, err := openNATS(server, dir)
	if err != nil {
		return err
	}
	defer stop()
	defer store.Close()
	where := "JetStream stream " + bankStream + " at " + store.Conn().ConnectedUrlRedacted()
	// Snapshots live in a KV bucket beside the stream, as the events do.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	snapshots, err := natsstore.NewKVSnapshots(ctx, store)
	cancel()
	if err != nil {
		return err
	}
	steps := io.Discard
	if verbose {
		steps = out
	}
	r, err := bank.Run(context.Background(), store, snapshots, time.Now, steps)
	if err != nil {
		return err
	}
	if !r.Ran {
		fmt.Fprintf(out, "%s already holds the bank's accounts: the scenario does not run again, nothing is appended,\nand what follows is read from the stream.\n\n", where)
	}
	bank.PrintReport(out, r)
	n := store.LastSequence()
	switch {
	case server == "" && data == "":
		fmt.Fprintf(out, "\n%d events in %s, a server in this process whose files are removed on exit (-data DIR keeps them in DIR)\n", n, where)
	case r.Ran:
		fmt.Fprintf(out, "\n%d events in %s; a second run appends nothing\n", n, where)
	default:
		fmt.Fprintf(out, "\n%d events in %s, as before: nothing was appended\n", n, where)
	}
	return nil
}
