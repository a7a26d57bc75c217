package main

// -scale: how batpak grows. A store of N events (100 per stream unless
// -streams says otherwise) is built in the relaxed mode with batches of
// 10,000, beside a reference store of 1,000,000 events; then each is
// opened cold, and its memory, W4 and durable W1/W3 appends are measured,
// the two opens one after the other so that both see the same disk.
// Every phase runs in a child process whose anonymous memory the parent
// watches: a child past the limit is killed and the report says where it
// stopped, rather than the machine running out of memory.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// scaleOptions are the flags of -scale.
type scaleOptions struct {
	Events   int
	Streams  int     // 0: Events / 100
	Ref      int     // the reference size beside it
	MemGiB   float64 // per child; 0: three quarters of the memory available at the start
	Keep     bool    // keep the stores in Dir and reuse them
	Dir      string
	Backends []string
	JSONOut  string
}

// ScaleReport is what -scale -json writes.
type ScaleReport struct {
	Machine     Machine     `json:"machine"`
	Command     string      `json:"command"`
	Config      Config      `json:"config"`
	MemLimitGiB float64     `json:"mem_limit_gib"`
	FreeGB      float64     `json:"free_gb_at_start"`
	Sizes       []ScaleSize `json:"sizes"`
}

// ScaleSize is one store: how it was built and what its open measured.
type ScaleSize struct {
	Backend string   `json:"backend"`
	Events  int      `json:"events"`
	Streams int      `json:"streams"`
	Reused  bool     `json:"reused,omitempty"` // built by an earlier run (-keep)
	Results []Result `json:"results"`
	Failure string   `json:"failure,omitempty"`
}

func scaleParent(cfg Config, o scaleOptions) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.Streams == 0 {
		o.Streams = max(o.Events/100, 1)
	}
	if o.Events <= 0 || o.Streams <= 0 || o.Events%o.Streams != 0 {
		return fmt.Errorf("-scale %d -streams %d: the events must be a positive multiple of the streams", o.Events, o.Streams)
	}
	perStream := o.Events / o.Streams
	sizes := []int{o.Events}
	if ref := o.Ref / perStream * perStream; ref > 0 && ref < o.Events {
		sizes = []int{ref, o.Events}
	}
	if o.MemGiB <= 0 {
		o.MemGiB = 0.75 * memAvailableGiB()
	}
	dir := o.Dir
	if dir == "" {
		dir = os.TempDir()
	}
	var base string
	var err error
	if o.Keep {
		base = filepath.Join(dir, "batpak-bench-scale")
		err = os.MkdirAll(base, 0o700)
	} else {
		base, err = os.MkdirTemp(dir, "batpak-scale-")
		defer func() { _ = os.RemoveAll(base) }()
	}
	if err != nil {
		return err
	}
	cfg.Dir, cfg.ScaleMem = base, int64(o.MemGiB*(1<<30))
	rep := ScaleReport{Machine: describeMachine(base), Command: "go run . " + strings.Join(os.Args[1:], " "), Config: cfg, MemLimitGiB: o.MemGiB, FreeGB: float64(freeBytes(base)) / 1e9}
	progress("scale: %s events in %s streams beside %s, in %s (%.1f GB free); each child limited to %s of anonymous memory",
		thousands(int64(o.Events)), thousands(int64(o.Streams)), thousands(int64(sizes[0])), base, rep.FreeGB, mib(o.MemGiB*1024))
	sizeCfg := func(events int) Config {
		c := cfg
		c.Streams, c.PerStream = events/perStream, perStream
		return c
	}
	// Build every store first, then open them one after the other.
	for _, name := range o.Backends {
		bpe, what := 1000.0, "assumed before any store is measured"
		for _, events := range sizes {
			sz := ScaleSize{Backend: name, Events: events, Streams: events / perStream}
			marker := filepath.Join(base, fmt.Sprintf("%s-scale-%d.done", name, events))
			if data, err := os.ReadFile(marker); err == nil && json.Unmarshal(data, &sz.Results) == nil {
				sz.Reused = true
				progress("scale: %s %s events: reusing the store built earlier (-keep)", name, thousands(int64(events)))
			} else {
				if err := checkDisk(base, events, bpe, what); err != nil {
					return err
				}
				t := time.Now()
				sz.Results, err = spawnScale(ctx, sizeCfg(events), name, "scalebuild", 12*time.Hour)
				if err != nil {
					sz.Failure = err.Error()
					rep.Sizes = append(rep.Sizes, sz)
					break // a larger store would not build either
				}
				progress("scale: %s %s events built in %s", name, thousands(int64(events)), time.Since(t).Round(time.Second))
				if data, err := json.Marshal(sz.Results); err == nil {
					_ = os.WriteFile(marker, data, 0o600)
				}
			}
			// Written bytes: what grows with the events (a reservation of
			// a segment's size is in the 2 GiB of headroom).
			if v := resultValue(sz.Results, "bytes on disk per event, written"); v > 0 {
				bpe, what = v, fmt.Sprintf("as measured on the %s-event store", thousands(int64(events)))
			}
			rep.Sizes = append(rep.Sizes, sz)
		}
	}
	for i := range rep.Sizes {
		sz := &rep.Sizes[i]
		if sz.Failure != "" {
			continue
		}
		t := time.Now()
		res, err := spawnScale(ctx, sizeCfg(sz.Events), sz.Backend, "scaleopen", 2*time.Hour)
		sz.Results = append(sz.Results, res...)
		if err != nil {
			sz.Failure = err.Error()
		}
		progress("scale: %s %s events opened and measured in %s", sz.Backend, thousands(int64(sz.Events)), time.Since(t).Round(time.Second))
	}
	writeScaleTable(os.Stdout, rep)
	if o.JSONOut != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(o.JSONOut, data, 0o644)
	}
	return nil
}

