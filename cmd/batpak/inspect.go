package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
)

func (a *app) inspectCmd() *cobra.Command {
	var topStreams int
	cmd := &cobra.Command{
		Use:   "inspect DIR",
		Short: "Show a store's segments, streams, cold start and checkpoint",
		Long: `inspect opens the store read-only and prints:

  - the number of events and streams, the disk space and the bytes per event
  - how the index was rebuilt on open (checkpoint, footer, scan or empty) and
    how long it took
  - the checkpoint's status
  - every segment file: size, whether it is sealed with a valid footer or is
    the active segment, and its events
  - the streams with the most events (--streams)

A segment's state comes from its footer, or from scanning its frames when it
has no valid footer: inspect does not reread the frames a valid footer
indexes (verify does, and so does a scrub: batpak stats --scrub).

Exit codes: 0 nothing it shows is damaged (a torn tail of the active
segment, which the next writable open cuts, and a damaged checkpoint, which
open ignores, are not damage to the log); 1 the store does not open, a
segment it lists is damaged or missing, or the operation failed (the
segment table is still printed); 2 usage error.`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(_ *cobra.Command, args []string) error {
			if topStreams < 0 {
				return usagef("--streams must be 0 or more")
			}
			return a.inspect(args[0], topStreams)
		}),
	}
	cmd.Flags().IntVar(&topStreams, "streams", 10, "how many streams to list, by version (0: none)")
	return cmd
}

func (a *app) inspect(dir string, topStreams int) error {
	if err := checkStoreDir(dir); err != nil {
		return err
	}
	segs, err := readSegments(dir)
	if err != nil {
		return err
	}
	s, openErr := eventstore.OpenReadOnly(dir)
	out := a.stdout
	fmt.Fprintf(out, "store       %s\n", dir)
	if openErr == nil {
		defer func() { _ = s.Close() }()
		printOverview(out, s.Stats(), segs)
	}
	fmt.Fprintf(out, "checkpoint  %s\n", checkpointStatus(dir, s))
	if n := quarantined(dir); n > 0 {
		fmt.Fprintf(out, "quarantine  %d files in %s/ (moved aside by an earlier repair)\n", n, eventstore.QuarantineDir)
	}
	fmt.Fprintln(out)
	printSegments(out, segs)
	if openErr != nil {
		return damageAdvice(dir, openErr)
	}
	if topStreams > 0 {
		fmt.Fprintln(out)
		printTopStreams(out, s, topStreams)
	}
	var damaged []string
	for _, sg := range segs {
		if sg.damaged {
			damaged = append(damaged, sg.name)
		}
	}
	if len(damaged) > 0 {
		return failf("damaged or missing: %s\n'batpak verify %s' lists the damage, 'batpak repair %s' repairs it",
			strings.Join(damaged, ", "), dir, dir)
	}
	return nil
}

func printOverview(out io.Writer, st eventstore.Stats, segs []segInfo) {
	var data int64
	for _, sg := range segs {
		data += sg.data
	}
	fmt.Fprintf(out, "events      %d in %d streams\n", st.Events, st.Streams)
	fmt.Fprintf(out, "disk        %s in %d segment files (%d bytes)", humanBytes(st.DiskBytes), st.Segments, st.DiskBytes)
	if data != st.DiskBytes {
		fmt.Fprintf(out, ", %s of them data (the rest is preallocated space)", humanBytes(data))
	}
	if st.Events > 0 {
		fmt.Fprintf(out, "; %.1f bytes per event", float64(data)/float64(st.Events))
	}
	fmt.Fprintln(out)
	cs := st.ColdStart
	fmt.Fprintf(out, "cold start  %s in %s (%d events from the checkpoint, %d from %d footers, %d scanned in %d segments)\n",
		cs.Path, cs.Duration.Round(time.Microsecond), cs.EventsFromCheckpoint, cs.EventsFromFooters, cs.SegmentsFromFooters, cs.EventsScanned, cs.SegmentsScanned)
	if cs.TruncatedBytes > 0 {
		fmt.Fprintf(out, "torn tail   %d bytes after the last whole frame were never acknowledged; the next writable open cuts them\n", cs.TruncatedBytes)
	}
}

// checkpointStatus describes the checkpoint file and whether the open used it.
func checkpointStatus(dir string, s *eventstore.Store) string {
	path := filepath.Join(dir, eventstore.CheckpointFileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "absent (written when a writer closes the store)"
	}
	if err != nil {
		return "unreadable: " + err.Error()
	}
	c, err := segment.DecodeCheckpoint(data)
	if err != nil {
		return "damaged, ignored on open: " + err.Error()
	}
	desc := fmt.Sprintf("covers events 1-%d, up to %s offset %d (%s)", c.LastSeq, segment.FileName(c.Segment), c.FrameEnd, humanBytes(int64(len(data))))
	if c.LastSeq == 0 {
		desc = fmt.Sprintf("covers no events (%s)", humanBytes(int64(len(data))))
	}
	if s == nil {
		return desc
	}
	cs := s.Stats().ColdStart
	switch {
	case cs.Path == "checkpoint":
		return "used: " + desc
	case cs.CheckpointWritten:
		return "written by this open, after it rebuilt the index: " + desc
	case cs.CheckpointIgnored != "":
		return fmt.Sprintf("ignored on open (%s): %s", cs.CheckpointIgnored, desc)
	}
	return "not used: " + desc
}

