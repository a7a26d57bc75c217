package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
)

func (a *app) statsCmd() *cobra.Command {
	var asJSON, scrub bool
	cmd := &cobra.Command{
		Use:   "stats DIR",
		Short: "Print what the store holds and how it opens",
		Long: `stats opens the store read-only and prints what describes the store:
its events, streams, segments and bytes on disk, and its cold start (which
path opening it took, from the checkpoint, footers or a scan, and how long).
The counters of a running store's writer (appends, group commits, syncs,
subscribers, ...) belong to the process that has it open: that process
reads them with eventstore.Store.Stats.

--scrub first scrubs the store (eventstore.Store.Scrub): it rereads every
sealed segment and checks each frame's CRC and record, the footer, where
the index places each event, each event's hash and its link to its
stream's previous event. Scrub.Damage then lists every damaged place.

--json prints the same as one JSON object with the Go field names; durations
are in nanoseconds, and Failed is a string (empty when the store is healthy).

Exit codes: 0 nothing it shows is damaged; 1 the store does not open, it
failed (Failed), the scrub found damage, or the operation failed; 2 usage
error.`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			s, err := openReadOnly(args[0])
			if err != nil {
				return err
			}
			defer func() { _ = s.Close() }()
			if scrub {
				if _, err := s.Scrub(cmd.Context()); err != nil && !errors.Is(err, batpak.ErrCorrupt) {
					return fmt.Errorf("scrub: %w", err)
				}
			}
			st := s.Stats()
			if asJSON {
				err = writeStatsJSON(a.stdout, newStoreStats(st, scrub))
			} else {
				err = writeStatsTable(a.stdout, newStoreStats(st, scrub))
			}
			switch {
			case err != nil:
				return err
			case st.Failed != nil:
				return failf("the store failed: %v", st.Failed)
			case len(st.Scrub.Damage) > 0:
				return damageAdvice(args[0], fmt.Errorf("the scrub found %d damaged place(s): %w", len(st.Scrub.Damage), batpak.ErrCorrupt))
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&scrub, "scrub", false, "scrub the store first: reread and check every sealed segment")
	return cmd
}

// storeStats is what stats prints of eventstore.Stats: what describes the
// store, not the counters of this process's read-only view. DataBytes
// leaves out the space reserved after the active segment's frames. Failed
// is text (an error value has no JSON form); Scrub is there after --scrub.
type storeStats struct {
	Events    uint64
	Streams   int
	Segments  int
	DiskBytes int64
	DataBytes int64
	ColdStart eventstore.ColdStart
	Scrub     *eventstore.ScrubStats `json:",omitempty"`
	Failed    string
}

func newStoreStats(st eventstore.Stats, scrubbed bool) storeStats {
	v := storeStats{Events: st.Events, Streams: st.Streams, Segments: st.Segments,
		DiskBytes: st.DiskBytes, DataBytes: st.DataBytes, ColdStart: st.ColdStart}
	if scrubbed {
		v.Scrub = &st.Scrub
	}
	if st.Failed != nil {
		v.Failed = st.Failed.Error()
	}
	return v
}

func writeStatsJSON(out io.Writer, st storeStats) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(st)
}

func writeStatsTable(out io.Writer, st storeStats) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	row := func(name string, v any) { fmt.Fprintf(tw, "%s\t%v\n", name, v) }
	row("Events", st.Events)
	row("Streams", st.Streams)
	row("Segments", st.Segments)
	row("DiskBytes", fmt.Sprintf("%d (%s)", st.DiskBytes, humanBytes(st.DiskBytes)))
	row("DataBytes", fmt.Sprintf("%d (%s)", st.DataBytes, humanBytes(st.DataBytes)))
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
	row("ColdStart.CheckpointWritten", cs.CheckpointWritten)
	if sc := st.Scrub; sc != nil {
		row("Scrub.Runs", sc.Runs)
	}
	if sc := st.Scrub; sc != nil && sc.Runs > 0 {
		row("Scrub.LastRun", formatTime(sc.LastRun))
		row("Scrub.LastDuration", sc.LastDuration.Round(time.Microsecond))
		row("Scrub.LastBytes", fmt.Sprintf("%d (%s)", sc.LastBytes, humanBytes(sc.LastBytes)))
		row("Scrub.Damage", len(sc.Damage))
		for _, d := range sc.Damage {
			row("", fmt.Sprintf("segment %d  file %s  offset %d: %s", d.Segment, d.Path, d.Offset, d.Reason))
		}
	}
	row("Failed", orNone(st.Failed))
	return tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