func resultValue(res []Result, row string) float64 {
	for _, r := range res {
		if r.Row == row {
			return r.Value
		}
	}
	return 0
}

// checkDisk refuses a build that would not fit: the events at bpe bytes
// each, 10% more, and 2 GiB for the appends of the open phase and the
// fsync probes.
func checkDisk(dir string, events int, bpe float64, what string) error {
	need := int64(float64(events)*bpe*1.1) + 2<<30
	if free := freeBytes(dir); free < need {
		return fmt.Errorf("not enough disk for -scale: a store of %s events needs about %.1f GB (%.0f bytes per event %s, +10%%, +2 GiB for the appends), and the disk of %s has %.1f GB free; free some space, point -dir at a larger disk or use a smaller -scale",
			thousands(int64(events)), float64(need)/1e9, bpe, what, dir, float64(free)/1e9)
	}
	return nil
}

func freeBytes(dir string) int64 {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return 0
	}
	return int64(st.Bavail) * st.Bsize
}

func memAvailableGiB() float64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 8
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / (1 << 20)
		}
	}
	return 8
}

// errMemory is a child killed for passing the memory limit.
var errMemory = errors.New("over the memory limit")

// spawnScale runs one -scale phase in a child process, killing it if its
// anonymous memory passes cfg.ScaleMem. The results it measured before a
// failure are returned with the error.
func spawnScale(ctx context.Context, cfg Config, backend, phase string, timeout time.Duration) ([]Result, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	partial := filepath.Join(cfg.Dir, fmt.Sprintf("%s-%d-%s.jsonl", backend, cfg.events(), phase))
	_ = os.Remove(partial)
	defer func() { _ = os.Remove(partial) }()
	args := []string{"-child", "-backend", backend, "-phase", phase, "-dir", cfg.Dir, "-partial", partial,
		"-scale", fmt.Sprint(cfg.events()), "-streams", fmt.Sprint(cfg.Streams),
		"-scale-mem", strconv.FormatFloat(float64(cfg.ScaleMem)/(1<<30), 'f', -1, 64)}
	if cfg.Quick {
		args = append(args, "-quick")
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var killed atomic.Bool
	var peak atomic.Int64 // MiB of anonymous memory, sampled
	done := make(chan struct{})
	go func() {
		pid := strconv.Itoa(cmd.Process.Pid)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			anon := procStatusMiBOf(pid, "RssAnon")
			peak.Store(max(peak.Load(), int64(anon)))
			if cfg.ScaleMem > 0 && anon*(1<<20) > float64(cfg.ScaleMem) {
				killed.Store(true)
				_ = cmd.Process.Kill() // our own child, by its pid
				return
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	var res []Result
	if err == nil {
		if jerr := json.Unmarshal(out.Bytes(), &res); jerr != nil {
			return nil, fmt.Errorf("%s %s: bad child output: %w", backend, phase, jerr)
		}
		return res, nil
	}
	res = readPartial(partial)
	if killed.Load() {
		what := "opened, then went past"
		switch {
		case phase == "scalebuild":
			what = "the build did not finish within"
		case resultValue(res, "cold open + first read") == 0:
			what = "did not open within"
		}
		return res, fmt.Errorf("%w: %s %s of anonymous memory (stopped at %s after %s; last measured: %s)",
			errMemory, what, mib(float64(cfg.ScaleMem)/(1<<20)), mib(float64(peak.Load())), time.Since(start).Round(time.Second), lastRow(res))
	}
	return res, fmt.Errorf("%s %s: %w (after %s; last measured: %s)", backend, phase, err, time.Since(start).Round(time.Second), lastRow(res))
}

// mib formats MiB as "512 MiB" or "12.5 GiB".
func mib(v float64) string {
	if v < 1024 {
		return fmt.Sprintf("%.0f MiB", v)
	}
	return fmt.Sprintf("%.1f GiB", v/1024)
}

func readPartial(path string) []Result {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }()
	var res []Result
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Result
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			res = append(res, r)
		}
	}
	return res
}

func lastRow(res []Result) string {
	if len(res) == 0 {
		return "nothing"
	}
	return res[len(res)-1].Row
}
