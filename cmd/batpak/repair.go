package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/batpak-go/batpak/eventstore"
)

func (a *app) repairCmd() *cobra.Command {
	var yes, dryRun bool
	cmd := &cobra.Command{
		Use:   "repair DIR",
		Short: "Replace damaged data so the store opens and verifies again",
		Long: `repair makes a damaged store whole again. It reads every segment, checking
each frame the way verify does, and after each damaged stretch resumes at
the next intact frame: one flipped byte costs at most the event it hits.
Each damaged segment is written anew with every intact frame as it was and,
in place of the damaged bytes, a hole record that keeps the lost events'
sequences, stream versions and hash chains checkable; a damaged footer or
header is written anew, a missing segment file is written with the hole
record of its events. The damaged bytes go to DIR/quarantine/; nothing is
deleted. The checkpoint is removed (the next writable open writes one).

It prints every damaged place and every lost event: its sequence and, where
the damaged segment's footer, the checkpoint, the damaged frame or the
stream's hash chain tells, its stream and version. A lost event reads as
not found. Where resuming is impossible (intact frames that contradict each
other), repair cuts the log instead: it moves everything from the damage on
(the rest of that segment and every later segment) to quarantine, and says
so.

It first shows what it would do (a dry run) and asks for confirmation on
stdin. Without a terminal on stdin it refuses unless --yes is given.
--dry-run stops after showing the plan. Afterwards the store is verified.

The store must not be open in another process (repair takes its lock).

Exit codes: 0 the store is healthy (repaired, or nothing to do); 1 damage
was found and left in place (--dry-run, refused, declined) or remains, or
the repair failed; 2 usage error.`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(_ *cobra.Command, args []string) error {
			return a.repair(args[0], yes, dryRun)
		}),
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "repair without asking")
	cmd.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "only show what would be done")
	return cmd
}

func (a *app) repair(dir string, yes, dryRun bool) error {
	if err := checkStoreDir(dir); err != nil {
		return err
	}
	out := a.stdout
	plan, err := eventstore.Repair(dir, eventstore.DryRun())
	if err != nil {
		return repairError(dir, err)
	}
	if len(plan.Actions) == 0 {
		fmt.Fprintf(out, "nothing to repair: the store opens (%d events)\n", plan.EventsKept)
		return a.verifyAfterRepair(dir)
	}
	fmt.Fprintln(out, "damage found; repair would:")
	printRepairReport(out, dir, plan)
	if plan.Fallback != "" {
		fmt.Fprintln(out, "(repair then opens the store again; further damage, if any, is cut away the same way)")
	}
	if dryRun {
		return failf("dry run: nothing was changed")
	}
	if !yes {
		if !a.stdinTerminal {
			return failf("refusing to repair without confirmation: stdin is not a terminal (pass --yes)")
		}
		fmt.Fprintf(a.stderr, "Repair the store, moving the damaged data to quarantine? [y/N] ")
		ok, answered := confirmed(a.stdin)
		if !answered {
			fmt.Fprintln(a.stderr)
		}
		if !ok {
			return failf("repair declined: nothing was changed")
		}
	}
	rep, err := eventstore.Repair(dir)
	if rep != nil && len(rep.Actions) > 0 {
		fmt.Fprintln(out, "repaired:")
		printRepairReport(out, dir, rep)
	}
	if err != nil {
		return repairError(dir, err)
	}
	return a.verifyAfterRepair(dir)
}

// verifyAfterRepair checks the files: verify reads every frame.
func (a *app) verifyAfterRepair(dir string) error {
	rep, err := eventstore.Verify(dir)
	if err != nil {
		return err
	}
	damage := rep.Problems // warnings (a torn tail the next open cuts) are not damage
	if len(damage) == 0 {
		fmt.Fprintf(a.stdout, "verify: OK (%d events in %d segments)\n", rep.Events, rep.Segments)
		return nil
	}
	fmt.Fprintf(a.stdout, "verify still finds %d problem(s) that repair does not remove:\n", len(damage))
	printProblems(a.stdout, damage)
	return failf("%s still has %d problem(s) that repair does not remove", dir, len(damage))
}

