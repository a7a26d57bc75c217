// Command bank runs a short scripted scenario of a bank domain on the
// embedded batpak store: accounts, deposits and withdrawals through policy
// gates, transfers whose events cause events on the other account, an
// audited admin bypass, and the causal chain of each transfer. Read models
// follow the store: in memory, and the balances also in a SQLite table,
// readmodels.db in the store's directory, kept exactly once (package
// projection/sqlproj). The domain and the script are package bank
// (./internal/bank); ./nats runs them on NATS JetStream.
//
//	go run ./examples/bank              # store in a temporary directory, removed on exit
//	go run ./examples/bank -data DIR    # the store is DIR, and stays; batpak inspect DIR reads it
//	go run ./examples/bank -trace       # then prints the spans of one transfer
//	go run ./examples/bank -metrics :9090  # then serves Prometheus metrics at /metrics until interrupted
//
// A second run with the same -data finds the accounts there: it appends
// nothing and shows what the store holds; the SQL read model goes on from
// the position it stored, so it applies nothing twice.
//
// With -metrics, once the scenario is reported, a steady workload keeps
// the store and the read models busy until interrupted (a small deposit or
// transfer every half second, through the same gates), so that every
// metric moves from one scrape to the next.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite", pure Go

	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/examples/bank/internal/bank"
)

func main() {
	var o options
	flag.StringVar(&o.data, "data", "", "the store's directory, kept afterwards; a run on a store that holds the accounts appends nothing (default: a temporary directory, removed on exit)")
	flag.BoolVar(&o.verbose, "v", false, "print each step")
	flag.BoolVar(&o.trace, "trace", false, "trace the run with OpenTelemetry, in memory, and print the spans of its first transfer")
	metricsAddr := flag.String("metrics", "", "serve Prometheus metrics of the store and the read models at http://ADDR/metrics (say :9090), and after the scenario keep a steady workload running until interrupted (default: none)")
	flag.Parse()
	ctx := context.Background()
	if *metricsAddr != "" {
		m, err := listenMetrics(*metricsAddr)
		if err != nil {
			log.Fatal(err)
		}
		o.metrics, o.steady = m, steadyInterval
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	if err := runWith(ctx, o, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// steadyInterval is how often the -metrics mode's workload runs a command.
const steadyInterval = 500 * time.Millisecond

// options are the command's flags, and what the tests set beside them.
type options struct {
	data    string
	verbose bool
	trace   bool
	metrics *metricsServer // nil: no -metrics
	// steady, if not 0, runs the steady workload after the report, a
	// command every steady, until the context ends; onStep sees each.
	steady time.Duration
	onStep func(bank.Step)
}

// Where, inside the store's directory, the other files go: the accounts'
// snapshots and the SQL read model. The store leaves alone what is not its
// own.
const (
	snapshotsDir = "snapshots"
	readModelsDB = "readmodels.db"
)

func run(data string, verbose bool, out io.Writer) error {
	return runWith(context.Background(), options{data: data, verbose: verbose}, out)
}

// runWith runs the scenario as o says and reports it to out. With metrics,
// the store reports to o.metrics' observer, which reads the store and the
// read models; with steady, the workload runs until ctx ends.
func runWith(ctx context.Context, o options, out io.Writer) (err error) {
	var storeOpts []eventstore.Option
	var runOpts []bank.RunOption
	if o.metrics != nil {
		storeOpts = append(storeOpts, eventstore.WithObserver(o.metrics.observer))
		runOpts = append(runOpts, bank.WithRunner(o.metrics.watchRunner))
	}
	var tr *traceRecorder
	if o.trace {
		tr = newTraceRecorder()
		defer tr.shutdown()
		runOpts = append(runOpts, bank.WithTracerProvider(tr.tp))
	}
	dir := o.data
	if dir == "" {
		tmp, err := os.MkdirTemp("", "batpak-bank-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	store, err := eventstore.Open(dir, storeOpts...)
	if err != nil {
		return err
	}
	defer store.Close()
	if o.metrics != nil {
		o.metrics.watchStore(store)
	}
	snapshots, err := aggregate.NewFileSnapshots(filepath.Join(dir, snapshotsDir))
	if err != nil {
		return err
	}
	db, err := openReadModels(filepath.Join(dir, readModelsDB))
	if err != nil {
		return err
	}
	defer db.Close()
	runOpts = append(runOpts, bank.WithSQL(db))

	// The read models run until Stop, and the scenario is short: an
	// interrupt waits for its end, and ends the steady workload.
	s, err := bank.Start(context.WithoutCancel(ctx), store, snapshots, time.Now, runOpts...)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, s.Stop()) }()
	steps := io.Discard
	if o.verbose {
		steps = out
	}
	r, err := s.Play(context.WithoutCancel(ctx), steps)
	if err != nil {
		return err
	}
	printReport(out, dir, o.data == "", r, store.LastSequence())
	if tr != nil {
		if err := tr.printTransfer(out, store); err != nil {
			return err
		}
	}
	if o.metrics != nil {
		o.metrics.announce(out)
		defer func() { err = errors.Join(err, o.metrics.shutdown()) }()
	}
	switch {
	case o.steady > 0:
		return steady(ctx, s, o.steady, o.onStep, out)
	case o.metrics != nil:
		<-ctx.Done()
	}
	return nil
}

// openReadModels opens the SQLite database of the SQL read model at path,
// creating it if it is missing. Each commit is durable (synchronous=FULL)
// before the projection goes on.
func openReadModels(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		return nil, fmt.Errorf("read models: %w", err)
	}
	return db, nil
}

// printReport writes the report, where the store and the read model are,
// and what a second run would do.
func printReport(out io.Writer, dir string, temporary bool, r *bank.Report, events uint64) {
	if !r.Ran {
		fmt.Fprintf(out, "%s already holds the bank's accounts: the scenario does not run again, nothing is appended,\nand what follows is read from the store.\n\n", dir)
	}
	bank.PrintReport(out, r)
	switch {
	case temporary:
		fmt.Fprintf(out, "\n%d events, in a temporary store that is removed on exit (-data DIR keeps the store in DIR)\n", events)
	case r.Ran:
		fmt.Fprintf(out, "\n%d events in %s (go run ./cmd/batpak inspect %s), the SQL read model in %s;\na second run does not play the scenario again\n",
			events, dir, dir, filepath.Join(dir, readModelsDB))
	default:
		fmt.Fprintf(out, "\n%d events in %s, as before: nothing was appended\n", events, dir)
	}
}
