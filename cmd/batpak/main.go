// Command batpak inspects, verifies, reads and repairs batpak store
// directories.
//
//	batpak inspect DIR        segments, streams, cold start, checkpoint
//	batpak verify DIR         CRCs, sequences, hash chains and footers
//	batpak tail DIR           the last 10 matching events, one per line (-n N, --all, --follow)
//	batpak trace DIR EVENT    the causal tree of an event
//	batpak stats DIR          events, streams, segments, bytes, cold start
//	batpak repair DIR         quarantine damage so the store opens again
//	batpak dump DIR           every event as one JSON object per line
//	batpak replay DIR         a projection's catch-up over the history, with progress
//	batpak serve DIR          a read-only web explorer of the store
//	batpak projections DIR    the projections of a checkpoint directory: lag, parked events
//
// DIR is the store's own directory (for projections, the checkpoints'). Given a directory that holds exactly
// one store one level down instead, a command names it in its error.
//
// Exit codes: 0 success, 1 damage found or the operation failed, 2 usage
// error (unknown command or flag, wrong arguments).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // damage found, or the operation failed
	exitUsage   = 2 // bad command line
)

// exitError carries an exit code. A nil err means the command already
// reported what went wrong and only the code remains.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// failf reports a failed operation (exit 1).
func failf(format string, args ...any) error {
	return &exitError{code: exitFailure, err: fmt.Errorf(format, args...)}
}

// usagef reports a bad command line found after flag parsing (exit 2).
func usagef(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// app holds the process's streams so tests can run commands in-process.
type app struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// stdinTerminal and stderrTerminal say whether a person is there: a
	// confirmation prompt needs one on stdin, a progress bar on stderr.
	stdinTerminal  bool
	stderrTerminal bool
}

func main() {
	a := &app{
		stdin:          os.Stdin,
		stdout:         os.Stdout,
		stderr:         os.Stderr,
		stdinTerminal:  term.IsTerminal(int(os.Stdin.Fd())),
		stderrTerminal: term.IsTerminal(int(os.Stderr.Fd())),
	}
	os.Exit(a.run(context.Background(), os.Args[1:]))
}

// run executes the command line args and returns the exit code. Errors
// are printed to stderr here, once.
func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCmd()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	if cmd == nil {
		cmd = root
	}
	code := exitUsage // errors cobra returns itself: unknown command or flag, argument count
	var ee *exitError
	if errors.As(err, &ee) {
		code, err = ee.code, ee.err
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "%s: %v\n", cmd.CommandPath(), err)
	}
	if code == exitUsage {
		fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "batpak",
		Short: "Inspect, verify, read, repair and erase from batpak event stores",
		Long: `batpak works on the directory of a batpak event store.

Every command but repair and forget opens the store read-only (or reads the files
without opening it) and can run while a writer has the store open; a
read-only view sees the events that were durable when it was opened.

Exit codes: 0 success, 1 damage found or the operation failed, 2 usage error.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		CompletionOptions: cobra.CompletionOptions{
			HiddenDefaultCmd: true,
		},
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(a.stderr)
			_ = cmd.Help()
			return usagef("missing command")
		},
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err}
	})
	root.AddCommand(
		a.inspectCmd(),
		a.verifyCmd(),
		a.tailCmd(),
		a.traceCmd(),
		a.statsCmd(),
		a.repairCmd(),
		a.forgetCmd(),
		a.dumpCmd(),
		a.replayCmd(),
		a.serveCmd(),
		a.projectionsCmd(),
	)
	return root
}

// runE adapts a command body: any error that carries no exit code is a
// failed operation (exit 1).
func runE(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := fn(cmd, args)
		var ee *exitError
		if err == nil || errors.As(err, &ee) {
			return err
		}
		return &exitError{code: exitFailure, err: err}
	}
}
