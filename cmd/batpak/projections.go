package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/batpak-go/batpak/projection"
)

func (a *app) projectionsCmd() *cobra.Command {
	var storeDir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "projections DIR",
		Short: "List the projections of a checkpoint directory, with their lag and parked events",
		Long: `projections reads a projection checkpoint directory (projection.FileCheckpoints)
and lists each projection found there: its position (the next global
sequence it will apply), how far behind the store it is, and how many of
its events are parked (their Apply failed on every attempt; see
projection.DeadLetter). Each parked event is then listed with its
sequence, event id, attempts, when it last failed, whether the projection
stopped at it or went on past it, a retry or skip asked for and not yet
done, and the error.

--store STORE opens the event store read-only to show the lag: the events
after the position, of any region, and the age of the event before the
position. Without it the lag is "-".

  batpak projections retry DIR NAME SEQ   asks for parked event SEQ to be applied again
  batpak projections skip DIR NAME SEQ    asks for it to be dropped

--json prints a JSON array, one object per projection.

Exit codes: 0 success; 1 DIR holds no projection, a file is damaged, or
the operation failed; 2 usage error.`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.listProjections(cmd.Context(), args[0], storeDir, asJSON)
		}),
	}
	cmd.Flags().StringVar(&storeDir, "store", "", "event store `DIR`, to show each projection's lag")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(a.resolveCmd(projection.ResolveRetry), a.resolveCmd(projection.ResolveSkip))
	return cmd
}

func (a *app) resolveCmd(how projection.Resolution) *cobra.Command {
	long := map[projection.Resolution]string{
		projection.ResolveRetry: `retry asks for the parked event SEQ of the projection NAME to be applied
again. A runner does it when it next starts the projection, or, if it runs
it under Runner.RunAll, within its poll interval (projection.WithResolvePoll):
a projection that stopped at the event starts again from it; one that went
on past it applies it out of order. If Apply fails again, the event stays
parked with its attempts added up.`,
		projection.ResolveSkip: `skip asks for the parked event SEQ of the projection NAME to be dropped:
the projection never applies it, and goes on past it if it stopped there.
A runner does it as it does a retry (see batpak projections retry --help).`,
	}[how]
	return &cobra.Command{
		Use:   string(how) + " DIR NAME SEQ",
		Short: map[projection.Resolution]string{projection.ResolveRetry: "Ask for a parked event to be applied again", projection.ResolveSkip: "Ask for a parked event to be dropped"}[how],
		Long:  long + "\n\nExit codes: 0 asked; 1 no such parked event, or the operation failed; 2 usage error.",
		Args:  cobra.ExactArgs(3),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			dir, name := args[0], args[1]
			seq, err := strconv.ParseUint(args[2], 10, 64)
			if err != nil || seq == 0 {
				return usagef("invalid sequence %q: want a global sequence, 1 or more", args[2])
			}
			if err := checkDir(dir); err != nil {
				return err
			}
			dls, err := projection.NewFileDeadLetters(dir, nil)
			if err != nil {
				return err
			}
			if err := dls.Resolve(cmd.Context(), name, seq, how); err != nil {
				if errors.Is(err, projection.ErrNotParked) {
					return failf("%s has no parked event #%d in %s", name, seq, dir)
				}
				return err
			}
			fmt.Fprintf(a.stdout, "asked to %s #%d of %s: a runner does it when it next starts %s\n", how, seq, name, name)
			return nil
		}),
	}
}

// checkDir refuses a path that is not a directory, without creating it.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s does not exist", dir)
		}
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}

// projectionInfo is one projection as projections shows it.
type projectionInfo struct {
	Projection string                  `json:"projection"`
	Position   uint64                  `json:"position"`
	LagEvents  *uint64                 `json:"lag_events"`  // null without --store
	LagSeconds *float64                `json:"lag_seconds"` // null without --store
	Parked     []projection.DeadLetter `json:"parked"`
	Error      string                  `json:"error,omitempty"` // a damaged file
}

