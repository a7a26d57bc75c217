package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/batpak-go/batpak/eventstore"
)

func (a *app) repairCmd() *cobra.Command {
	var yes, dryRun bool
	cmd := &cobra.Command{
		Use:   "repair DIR",
		Short: "Move damaged data to quarantine so the store opens again",
		Long: `repair makes a damaged store openable again. It finds the first damage the
way opening the store does and moves everything from the damaged frame on
(the rest of that segment and every later segment) into DIR/quarantine/,
removes the checkpoint, and repeats until the store opens. Every event
before the damage is kept; nothing is deleted.

It first shows what would be moved (a dry run) and asks for confirmation
on stdin. Without a terminal on stdin it refuses unless --yes is given.
--dry-run stops after showing the plan. Afterwards the store is verified.

The store must not be open in another process (repair takes its lock).

Exit codes: 0 the store is healthy (repaired or nothing to do); 1 damage
was found and left in place (--dry-run, refused, declined) or remains, or
the repair failed.`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(_ *cobra.Command, args []string) error {
			return a.repair(args[0], yes, dryRun)
		}),
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "repair without asking")
	cmd.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "only show what would be moved to quarantine")
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
	fmt.Fprintf(out, "damage found; repair would move to %s:\n", filepath.Join(dir, eventstore.QuarantineDir))
	printRepairActions(out, dir, plan.Actions)
	fmt.Fprintln(out, "(repair then opens the store again; further damage, if any, is moved aside the same way)")
	if dryRun {
		return failf("dry run: nothing was changed")
	}
	if !yes {
		if !a.stdinTerminal {
			return failf("refusing to repair without confirmation: stdin is not a terminal (pass --yes)")
		}
		fmt.Fprintf(a.stderr, "Move the damaged data to quarantine? [y/N] ")
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
		printRepairActions(out, dir, rep.Actions)
	}
	if err != nil {
		return repairError(dir, err)
	}
	fmt.Fprintf(out, "events kept: %d\n", rep.EventsKept)
	return a.verifyAfterRepair(dir)
}

// verifyAfterRepair checks the files: Repair only sees damage that stops
// the store from opening, Verify reads every frame.
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

func printRepairActions(out io.Writer, dir string, actions []eventstore.RepairAction) {
	for _, act := range actions {
		fmt.Fprintf(out, "  segment %d offset %d: %s\n", act.Segment, act.Offset, act.Reason)
		if act.QuarantineFile != "" {
			fmt.Fprintf(out, "    %d bytes from offset %d -> %s\n", act.QuarantinedBytes, act.Offset, filepath.Join(dir, act.QuarantineFile))
		}
		if len(act.RemovedSegments) > 0 {
			fmt.Fprintf(out, "    later segments -> %s/: %s\n", filepath.Join(dir, eventstore.QuarantineDir), strings.Join(act.RemovedSegments, ", "))
		}
	}
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
