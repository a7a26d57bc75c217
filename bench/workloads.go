package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"
)

// Config sizes the workloads.
type Config struct {
	Quick      bool
	Dir        string        // this invocation's directory (removed at the end)
	WriteTime  time.Duration // each write workload runs this long...
	MaxOps     int           // ...or until this many events
	ReadTime   time.Duration // W4 runs this long
	Streams    int           // read dataset: Streams × PerStream events
	PerStream  int
	ProfileDir string          // CPU profile per workload of the first run, if set
	Only       map[string]bool // workload ids (W1...W6); empty: all
	// FadviseOnly evicts only the store's files from the page cache in W6
	// (tests: leaves the rest of the machine's cache alone).
	FadviseOnly bool `json:"-"`
	// NatsOpenEvents sizes the Open dataset of the natsstore rows
	// (-natsstore); 0: 1,000,000, or 100,000 with Quick.
	NatsOpenEvents int `json:",omitempty"`
	// ScaleMem bounds the anonymous memory of a -scale child, in bytes
	// (the parent kills a child that passes it; 0: no bound).
	ScaleMem int64 `json:",omitempty"`
}

func fullConfig() Config {
	return Config{WriteTime: 2 * time.Second, MaxOps: 2_000_000, ReadTime: 2 * time.Second, Streams: 10_000, PerStream: 100}
}

func quickConfig() Config {
	return Config{Quick: true, WriteTime: 250 * time.Millisecond, MaxOps: 200_000, ReadTime: 250 * time.Millisecond, Streams: 1_000, PerStream: 100}
}

func (c Config) events() int { return c.Streams * c.PerStream }

func (c Config) want(id string) bool { return len(c.Only) == 0 || c.Only[id] }

func (c Config) wantReads() bool { return c.want("W4") || c.want("W5") || c.want("W6") }

// Result is one measurement of one run.
type Result struct {
	Backend string             `json:"backend"`
	Row     string             `json:"row"` // the table row, e.g. "W1 durable"
	Run     int                `json:"run"`
	Value   float64            `json:"value"`
	Unit    string             `json:"unit"`
	Ops     int                `json:"ops,omitempty"`
	Seconds float64            `json:"seconds,omitempty"`
	Extra   map[string]float64 `json:"extra,omitempty"`
	Note    string             `json:"note,omitempty"`
	// FsyncAlongside is the fsync rate measured right before and after a
	// durable write workload (the mean of the two).
	FsyncAlongside float64 `json:"fsync_alongside,omitempty"`
}

// statser is implemented by adapters with counters worth keeping.
type statser interface{ Extra() map[string]float64 }

// checkpointDropper is implemented by batpak: W6 also runs without its checkpoint.
type checkpointDropper interface{ DropCheckpoint(dir string) error }

// runner runs one phase of one backend in a child process.
type runner struct {
	cfg Config
	b   Backend
	run int
	out []Result
	// partial, if set, gets each result as a JSON line as soon as it is
	// measured.
	partial *os.File
}

func (r *runner) add(res Result) {
	res.Backend, res.Run = r.b.Name(), r.run
	r.out = append(r.out, res)
	if r.partial != nil { // a -scale child: what it measured survives a kill
		_ = json.NewEncoder(r.partial).Encode(res)
	}
}

func modeName(durable bool) string {
	if durable {
		return "durable"
	}
	return "relaxed"
}

func streamName(i int) string { return fmt.Sprintf("s-%05d", i) }

func one(i int) [][]byte { return [][]byte{payload(i)} }

// profile runs fn under the CPU profiler on the first run when -cpuprofile is set.
func (r *runner) profile(row string, fn func() error) error {
	if r.cfg.ProfileDir == "" || r.run != 1 {
		return fn()
	}
	name := fmt.Sprintf("%s-%s.pprof", r.b.Name(), sanitize(row))
	f, err := os.Create(filepath.Join(r.cfg.ProfileDir, name))
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	defer pprof.StopCPUProfile()
	return fn()
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}
