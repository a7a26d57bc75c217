// Command bench compares batpak with SQLite, bbolt, Pebble and NATS
// JetStream on the same workloads and prints a markdown table (see
// docs/benchmarks.md):
//
//	cd bench && go run .            # full run: 5 runs, about 15 minutes on 2 cores
//	cd bench && go run . -quick     # 1 run at a tenth of the size, under a minute
//	go run . -only W1,W5 -backends batpak,pebble -runs 5 -json out.json -cpuprofile prof/
//	cd bench && go run . -natsstore -runs 3 # the natsstore rows: sync_always writes, Open of 1,000,000 events
//	cd bench && go run . -scale 10000000  # a 10M-event store beside a 1M one: build, open, memory, W4, W1/W3
//
// Each backend runs each phase (writes, dataset load, reads) in a child
// process of its own, so that peak memory is per backend and one
// backend's garbage never slows another. Runs rotate the order of the
// backends.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	var (
		quick    = flag.Bool("quick", false, "small and short: about a minute in all")
		jsonOut  = flag.String("json", "", "write the raw results, medians and limits to this file")
		only     = flag.String("only", "", "comma-separated workloads to run (W1,...,W6); default all")
		backs    = flag.String("backends", "", "comma-separated backends (batpak,sqlite,bbolt,pebble,jetstream); default all")
		runs     = flag.Int("runs", 0, "runs per measurement, the table shows the median (default 5, 1 with -quick)")
		dir      = flag.String("dir", "", "directory for the stores (default the system temp dir); a new directory is made in it and removed")
		cpuprof  = flag.String("cpuprofile", "", "write a CPU profile per backend and workload of the first run into this directory")
		natsRun  = flag.Bool("natsstore", false, "run the natsstore rows instead of the peer comparison: W1, W2 and W3 with 8 goroutines under sync_always, and Open of 1,000,000 events (100,000 with -quick) with and without the index checkpoint")
		scale    = flag.Int("scale", 0, "build a store of this many events (batpak; peers with -backends) beside one of 1,000,000, and measure open, memory, W4 and durable W1/W3 on each (see docs/benchmarks.md)")
		streams  = flag.Int("streams", 0, "with -scale: the streams of the store (default: 100 events per stream)")
		scaleRef = flag.Int("scale-ref", 1_000_000, "with -scale: the size of the reference store measured beside it")
		scaleMem = flag.Float64("scale-mem", 0, "with -scale: GiB of anonymous memory a child may use before it is stopped (default: three quarters of what is available at the start)")
		keep     = flag.Bool("keep", false, "with -scale: keep the stores in -dir (batpak-bench-scale/) and reuse them in later runs")
		partial  = flag.String("partial", "", "internal: the child writes each result to this file as it is measured")
		child    = flag.Bool("child", false, "internal: run one phase of one backend and print its results as JSON")
		backend  = flag.String("backend", "", "internal: the child's backend")
		phase    = flag.String("phase", "", "internal: the child's phase (writes, load, reads)")
		runIndex = flag.Int("run", 1, "internal: the child's run number")
	)
	flag.Parse()
	cfg := fullConfig()
	if *quick {
		cfg = quickConfig()
	}
	cfg.ProfileDir = *cpuprof
	if *only != "" {
		cfg.Only = map[string]bool{}
		for _, w := range strings.Split(*only, ",") {
			w = strings.ToUpper(strings.TrimSpace(w))
			if len(w) != 2 || w[0] != 'W' || w[1] < '1' || w[1] > '6' {
				fatalf("-only: unknown workload %q (W1 to W6)", w)
			}
			cfg.Only[w] = true
		}
	}
	if *child {
		cfg.Dir = *dir
		if *scale > 0 && *streams > 0 {
			cfg.Streams, cfg.PerStream = *streams, *scale / *streams
			cfg.ScaleMem = int64(*scaleMem * (1 << 30))
		}
		if err := runChild(cfg, *backend, *phase, *runIndex, *partial); err != nil {
			fatalf("%s %s: %v", *backend, *phase, err)
		}
		return
	}
	var names []string
	if *scale > 0 && *backs == "" {
		names = []string{"batpak"} // peers only when asked for
	} else if *backs == "" {
		for _, b := range backends {
			names = append(names, b.Name())
		}
	} else {
		for _, n := range strings.Split(*backs, ",") {
			n = strings.TrimSpace(n)
			if _, err := backendByName(n); err != nil {
				fatalf("-backends: %v", err)
			}
			names = append(names, n)
		}
	}
	if *runs <= 0 {
		*runs = 5
		if *quick {
			*runs = 1
		}
	}
	if *scale > 0 {
		o := scaleOptions{Events: *scale, Streams: *streams, Ref: *scaleRef, MemGiB: *scaleMem, Keep: *keep, Dir: *dir, Backends: names, JSONOut: *jsonOut}
		if *keep && *dir == "" {
			fatalf("-keep needs -dir")
		}
		if err := scaleParent(cfg, o); err != nil {
			fatalf("%v", err)
		}
		return
	}
	if *natsRun {
		if err := natsParent(cfg, *runs, *dir, *jsonOut); err != nil {
			fatalf("%v", err)
		}
		return
	}
	if err := parent(cfg, names, *runs, *dir, *jsonOut); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

