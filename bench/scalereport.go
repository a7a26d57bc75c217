package main

import (
	"fmt"
	"io"
	"strings"
)

// scaleRow is one row of the -scale table. target, if set, judges the
// large store (big) against the reference (ref) by issue 17's targets.
type scaleRow struct {
	name     string
	target   func(ref, big float64) (string, bool)
	relative bool // the target compares with the reference: none without one
}

// within20 is issue 17's "within 20% of the 1M figure".
func within20(higher bool) func(ref, big float64) (string, bool) {
	return func(ref, big float64) (string, bool) {
		if higher {
			return "≥ 0.8× the reference", ref > 0 && big >= 0.8*ref
		}
		return "≤ 1.2× the reference", big > 0 && big <= 1.2*ref
	}
}

var scaleRows = func() []scaleRow {
	rows := []scaleRow{
		{name: "bulk build"},
		{name: "bytes on disk per event"},
		{name: "bytes on disk per event, written", target: func(_, big float64) (string, bool) { return "≤ 300", big > 0 && big <= 300 }},
		{name: "peak RSS, build"},
		{name: "peak anon RSS, build"},
		{name: "cold open + first read", target: func(_, big float64) (string, bool) { return "open ≤ 1 s", big > 0 && big <= 1000 }},
		{name: "peak RSS, open + first read"},
		{name: "peak anon RSS, open + first read"},
		{name: "heap after open + first read", target: func(_, big float64) (string, bool) {
			return "≤ 1.5 GiB (at 100M events)", big > 0 && big <= 1536
		}},
		{name: "heap after open, bytes per event", target: func(_, big float64) (string, bool) {
			return "≤ 16 (the 1M target, held at scale)", big > 0 && big <= 16
		}},
		{name: "anon RSS after open + first read"},
		{name: "RSS after open + first read"},
		{name: "W4 load 1 stream, cold", target: within20(false), relative: true},
		{name: "W4 load 1 stream, warm", target: within20(false), relative: true},
		{name: "W1 append 1 event durable", target: within20(true), relative: true},
		{name: fsyncShare},
		{name: "W3 8 goroutines durable", target: within20(true), relative: true},
		{name: "W3 64 goroutines durable", target: within20(true), relative: true},
	}
	for _, spec := range latencyRows() {
		rows = append(rows, scaleRow{name: spec.name})
	}
	for _, name := range []string{"peak RSS, open + reads + appends", "peak anon RSS, open + reads + appends", "close (with its checkpoint)", "peak RSS, to the end of close", "peak anon RSS, to the end of close"} {
		rows = append(rows, scaleRow{name: name})
	}
	return rows
}()

// scaleValues indexes a size's results by row, with the derived share of
// the fsync rate.
func scaleValues(sz ScaleSize) map[string]Result {
	m := map[string]Result{}
	for _, r := range sz.Results {
		m[r.Row] = r
		if r.Row == "W1 append 1 event durable" && r.FsyncAlongside > 0 {
			m[fsyncShare] = Result{Row: fsyncShare, Unit: "%", Value: 100 * r.Value / r.FsyncAlongside}
		}
	}
	return m
}

// writeScaleTable prints one column per backend and size, the large
// store's figure over the reference's, and issue 17's targets (judged on
// batpak's largest store).
func writeScaleTable(w io.Writer, rep ScaleReport) {
	m := rep.Machine
	fmt.Fprintf(w, "batpak scale run, %s: %s, %d cores, %d GiB, %s, %s, %s (load average at start %s); %.0f GB free, %.1f GiB of anonymous memory allowed per child\n\n",
		m.Date, m.CPU, m.Cores, m.MemoryGiB, m.Kernel, m.Filesystem, m.Go, m.LoadAvg, rep.FreeGB, rep.MemLimitGiB)
	type col struct {
		title string
		vals  map[string]Result
		ratio bool // big ÷ the column before
	}
	var cols []col
	var ref, big map[string]Result
	for i, sz := range rep.Sizes {
		title := fmt.Sprintf("%s %s", sz.Backend, shortCount(sz.Events))
		v := scaleValues(sz)
		cols = append(cols, col{title: title, vals: v})
		if i > 0 && rep.Sizes[i-1].Backend == sz.Backend {
			cols = append(cols, col{title: "÷", vals: v, ratio: true})
		}
		if sz.Backend == "batpak" {
			ref, big = big, v
		}
	}
	fmt.Fprint(w, "| measure | unit |")
	for _, c := range cols {
		fmt.Fprintf(w, " %s |", c.title)
	}
	fmt.Fprint(w, " target (issue 17, on batpak's largest store) |\n|---|---|")
	fmt.Fprint(w, strings.Repeat("---:|", len(cols)))
	fmt.Fprintln(w, "---|")
	for _, row := range scaleRows {
		unit, found := "", false
		for _, c := range cols {
			if r, ok := c.vals[row.name]; ok {
				unit, found = r.Unit, true
			}
		}
		if !found {
			continue
		}
		fmt.Fprintf(w, "| %s | %s |", row.name, unit)
		for i, c := range cols {
			r, ok := c.vals[row.name]
			switch {
			case !ok:
				fmt.Fprint(w, " — |")
			case c.ratio:
				prev, pok := cols[i-2].vals[row.name]
				if !pok || prev.Value == 0 {
					fmt.Fprint(w, " — |")
				} else {
					fmt.Fprintf(w, " %.2f× |", r.Value/prev.Value)
				}
			default:
				fmt.Fprintf(w, " %s |", formatValue(r.Value, r.Unit))
			}
		}
		target := ""
		if b, ok := big[row.name]; ok && row.target != nil && (!row.relative || ref != nil) {
			text, met := row.target(ref[row.name].Value, b.Value) // ref: nil map for an absolute target
			mark := "✗ short"
			if met {
				mark = "✓"
			}
			target = text + ": " + mark
		}
		fmt.Fprintf(w, " %s |\n", target)
	}
	fmt.Fprintln(w, "\n÷: the larger store's figure over the reference's, same backend, same run. Latency rows: durable appends into the store; W4 cold: 200 streams chosen at random, each read once right after the cold open; warm: the same streams again.")
	for _, sz := range rep.Sizes {
		note := ""
		if sz.Reused {
			note = " (built by an earlier run, -keep)"
		}
		if sz.Failure != "" {
			fmt.Fprintf(w, "\n**%s %s events%s: %s**\n", sz.Backend, thousands(int64(sz.Events)), note, sz.Failure)
		}
	}
}

// shortCount writes 1000000 as 1M and 2500 as 2.5k.
func shortCount(n int) string {
	switch {
	case n >= 1_000_000 && n%100_000 == 0:
		return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/1e6), "0"), ".") + "M"
	case n >= 1000 && n%100 == 0:
		return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/1e3), "0"), ".") + "k"
	}
	return thousands(int64(n))
}
