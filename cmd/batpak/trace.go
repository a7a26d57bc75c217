package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/causal"
)

func (a *app) traceCmd() *cobra.Command {
	var format string
	var svg bool
	cmd := &cobra.Command{
		Use:   "trace DIR EVENT",
		Short: "Print the causal tree of an event's correlation group",
		Long: `trace opens the store read-only and prints the causal tree of the
correlation group of EVENT: every event of the group under the event that
caused it, the traced event marked.

EVENT is an event id (a UUID, as dump prints it) or a global sequence
number (as tail prints it, optionally with a leading #).

--format text draws a tree, dot writes graphviz DOT, json writes the graph
as JSON, and svg (or --svg) draws the graph as an SVG image laid out by
batpak itself: open it in a browser, no graphviz needed.

Exit codes: 0 the graph was printed; 1 the store does not open, no event
has that id or sequence, an event of the group does not read (damage), or
the operation failed; 2 usage error.`,
		Example: `  batpak trace ./data 0195a7c4-8d2e-7b41-9c3a-2f6e1d0b5a77
  batpak trace ./data 42 --svg > trace.svg`,
		Args: cobra.ExactArgs(2),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if svg {
				if cmd.Flags().Changed("format") && format != "svg" {
					return usagef("--svg and --format %s contradict each other", format)
				}
				format = "svg"
			}
			switch format {
			case "text", "dot", "json", "svg":
			default:
				return usagef("--format must be text, dot, json or svg, not %q", format)
			}
			return a.trace(cmd.Context(), args[0], args[1], format)
		}),
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text, dot, json or svg")
	cmd.Flags().BoolVar(&svg, "svg", false, "draw the graph as an SVG image (same as --format svg)")
	return cmd
}

func (a *app) trace(ctx context.Context, dir, event, format string) error {
	id, seq, err := parseEventRef(event)
	if err != nil {
		return usagef("%v", err)
	}
	s, err := openReadOnly(dir)
	if err != nil {
		return err
	}
	defer func() { _ = s.Close() }()
	if seq != 0 {
		rec, err := s.GetSequence(ctx, seq)
		if err != nil {
			return notFoundError(err, fmt.Sprintf("no event with sequence %d (the store has %d events)", seq, s.LastSequence()))
		}
		id = rec.ID
	}
	g, err := causal.Trace(ctx, s, id)
	if err != nil {
		return notFoundError(err, fmt.Sprintf("no event with id %s", id))
	}
	switch format {
	case "dot":
		return g.WriteDOT(a.stdout)
	case "json":
		return g.WriteJSON(a.stdout)
	case "svg":
		return g.WriteSVG(a.stdout, causal.SVGOptions{})
	}
	return g.WriteText(a.stdout)
}

// parseEventRef reads an event id or a global sequence number.
func parseEventRef(s string) (uuid.UUID, uint64, error) {
	if n, err := strconv.ParseUint(strings.TrimPrefix(s, "#"), 10, 64); err == nil {
		if n == 0 {
			return uuid.Nil, 0, errors.New("sequences start at 1")
		}
		return uuid.Nil, n, nil
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, 0, fmt.Errorf("EVENT %q is neither an event id (UUID) nor a sequence number", s)
	}
	return id, 0, nil
}

func notFoundError(err error, msg string) error {
	if errors.Is(err, batpak.ErrNotFound) {
		return errors.New(msg)
	}
	return err
}