// maxLostShown bounds the lost events repair lists one by one.
const maxLostShown = 50

// printRepairReport prints what a repair did (or would do): each damaged
// place, each lost event, and the totals.
func printRepairReport(out io.Writer, dir string, rep *eventstore.RepairReport) {
	for _, act := range rep.Actions {
		fmt.Fprintf(out, "  segment %d offset %d: %s\n", act.Segment, act.Offset, act.Reason)
		if act.QuarantineFile != "" {
			verb := "replaced"
			if !act.Precise {
				verb = "cut"
			}
			fmt.Fprintf(out, "    %s: %d bytes from offset %d -> %s\n", verb, act.QuarantinedBytes, act.Offset, filepath.Join(dir, act.QuarantineFile))
		}
		if len(act.Lost) > 0 {
			fmt.Fprintf(out, "    lost: %s\n", seqRanges(act.Lost))
		}
		if len(act.RemovedSegments) > 0 {
			fmt.Fprintf(out, "    later segments -> %s/: %s\n", filepath.Join(dir, eventstore.QuarantineDir), strings.Join(act.RemovedSegments, ", "))
		}
	}
	if rep.Fallback != "" {
		fmt.Fprintf(out, "resuming after the damage was impossible, so the log is cut there: %s\n", rep.Fallback)
	}
	if n := len(rep.Lost); n > 0 {
		fmt.Fprintf(out, "lost %d event(s):\n", n)
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  SEQUENCE\tSTREAM\tVERSION\tID\tKNOWN FROM")
		for _, l := range rep.Lost[:min(n, maxLostShown)] {
			stream, version, id, source := "?", "?", "?", "nothing (stream unknown)"
			if l.Entity != "" {
				stream, version, source = l.Scope+"/"+l.Entity, fmt.Sprint(l.Version), l.Source
			}
			if l.ID != uuid.Nil {
				id = l.ID.String()
			}
			if l.Removed {
				source += "; removed by compaction before"
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\n", l.Sequence, stream, version, id, source)
		}
		_ = tw.Flush()
		if n > maxLostShown {
			fmt.Fprintf(out, "  ... and %d more\n", n-maxLostShown)
		}
		var streams []string
		for e, k := range rep.LostStreams {
			streams = append(streams, fmt.Sprintf("%s (%d)", e, k))
		}
		slices.Sort(streams)
		if rep.UnknownStreams > 0 {
			streams = append(streams, fmt.Sprintf("%d of unknown stream", rep.UnknownStreams))
		}
		fmt.Fprintf(out, "streams that lost events: %s\n", strings.Join(streams, ", "))
	}
	if len(rep.LostDeletions) > 0 {
		fmt.Fprintf(out, "deletions lost with their tombstones (these streams are visible again): %s\n", joinStrings(rep.LostDeletions))
	}
	fmt.Fprintf(out, "events kept: %d of %d sequences\n", rep.EventsKept, rep.LastSequence)
}

// seqRanges formats ascending sequences as ranges: "5, 9-12".
func seqRanges(seqs []uint64) string {
	var parts []string
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, fmt.Sprint(seqs[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", seqs[i], seqs[j]))
		}
		i = j + 1
	}
	return "sequence " + strings.Join(parts, ", ")
}

func repairError(dir string, err error) error {
	if errors.Is(err, eventstore.ErrLocked) {
		return fmt.Errorf("%w: close the process that has %s open, then repair", err, dir)
	}
	return err
}

// confirmed reads one line and accepts y or yes; answered is false when
// stdin ended before a newline (the terminal's cursor is still on the
// prompt's line).
func confirmed(in io.Reader) (ok, answered bool) {
	line, err := bufio.NewReader(in).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, err == nil
	}
	return false, err == nil
}

// joinStrings lists values, each as its String method has it.
func joinStrings[T fmt.Stringer](values []T) string {
	parts := make([]string, len(values))
	for i, v := range values {
		parts[i] = v.String()
	}
	return strings.Join(parts, ", ")
}
