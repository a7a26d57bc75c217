package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
)

func (a *app) forgetCmd() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "forget DIR SCOPE SUBJECT",
		Short: "Destroy a data subject's key: its events read as erased from then on",
		Long: `forget erases a data subject (a person) of the store: it destroys the key
that sealed the payloads of the subject's events in SCOPE, so that every
read of them returns them erased, for good. The events stay, with their
hashes: sequences, stream versions and hash chains are unchanged, and
verify still passes. Appends for the subject are refused afterwards.

It first counts the subject's events and asks for confirmation on stdin;
without a terminal on stdin it refuses unless --yes is given. It cannot be
undone. What it does not reach (copies of the data outside the store,
backups taken before, the subject's name in stream names or metadata) is
described in docs/erasure.md.

The store must not be open in another process (forget takes its lock).

Exit codes: 0 the subject is forgotten; 1 refused, declined or failed; 2
usage error.`,
		Example: `  batpak forget ./data bank customer:42
  batpak forget ./data bank customer:42 --yes`,
		Args: cobra.ExactArgs(3),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			subject := batpak.Subject{Scope: args[1], ID: args[2]}
			if err := subject.Validate(); err != nil {
				return usagef("%v", err)
			}
			return a.forget(cmd.Context(), args[0], subject, yes)
		}),
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "forget without asking")
	return cmd
}

func (a *app) forget(ctx context.Context, dir string, subject batpak.Subject, yes bool) error {
	if err := checkStoreDir(dir); err != nil {
		return err
	}
	s, err := eventstore.Open(dir)
	if errors.Is(err, eventstore.ErrLocked) {
		return fmt.Errorf("%w: close the process that has %s open, then forget (or call Forget in it)", err, dir)
	}
	if err != nil {
		return damageAdvice(dir, err)
	}
	defer func() { _ = s.Close() }()
	events, streams, erased, err := subjectEvents(ctx, s, subject)
	if err != nil {
		return damageAdvice(dir, err)
	}
	fmt.Fprintf(a.stdout, "subject %s: %d event(s) in %d stream(s)", subject, events, streams)
	if erased > 0 {
		fmt.Fprintf(a.stdout, ", %d already erased", erased)
	}
	fmt.Fprintln(a.stdout)
	if !yes {
		if !a.stdinTerminal {
			return failf("refusing to forget without confirmation: stdin is not a terminal (pass --yes)")
		}
		fmt.Fprintf(a.stderr, "Destroy the key of %s? Its events can never be read again. [y/N] ", subject)
		ok, answered := confirmed(a.stdin)
		if !answered {
			fmt.Fprintln(a.stderr)
		}
		if !ok {
			return failf("forget declined: nothing was changed")
		}
	}
	if err := s.Forget(ctx, subject); err != nil {
		return err
	}
	if err := s.Close(); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "forgot %s: its events read as erased\n", subject)
	return nil
}

// subjectEvents counts the events sealed for subject, the streams they are
// in and how many of them are erased already.
func subjectEvents(ctx context.Context, s *eventstore.Store, subject batpak.Subject) (events, streams, erased int, err error) {
	seen := make(map[batpak.Coordinate]bool)
	for rec, err := range s.Query(ctx, batpak.Region{Scope: subject.Scope}) {
		if err != nil {
			return 0, 0, 0, err
		}
		if rec.Metadata[batpak.MetaSubject] != subject.ID {
			continue
		}
		events++
		if rec.Erased {
			erased++
		}
		if !seen[rec.Coordinate] {
			seen[rec.Coordinate] = true
			streams++
		}
	}
	return events, streams, erased, nil
}
