package main

import (
	"context"
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/projection"
)

func (a *app) replayCmd() *cobra.Command {
	var o tailOptions
	var quiet bool
	cmd := &cobra.Command{
		Use:   "replay DIR",
		Short: "Catch a projection up on the region's history, with progress",
		Long: `replay runs a projection over the events of the region given by the flags,
the way a read model catches up: with the sequential segment scanner, not
event-by-event index lookups. The projection counts events per kind and per
scope; replay prints the counts and the rate.

The progress of the catch-up (events done of the total, rate) is drawn as a
bar on stderr when it is a terminal, unless --quiet.

Exit codes: 0 the projection caught up; 1 the store does not open, an event
does not read (damage), or the operation failed; 2 usage error.`,
		Example: `  batpak replay ./data
  batpak replay ./data --prefix account: --kind 1:002`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			region, err := o.region(args[0])
			if err != nil {
				return err
			}
			return a.replay(cmd.Context(), args[0], region, quiet)
		}),
	}
	f := cmd.Flags()
	o.regionFlags(f)
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return cmd
}

// counter is the projection replay runs: events per kind and per scope.
type counter struct {
	region  batpak.Region
	total   uint64
	byKind  map[kind.Kind]uint64
	names   map[kind.Kind]string
	byScope map[string]uint64
}

func (c *counter) Name() string          { return "batpak-replay" }
func (c *counter) Region() batpak.Region { return c.region }
func (c *counter) Apply(_ context.Context, rec batpak.Record) error {
	c.total++
	c.byKind[rec.Kind]++
	if rec.Type != "" {
		c.names[rec.Kind] = rec.Type
	}
	c.byScope[rec.Coordinate.Scope]++
	return nil
}

func (a *app) replay(ctx context.Context, dir string, region batpak.Region, quiet bool) error {
	s, err := openReadOnly(dir)
	if err != nil {
		return err
	}
	defer func() { _ = s.Close() }()
	c := &counter{region: region, byKind: make(map[kind.Kind]uint64), names: make(map[kind.Kind]string), byScope: make(map[string]uint64)}
	var bar *progressbar.ProgressBar
	var last projection.Progress
	opts := []projection.Option{projection.WithProgress(func(p projection.Progress) {
		last = p
		if quiet || !a.stderrTerminal {
			return
		}
		if bar == nil {
			bar = progressbar.NewOptions64(int64(p.Total),
				progressbar.OptionSetWriter(a.stderr),
				progressbar.OptionSetDescription("replaying"),
				progressbar.OptionShowCount(),
				progressbar.OptionShowIts(),
				progressbar.OptionSetItsString("events"),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionClearOnFinish(),
			)
		}
		_ = bar.Set64(int64(p.Done))
	})}
	// The checkpoint lives in memory: replay is a one-off catch-up.
	r := projection.NewRunner(s, projection.NewMemoryCheckpoints(), opts...)
	if _, err := r.CatchUp(ctx, c); err != nil {
		return damageAdvice(dir, err)
	}
	if bar != nil {
		_ = bar.Finish()
	}
	fmt.Fprintf(a.stdout, "replayed %d of %d events in %s (%.0f events/s)\n",
		c.total, last.Total, last.Elapsed.Round(time.Millisecond), last.Rate)
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	kinds := make([]kind.Kind, 0, len(c.byKind))
	for k := range c.byKind {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		fmt.Fprintf(tw, "  kind %s\t%s\t%d\n", k, c.names[k], c.byKind[k])
	}
	scopes := make([]string, 0, len(c.byScope))
	for sc := range c.byScope {
		scopes = append(scopes, sc)
	}
	slices.Sort(scopes)
	for _, sc := range scopes {
		fmt.Fprintf(tw, "  scope %s\t%d\n", sc, c.byScope[sc])
	}
	return tw.Flush()
}