func quarantined(dir string) int {
	des, err := os.ReadDir(filepath.Join(dir, eventstore.QuarantineDir))
	if err != nil {
		return 0
	}
	return len(des)
}

// segInfo describes one segment file as found on disk.
type segInfo struct {
	id      uint32
	name    string
	size    int64
	data    int64 // bytes up to the end of the frames (or the footer): what is not preallocated space
	state   string
	damaged bool // the state is damage (verify reports it as a problem)
	events  int
	first   uint64
	last    uint64
}

// readSegments describes every segment file in dir, in id order: sealed
// segments from their footers, the others by scanning their frames.
func readSegments(dir string) ([]segInfo, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ids []uint32
	for _, de := range des {
		if id, ok := segment.ParseFileName(de.Name()); ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	segs := make([]segInfo, 0, len(ids))
	for i, id := range ids {
		for missing := uint32(1); i > 0 && ids[i-1]+missing < id; missing++ {
			gone := ids[i-1] + missing
			segs = append(segs, segInfo{id: gone, name: segment.FileName(gone), state: "missing", damaged: true})
		}
		segs = append(segs, readSegment(dir, id, i == len(ids)-1))
	}
	return segs, nil
}

func readSegment(dir string, id uint32, last bool) (sg segInfo) {
	sg = segInfo{id: id, name: segment.FileName(id)}
	// inspect takes no lock: a writer may seal the active segment while it
	// is read, cutting the space reserved after its frames. A page the
	// disk cannot read is damage.
	path := filepath.Join(dir, sg.name)
	var fault error
	var data []byte
	defer func() {
		switch {
		case fault == nil:
		case last && errors.Is(fault, segment.ErrFileCut):
			sg = segInfo{id: id, name: sg.name, size: sg.size, state: "changed while read (a writer sealed it): inspect again"}
		default:
			sg = segInfo{id: id, name: sg.name, size: sg.size, state: "unreadable: " + fault.Error(), damaged: true}
		}
	}()
	defer segment.RecoverFault(segment.GuardFaults(), &fault, segment.Mapping{Data: &data, FS: vfs.OSFS{}, Path: path})
	if fi, err := os.Stat(path); err == nil {
		sg.size = fi.Size()
	}
	data, release, err := segment.MapFile(vfs.OSFS{}, path)
	if err != nil {
		sg.state, sg.damaged = "unreadable: "+err.Error(), true
		return sg
	}
	defer func() { _ = release() }()
	ix, _, ferr := segment.ReadFooter(data, id)
	if ferr == nil {
		sg.state, sg.data, sg.events = "sealed, footer", sg.size, len(ix.Entries)
		if n := len(ix.Entries); n > 0 {
			sg.first, sg.last = ix.Entries[0].Seq, ix.Entries[n-1].Seq
		}
		return sg
	}
	res, err := segment.Scan(data, id, path, 0, func(_ int64, _ int, rec *segment.Record) error {
		if !rec.IsMarker() {
			if sg.events == 0 {
				sg.first = rec.Seq
			}
			sg.events++
			sg.last = rec.Seq
		}
		return nil
	})
	sg.data = res.FrameEnd
	var ce *segment.CorruptError
	switch {
	case errors.As(err, &ce):
		sg.state, sg.damaged = fmt.Sprintf("damaged at offset %d: %s", ce.Offset, ce.Reason), true
	case err != nil:
		sg.state, sg.damaged = "damaged: "+err.Error(), true
	case res.Sealed:
		sg.state, sg.data, sg.damaged = "sealed, footer unusable (scanned): "+ferr.Error(), sg.size, true
	case last && res.Torn != nil:
		sg.state = fmt.Sprintf("active, torn tail at offset %d", res.Torn.Offset)
	case last:
		sg.state = "active"
	case res.Torn != nil:
		sg.state, sg.damaged = fmt.Sprintf("damaged at offset %d: %s", res.Torn.Offset, res.Torn.Reason), true
	default:
		sg.state = "not sealed, but not the last segment (scanned on open)"
	}
	return sg
}

func printSegments(out io.Writer, segs []segInfo) {
	if len(segs) == 0 {
		fmt.Fprintln(out, "no segment files")
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEGMENT\tSIZE\tDATA\tEVENTS\tSEQUENCES\tSTATE")
	for _, sg := range segs {
		seqs := "-"
		if sg.events > 0 {
			seqs = fmt.Sprintf("%d-%d", sg.first, sg.last)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\n", sg.name, sg.size, sg.data, sg.events, seqs, sg.state)
	}
	_ = tw.Flush()
}

func printTopStreams(out io.Writer, s *eventstore.Store, n int) {
	var streams []batpak.StreamInfo
	for st := range s.Streams() {
		streams = append(streams, st)
	}
	slices.SortStableFunc(streams, func(x, y batpak.StreamInfo) int { return cmp.Compare(y.Version, x.Version) })
	fmt.Fprintf(out, "top streams by version (%d of %d)\n", min(n, len(streams)), len(streams))
	if len(streams) == 0 {
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCOPE\tENTITY\tVERSION\tLAST SEQUENCE")
	for _, st := range streams[:min(n, len(streams))] {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", st.Coordinate.Scope, st.Coordinate.Entity, st.Version, st.LastSequence)
	}
	_ = tw.Flush()
}