func (a *app) listProjections(ctx context.Context, dir, storeDir string, asJSON bool) error {
	if err := checkDir(dir); err != nil {
		return err
	}
	cps, err := projection.NewFileCheckpoints(dir)
	if err != nil {
		return err
	}
	dls, err := projection.NewFileDeadLetters(dir, nil)
	if err != nil {
		return err
	}
	withCheckpoint, err := cps.Names()
	if err != nil {
		return err
	}
	withParked, err := dls.Names()
	if err != nil {
		return err
	}
	names := slices.Compact(slices.Sorted(slices.Values(append(withCheckpoint, withParked...))))
	if len(names) == 0 {
		return failf("%s holds no projection: no .checkpoint or .parked file", dir)
	}
	var last uint64
	var age func(pos uint64) (float64, bool)
	if storeDir != "" {
		s, err := openReadOnly(storeDir)
		if err != nil {
			return err
		}
		defer func() { _ = s.Close() }()
		last = s.LastSequence()
		now := time.Now()
		age = func(pos uint64) (float64, bool) {
			rec, err := s.GetSequence(ctx, pos-1)
			if err != nil {
				return 0, false
			}
			return max(now.Sub(rec.Timestamp), 0).Seconds(), true
		}
	}
	infos := make([]projectionInfo, 0, len(names))
	damaged := 0
	for _, name := range names {
		info := projectionInfo{Projection: name, Parked: []projection.DeadLetter{}}
		var errs []string
		next, err := cps.Load(ctx, name)
		if err != nil {
			errs = append(errs, err.Error())
		}
		info.Position = max(next, 1)
		if parked, err := dls.Parked(ctx, name); err != nil {
			errs = append(errs, err.Error())
		} else if parked != nil {
			info.Parked = parked
		}
		if len(errs) > 0 {
			info.Error = strings.Join(errs, "; ")
			damaged++
		}
		if age != nil && info.Error == "" {
			lag := uint64(0)
			if info.Position <= last {
				lag = last - (info.Position - 1)
			}
			secs := 0.0
			if lag > 0 && info.Position > 1 {
				if s, ok := age(info.Position); ok {
					secs = s
				}
			}
			info.LagEvents, info.LagSeconds = &lag, &secs
		}
		infos = append(infos, info)
	}
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(infos)
	} else {
		err = writeProjections(a.stdout, infos)
	}
	if err != nil {
		return err
	}
	if damaged > 0 {
		return failf("%d projection(s) have a damaged checkpoint or dead-letter file", damaged)
	}
	return nil
}

func writeProjections(out io.Writer, infos []projectionInfo) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECTION\tPOSITION\tLAG\tAGE\tPARKED")
	var parked []projection.DeadLetter
	for _, in := range infos {
		if in.Error != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\tdamaged: %s\n", in.Projection, in.Error)
			continue
		}
		lag, age := "-", "-"
		if in.LagEvents != nil {
			lag = strconv.FormatUint(*in.LagEvents, 10)
			age = (time.Duration(*in.LagSeconds * float64(time.Second))).Round(time.Second).String()
		}
		p := strconv.Itoa(len(in.Parked))
		for _, d := range in.Parked {
			if d.Stopped {
				p += fmt.Sprintf(" (stopped at #%d)", d.Sequence)
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", in.Projection, in.Position, lag, age, p)
		parked = append(parked, in.Parked...)
	}
	if len(parked) > 0 {
		fmt.Fprintln(tw, "\nparked events:")
		fmt.Fprintln(tw, "PROJECTION\tSEQUENCE\tEVENT\tATTEMPTS\tLAST FAILED\tSTATE\tERROR")
		for _, d := range parked {
			state := "passed"
			if d.Stopped {
				state = "stopped"
			}
			if d.Resolution != "" {
				state += ", " + string(d.Resolution) + " asked"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%s\n", d.Projection, d.Sequence, d.EventID, d.Attempts,
				formatTime(d.LastFailed), state, strings.ReplaceAll(d.Error, "\n", " "))
		}
	}
	return tw.Flush()
}
