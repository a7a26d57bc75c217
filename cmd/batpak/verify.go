package main

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/batpak-go/batpak/eventstore"
)

func (a *app) verifyCmd() *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "verify DIR",
		Short: "Check every frame, sequence, hash chain, footer and the checkpoint",
		Long: `verify reads every segment file once, without opening the store and without
taking its lock, and checks each frame's CRC and encoding, that global
sequences are dense, every stream's versions and hash chain (each hash is
recomputed), every footer against the frames it indexes, and the checkpoint.

It prints a summary and every problem with its segment, file, offset, kind
(frame, sequence, chain, footer, file) and detail, and exits 1 if there is
any. Warnings are printed too but are not damage: a torn tail in the active
segment is a write that was never acknowledged (a crash mid-write) and the
next writable open cuts it; a sealed segment without a footer is scanned.

A progress bar is drawn on stderr when it is a terminal, unless --quiet.

Exit codes: 0 no problem (warnings are not damage); 1 a problem was found,
or the operation failed; 2 usage error.`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(_ *cobra.Command, args []string) error {
			return a.verify(args[0], quiet)
		}),
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return cmd
}

func (a *app) verify(dir string, quiet bool) error {
	if err := checkStoreDir(dir); err != nil {
		return err
	}
	var opts []eventstore.VerifyOption
	var bar *progressbar.ProgressBar
	if !quiet && a.stderrTerminal {
		opts = append(opts, eventstore.WithProgress(func(done, total int64) {
			if bar == nil {
				bar = progressbar.NewOptions64(total,
					progressbar.OptionSetWriter(a.stderr),
					progressbar.OptionSetDescription("verifying"),
					progressbar.OptionShowBytes(true),
					progressbar.OptionShowTotalBytes(true),
					progressbar.OptionSetPredictTime(true),
					progressbar.OptionThrottle(100*time.Millisecond),
					progressbar.OptionClearOnFinish(),
				)
			}
			_ = bar.Set64(done)
		}))
	}
	start := time.Now()
	rep, err := eventstore.Verify(dir, opts...)
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		return err
	}
	printVerifyReport(a.stdout, dir, rep, time.Since(start))
	if !rep.OK() {
		return failf("%d problem(s) found in %s", len(rep.Problems), dir)
	}
	return nil
}

func printVerifyReport(out io.Writer, dir string, rep *eventstore.VerifyReport, took time.Duration) {
	fmt.Fprintf(out, "verified %s in %s: %d segments (%s), %d events in %d streams, %d valid footers, checkpoint %s\n",
		dir, took.Round(time.Millisecond), rep.Segments, humanBytes(rep.Bytes), rep.Events, rep.Streams, rep.Footers, rep.Checkpoint)
	fmt.Fprintf(out, "catalog: %d type name(s); keys: %d subject(s), %d forgotten\n", rep.TypeNames, rep.Keys, rep.Forgotten)
	if len(rep.Warnings) > 0 {
		fmt.Fprintf(out, "%d warning(s), not damage:\n", len(rep.Warnings))
		printProblems(out, rep.Warnings)
	}
	if rep.OK() {
		fmt.Fprintln(out, "OK: no problems")
		return
	}
	fmt.Fprintf(out, "%d problem(s):\n", len(rep.Problems))
	printProblems(out, rep.Problems)
}

func printProblems(out io.Writer, problems []eventstore.Problem) {
	for _, p := range problems {
		fmt.Fprintf(out, "  segment %d  file %s  offset %d  %s: %s\n", p.Segment, p.Path, p.Offset, p.Kind, p.Detail)
	}
}
