package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/batpak-go/batpak/eventstore"
)

func (a *app) statsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "stats DIR",
		Short: "Print the store's counters (eventstore.Stats)",
		Long: `stats opens the store read-only and prints its Stats: events, streams,
segments, disk bytes, the cold start that opening it took, and the counters
of this process's view (appends, group commits, syncs, ...), which stay at 0
for a read-only view.

--json prints the same as one JSON object with the Go field names; durations
are in nanoseconds, and Failed is a string (empty when the store is healthy).`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(_ *cobra.Command, args []string) error {
			s, err := openReadOnly(args[0])
			if err != nil {
				return err
			}
			defer func() { _ = s.Close() }()
			st := s.Stats()
			if asJSON {
				return writeStatsJSON(a.stdout, st)
			}
			return writeStatsTable(a.stdout, st)
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// statsJSON is eventstore.Stats with Failed as text (an error value has no
// JSON form).
type statsJSON struct {
	eventstore.Stats
	Failed string
}

func writeStatsJSON(out io.Writer, st eventstore.Stats) error {
	v := statsJSON{Stats: st}
	if st.Failed != nil {
		v.Failed = st.Failed.Error()
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeStatsTable(out io.Writer, st eventstore.Stats) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	row := func(name string, v any) { fmt.Fprintf(tw, "%s\t%v\n", name, v) }
	row("Events", st.Events)
	row("Streams", st.Streams)
	row("Segments", st.Segments)
	row("DiskBytes", fmt.Sprintf("%d (%s)", st.DiskBytes, humanBytes(st.DiskBytes)))
	row("AppendedEvents", st.AppendedEvents)
	row("Groups", st.Groups)
	row("AverageGroupSize", fmt.Sprintf("%.2f", st.AverageGroupSize))
	row("Syncs", st.Syncs)
	row("BytesWritten", st.BytesWritten)
	row("IdempotentHits", st.IdempotentHits)
	row("Subscribers", st.Subscribers)
	row("DroppedNotifications", st.DroppedNotifications)
	row("Checkpoints", st.Checkpoints)
	cs := st.ColdStart
	row("ColdStart.Path", cs.Path)
	row("ColdStart.Duration", cs.Duration.Round(time.Microsecond))
	row("ColdStart.EventsFromCheckpoint", cs.EventsFromCheckpoint)
	row("ColdStart.EventsFromFooters", cs.EventsFromFooters)
	row("ColdStart.EventsScanned", cs.EventsScanned)
	row("ColdStart.SegmentsFromFooters", cs.SegmentsFromFooters)
	row("ColdStart.SegmentsScanned", cs.SegmentsScanned)
	row("ColdStart.CheckpointIgnored", orNone(cs.CheckpointIgnored))
	row("ColdStart.TruncatedBytes", cs.TruncatedBytes)
	failed := "-"
	if st.Failed != nil {
		failed = st.Failed.Error()
	}
	row("Failed", failed)
	return tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
