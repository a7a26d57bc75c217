package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestScaleTiny builds two tiny scale stores in this process and measures
// them as the -scale children do, then prints the table.
func TestScaleTiny(t *testing.T) {
	cfg := Config{Dir: t.TempDir(), WriteTime: 20 * time.Millisecond, MaxOps: 300, ReadTime: 10 * time.Millisecond, PerStream: 10, FadviseOnly: true}
	rep := ScaleReport{}
	for _, events := range []int{500, 2000} {
		c := cfg
		c.Streams = events / c.PerStream
		r := &runner{cfg: c, b: batpakBackend{}, run: 1}
		if err := r.scaleBuild(); err != nil {
			t.Fatal(err)
		}
		if err := r.scaleOpen(); err != nil {
			t.Fatal(err)
		}
		for _, row := range []string{"bulk build", "bytes on disk per event, written", "cold open + first read", "heap after open, bytes per event",
			"W4 load 1 stream, cold", "W4 load 1 stream, warm", "W3 64 goroutines durable", "W1 durable, append latency p99"} {
			if resultValue(r.out, row) <= 0 {
				t.Errorf("%d events: %s: %v", events, row, resultValue(r.out, row))
			}
		}
		rep.Sizes = append(rep.Sizes, ScaleSize{Backend: "batpak", Events: events, Streams: c.Streams, Results: r.out})
	}
	rep.Sizes[1].Failure = "did not open within 1 GiB"
	var buf bytes.Buffer
	writeScaleTable(&buf, rep)
	for _, want := range []string{"| measure | unit | batpak 500 | batpak 2k | ÷ |", "| cold open + first read | ms |", "open ≤ 1 s", "**batpak 2,000 events: did not open within 1 GiB**"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("no %q in the table:\n%s", want, buf.String())
		}
	}
}

func TestCheckDiskRefuses(t *testing.T) {
	dir := t.TempDir()
	if err := checkDisk(dir, 1000, 400, "assumed"); err != nil {
		t.Errorf("1,000 events: %v", err)
	}
	err := checkDisk(dir, 1<<40, 400, "as measured on the 1,000,000-event store")
	if err == nil || !strings.Contains(err.Error(), "not enough disk") || !strings.Contains(err.Error(), "GB free") {
		t.Errorf("2^40 events: %v", err)
	}
}

func TestShortCount(t *testing.T) {
	for n, want := range map[int]string{1_000_000: "1M", 100_000_000: "100M", 2_500_000: "2.5M", 2000: "2k", 500: "500", 12345: "12,345"} {
		if got := shortCount(n); got != want {
			t.Errorf("%d: %s, want %s", n, got, want)
		}
	}
}