// Report is what -json writes.
type Report struct {
	Machine      Machine  `json:"machine"`
	Command      string   `json:"command"`
	Config       Config   `json:"config"`
	Runs         int      `json:"runs"`
	Limits       Limits   `json:"limits"` // median of LimitsPerRun
	LimitsPerRun []Limits `json:"limits_per_run"`
	Results      []Result `json:"results"`
	Summary      Summary  `json:"summary"`
}

func parent(cfg Config, names []string, runs int, dir, jsonOut string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if dir == "" {
		dir = os.TempDir()
	}
	base, err := os.MkdirTemp(dir, "batpak-bench-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(base) }()
	if cfg.ProfileDir != "" {
		if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
			return err
		}
		if cfg.ProfileDir, err = filepath.Abs(cfg.ProfileDir); err != nil {
			return err
		}
	}
	cfg.Dir = base
	rep := Report{Machine: describeMachine(base), Command: "go run . " + strings.Join(os.Args[1:], " "), Config: cfg, Runs: runs}
	start := time.Now()
	var phases []string
	if cfg.want("W1") || cfg.want("W2") || cfg.want("W3") {
		phases = append(phases, "writes")
	}
	if cfg.wantReads() {
		phases = append(phases, "load", "reads")
	}
	for run := 1; run <= runs; run++ {
		l, err := measureLimits(base, cfg.Quick)
		if err != nil {
			return fmt.Errorf("limits: %w", err)
		}
		rep.LimitsPerRun = append(rep.LimitsPerRun, l)
		progress("run %d/%d: limits: fsync/s %.0f appending, %.0f fallocated, %.0f overwriting; %.0f MiB/s; decode %.0f ns",
			run, runs, l.FsyncAppend, l.FsyncFallocate, l.FsyncOverwrite, l.WriteMiBps, l.DecodeNs)
		for i := range names {
			name := names[(i+run-1)%len(names)] // rotate the order between runs
			for _, ph := range phases {
				t := time.Now()
				res, err := spawn(ctx, cfg, name, ph, run)
				if err != nil {
					return err
				}
				rep.Results = append(rep.Results, res...)
				progress("run %d/%d %-9s %-6s %5.1fs", run, runs, name, ph, time.Since(t).Seconds())
			}
		}
	}
	rep.Limits = medianLimits(rep.LimitsPerRun)
	rep.Summary = summarize(rep.Results, names, rep.Limits, rep.LimitsPerRun)
	progress("done in %s", time.Since(start).Round(time.Second))
	m := rep.Machine
	fmt.Printf("batpak peer comparison, %s: %s, %d cores, %d GiB, %s, %s, %s (load average at start %s)\n\n",
		m.Date, m.CPU, m.Cores, m.MemoryGiB, m.Kernel, m.Filesystem, m.Go, m.LoadAvg)
	writeTable(os.Stdout, rep.Summary, names, runs)
	writeModes(os.Stdout, names)
	for _, r := range rep.Results {
		if r.Note != "" && r.Backend == names[0] && r.Run == 1 {
			fmt.Printf("W6: %s.\n", r.Note)
			break
		}
	}
	fmt.Println()
	writeLimits(os.Stdout, rep.Limits)
	if jsonOut != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(jsonOut, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// spawn runs one phase of one backend in a child process and returns its results.
func spawn(ctx context.Context, cfg Config, backend, phase string, run int) ([]Result, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"-child", "-backend", backend, "-phase", phase, "-run", fmt.Sprint(run), "-dir", cfg.Dir}
	if cfg.Quick {
		args = append(args, "-quick")
	}
	if cfg.ProfileDir != "" {
		args = append(args, "-cpuprofile", cfg.ProfileDir)
	}
	if len(cfg.Only) > 0 {
		var ws []string
		for w := range cfg.Only {
			ws = append(ws, w)
		}
		args = append(args, "-only", strings.Join(ws, ","))
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s (run %d): %w", backend, phase, run, err)
	}
	var res []Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("%s %s: bad child output: %w", backend, phase, err)
	}
	return res, nil
}

func runChild(cfg Config, backend, phase string, run int, partial string) error {
	b, err := backendByName(backend)
	if err != nil {
		return err
	}
	r := &runner{cfg: cfg, b: b, run: run}
	if partial != "" {
		if r.partial, err = os.Create(partial); err != nil {
			return err
		}
		defer func() { _ = r.partial.Close() }()
	}
	switch phase {
	case "writes":
		err = r.writes()
	case "load":
		err = r.load()
	case "reads":
		err = r.reads()
	case "natsstore":
		err = r.natsSuite()
	case "scalebuild":
		err = r.scaleBuild()
	case "scaleopen":
		err = r.scaleOpen()
	default:
		err = fmt.Errorf("unknown phase %q", phase)
	}
	if err != nil {
		return err
	}
	if r.out == nil {
		r.out = []Result{}
	}
	return json.NewEncoder(os.Stdout).Encode(r.out)
}
