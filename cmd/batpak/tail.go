package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/segment"
)

type tailOptions struct {
	entity   string
	prefix   string
	scope    string
	kinds    []string
	from     uint64
	lines    int
	all      bool
	follow   bool
	interval time.Duration
}

func (a *app) tailCmd() *cobra.Command {
	var o tailOptions
	cmd := &cobra.Command{
		Use:   "tail DIR",
		Short: "Print the last matching events, one per line; --follow waits for new ones",
		Long: `tail prints the last 10 events of the region given by the flags, one per
line, tab-separated: global sequence, timestamp (RFC 3339, UTC), entity,
version, type name (from the store's catalog; the kind, 1:002, for a kind
without one) and the payload as JSON (decoded from msgpack; "(erased)" for
an event whose data subject was forgotten).

As with Unix tail, -n N prints the last N instead (-n 0: none, to follow
only new ones); --all prints every matching event, and so does --from
without -n: --from 1000 prints every event from sequence 1000 on.

With --follow it keeps waiting for new events until interrupted (Ctrl-C).
A read-only view sees only the events that were durable when it was opened,
so --follow reopens the store read-only every --interval when its segment
files have changed and continues after the last sequence it examined; it
works alongside a writer in another process.

Exit codes: 0 the events were printed (with --follow: until interrupted);
1 the store does not open, an event does not read (damage), or the
operation failed; 2 usage error.`,
		Example: `  batpak tail ./data -f
  batpak tail ./data --prefix account: --kind 1:002 -n 20
  batpak tail ./data --entity account:42 --all
  batpak tail ./data --entity account:42 --from 1000 --follow`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			region, err := o.region(args[0])
			if err != nil {
				return err
			}
			switch f := cmd.Flags(); {
			case o.all && f.Changed("lines"):
				return usagef("--all and --lines (-n) cannot be used together")
			case o.all, f.Changed("from") && !f.Changed("lines"):
				o.lines = -1 // every stored event of the region
			}
			if o.follow {
				ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				return a.tail(ctx, args[0], region, o)
			}
			return a.tail(cmd.Context(), args[0], region, o)
		}),
	}
	f := cmd.Flags()
	o.regionFlags(f)
	f.IntVarP(&o.lines, "lines", "n", 10, "print the last N matching events already stored (0: none)")
	f.BoolVar(&o.all, "all", false, "print every matching event already stored")
	f.BoolVarP(&o.follow, "follow", "f", false, "keep waiting for new events until interrupted")
	f.DurationVar(&o.interval, "interval", time.Second, "with --follow, how often to look for new events")
	return cmd
}

// regionFlags adds the flags that choose a region (tail and replay).
func (o *tailOptions) regionFlags(f *pflag.FlagSet) {
	f.StringVar(&o.entity, "entity", "", "only this stream")
	f.StringVar(&o.prefix, "prefix", "", "only streams whose entity starts with this")
	f.StringVar(&o.scope, "scope", "", "only this scope")
	f.StringArrayVar(&o.kinds, "kind", nil, "only this kind: category:type in hex (1:002), a number, or a type name from the store's catalog (bank.Deposited); repeatable, or comma-separated")
	f.Uint64Var(&o.from, "from", 0, "start at this global sequence")
}

// region returns the region the flags choose in the store in dir, whose
// catalog gives the kinds named by type name.
func (o *tailOptions) region(dir string) (batpak.Region, error) {
	r := batpak.Region{Entity: o.entity, EntityPrefix: o.prefix, Scope: o.scope, FromSequence: o.from}
	for _, arg := range o.kinds {
		for s := range strings.SplitSeq(arg, ",") {
			k, err := parseKindOrName(dir, strings.TrimSpace(s))
			if err != nil {
				return r, usagef("--kind: %v", err)
			}
			r.Kinds = append(r.Kinds, k)
		}
	}
	if o.lines < 0 {
		return r, usagef("--lines must be 0 or more")
	}
	if o.follow && o.interval <= 0 {
		return r, usagef("--interval must be positive")
	}
	return r, nil
}

// tail prints the region's events; with follow it polls until ctx ends.
func (a *app) tail(ctx context.Context, dir string, region batpak.Region, o tailOptions) error {
	out := bufio.NewWriter(a.stdout)
	defer func() { _ = out.Flush() }()
	next := max(region.FromSequence, 1)
	lines := o.lines
	var last dirState
	var lastErr string
	for {
		state := readDirState(dir)
		if !state.unchangedSince(last) {
			s, err := openReadOnly(dir)
			if err != nil && !o.follow {
				return err
			}
			if err != nil {
				// A follower outlives passing trouble (a repair, a file
				// being created); say so once per distinct error.
				if msg := err.Error(); msg != lastErr {
					fmt.Fprintf(a.stderr, "batpak tail: %v (retrying every %s)\n", err, o.interval)
					lastErr = msg
				}
			} else {
				lastErr = ""
				region.FromSequence = next
				next, err = printEvents(ctx, out, s, region, lines)
				lines = -1 // after the first view, every new event
				_ = s.Close()
				if err != nil && o.follow && ctx.Err() != nil {
					return out.Flush() // interrupted while printing: the end of a follow
				}
				if err != nil {
					return damageAdvice(dir, err)
				}
				last = state
			}
			if err := out.Flush(); err != nil {
				return err
			}
		}
		if !o.follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.interval):
		}
	}
}

// printEvents prints the events of region, the last n only if n >= 0, and
// returns the sequence to continue from.
func printEvents(ctx context.Context, out *bufio.Writer, s *eventstore.Store, region batpak.Region, n int) (uint64, error) {
	next := max(s.LastSequence()+1, region.FromSequence)
	if n == 0 {
		return next, nil
	}
	region.ToSequence = next - 1
	var ring []string
	for rec, err := range s.Query(ctx, region) {
		if err != nil {
			return next, fmt.Errorf("read event: %w", err)
		}
		line := eventLine(&rec)
		if n > 0 {
			if len(ring) == n {
				ring = ring[1:]
			}
			ring = append(ring, line)
			continue
		}
		if _, err := fmt.Fprintln(out, line); err != nil {
			return next, err
		}
	}
	for _, line := range ring {
		if _, err := fmt.Fprintln(out, line); err != nil {
			return next, err
		}
	}
	return next, nil
}

// dirState is what the segment files looked like at one moment: a
// follower reopens the store only when it changed.
type dirState struct {
	at    time.Time
	files string // name, size and modification time of every segment file
	newer time.Time
}

func readDirState(dir string) dirState {
	st := dirState{at: time.Now()}
	des, err := os.ReadDir(dir)
	if err != nil {
		return st
	}
	var b strings.Builder
	for _, de := range des {
		if _, ok := segment.ParseFileName(de.Name()); !ok {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "%s %d %d\n", de.Name(), fi.Size(), fi.ModTime().UnixNano())
		if fi.ModTime().After(st.newer) {
			st.newer = fi.ModTime()
		}
	}
	st.files = b.String()
	return st
}

// unchangedSince reports whether nothing can have been written since prev
// was read. File times are coarse (a clock tick), so a write in the same
// tick as prev's reading would keep the same time: prev only counts when
// it was read well after its newest file time.
func (st dirState) unchangedSince(prev dirState) bool {
	return prev.files != "" && st.files == prev.files && prev.at.Sub(prev.newer) > time.Second
}
