package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Limits are the physical limits of this machine, measured in the same
// run as the workloads, in the same directory.
type Limits struct {
	// Fsyncs per second: 512-byte write + fdatasync, appending (the file
	// grows each time), into a fallocated file (as batpak does), and
	// overwriting blocks already written (no metadata to sync at all).
	FsyncAppend    float64 `json:"fsync_append_per_s"`
	FsyncFallocate float64 `json:"fsync_fallocated_per_s"`
	FsyncOverwrite float64 `json:"fsync_overwrite_per_s"`
	// Fsyncs per second of a 32 KiB write into a fallocated file: about
	// the bytes of a 100-event batch, the sync cost W2 cannot go below.
	FsyncBatch float64 `json:"fsync_32k_per_s"`
	// Sequential write bandwidth: 1 MiB writes, then one fdatasync.
	WriteMiBps float64 `json:"seq_write_mib_per_s"`
	// Decoding the 200-byte msgpack payload into a struct, one core.
	DecodeNs float64 `json:"msgpack_decode_ns"`
}

// Fsync is the best of the three fsync rates: the disk's limit.
func (l Limits) Fsync() float64 { return max(l.FsyncAppend, l.FsyncFallocate, l.FsyncOverwrite) }

// fsyncNow measures the fsync rate right now (the better of appending and
// fallocated, d each): the reference a durable workload is compared with.
func fsyncNow(dir string, d time.Duration) (float64, error) {
	a, err := fsyncRate(dir, d, "append")
	if err != nil {
		return 0, err
	}
	f, err := fsyncRate(dir, d, "fallocate")
	return max(a, f), err
}

// DecodeRate is the replay rate if decoding were the only cost.
func (l Limits) DecodeRate() float64 { return 1e9 / l.DecodeNs }

func measureLimits(dir string, quick bool) (Limits, error) {
	d, bw := 500*time.Millisecond, int64(256<<20)
	if quick {
		d, bw = 100*time.Millisecond, 64<<20
	}
	// The disk is shared and noisy: alternate the three fsync patterns
	// over three rounds and keep the median of each.
	var rates [4][]float64
	for range 3 {
		for i, how := range []string{"append", "fallocate", "overwrite", "batch"} {
			r, err := fsyncRate(dir, d, how)
			if err != nil {
				return Limits{}, err
			}
			rates[i] = append(rates[i], r)
		}
	}
	l := Limits{FsyncAppend: median(rates[0]), FsyncFallocate: median(rates[1]), FsyncOverwrite: median(rates[2]), FsyncBatch: median(rates[3])}
	var err error
	if l.WriteMiBps, err = writeBandwidth(dir, bw); err != nil {
		return l, err
	}
	l.DecodeNs, err = decodeCost(3 * d)
	return l, err
}

// medianLimits combines the limits measured before each run.
func medianLimits(ls []Limits) Limits {
	pick := func(f func(Limits) float64) float64 {
		xs := make([]float64, len(ls))
		for i, l := range ls {
			xs[i] = f(l)
		}
		return median(xs)
	}
	return Limits{
		FsyncAppend:    pick(func(l Limits) float64 { return l.FsyncAppend }),
		FsyncFallocate: pick(func(l Limits) float64 { return l.FsyncFallocate }),
		FsyncOverwrite: pick(func(l Limits) float64 { return l.FsyncOverwrite }),
		FsyncBatch:     pick(func(l Limits) float64 { return l.FsyncBatch }),
		WriteMiBps:     pick(func(l Limits) float64 { return l.WriteMiBps }),
		DecodeNs:       pick(func(l Limits) float64 { return l.DecodeNs }),
	}
}

// fsyncRate measures write + fdatasync per second: 512-byte writes
// appending ("append"), into a fallocated file ("fallocate"), over written
// blocks ("overwrite"), or 32 KiB writes into a fallocated file ("batch").
func fsyncRate(dir string, d time.Duration, how string) (float64, error) {
	const span = 64 << 20
	size := 512
	f, err := os.CreateTemp(dir, "fsync-")
	if err != nil {
		return 0, err
	}
	defer func() { _ = os.Remove(f.Name()); _ = f.Close() }()
	fd := int(f.Fd())
	switch how {
	case "batch":
		size = 32 << 10
		fallthrough
	case "fallocate":
		if err := unix.Fallocate(fd, 0, 0, span); err != nil {
			return 0, err
		}
	case "overwrite":
		if _, err := f.Write(make([]byte, span)); err != nil {
			return 0, err
		}
	}
	if err := unix.Fsync(fd); err != nil {
		return 0, err
	}
	buf := bytes.Repeat([]byte{0xa5}, size)
	start := time.Now()
	n := 0
	for ; time.Since(start) < d && n < 1_000_000; n++ {
		if _, err := f.WriteAt(buf, int64(n*size)%span); err != nil {
			return 0, err
		}
		if err := unix.Fdatasync(fd); err != nil {
			return 0, err
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func writeBandwidth(dir string, total int64) (float64, error) {
	f, err := os.CreateTemp(dir, "bw-")
	if err != nil {
		return 0, err
	}
	defer func() { _ = os.Remove(f.Name()); _ = f.Close() }()
	buf := make([]byte, 1<<20)
	_, _ = rand.Read(buf)
	start := time.Now()
	for written := int64(0); written < total; written += int64(len(buf)) {
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return 0, err
	}
	return float64(total) / (1 << 20) / time.Since(start).Seconds(), nil
}

func decodeCost(d time.Duration) (float64, error) {
	start := time.Now()
	n := 0
	for ; n < 10_000_000 && (n%1024 != 0 || time.Since(start) < d); n++ {
		if err := decodePayload(payload(n)); err != nil {
			return 0, err
		}
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n), nil
}

// dropCaches evicts dir's files from the page cache and says how: the
// whole page cache when /proc/sys/vm/drop_caches is writable (root),
// otherwise posix_fadvise(DONTNEED) on each file of dir.
func dropCaches(dir string, fadviseOnly bool) (string, error) {
	err := errors.New("not tried")
	if !fadviseOnly {
		unix.Sync()
		if err = os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err == nil {
			return "dropped (sync; echo 3 > /proc/sys/vm/drop_caches)", nil
		}
	}
	ferr := filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if err != nil || !de.Type().IsRegular() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		_ = unix.Fdatasync(int(f.Fd()))
		return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	})
	if ferr != nil {
		return "", ferr
	}
	return fmt.Sprintf("not dropped globally (%v); fadvise(DONTNEED) on the store's files", err), nil
}

// warm reads every file of dir once, so that reads run from the page
// cache. A file that disappears meanwhile (a compaction of the open store)
// is skipped.
func warm(dir string) error {
	return filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || !de.Type().IsRegular() {
			return err
		}
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		_, err = io.Copy(io.Discard, f)
		return err
	})
}

// memWatch tracks the process's peak RSS (the kernel's VmHWM, reset at
// the start) and samples the anonymous part, which leaves out the pages of
// memory-mapped files.
type memWatch struct {
	stopc   chan struct{}
	wg      sync.WaitGroup
	maxAnon atomic.Uint64 // MiB, as float64 bits
}

func startMemWatch() *memWatch {
	runtime.GC()
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // reset VmHWM
	m := &memWatch{stopc: make(chan struct{})}
	m.wg.Go(func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			m.maxAnon.Store(math.Float64bits(max(math.Float64frombits(m.maxAnon.Load()), procStatusMiB("RssAnon"))))
			select {
			case <-m.stopc:
				return
			case <-t.C:
			}
		}
	})
	return m
}

// stop returns the peak RSS and the sampled peak anonymous RSS, in MiB.
func (m *memWatch) stop() (hwm, anon float64) {
	close(m.stopc)
	m.wg.Wait()
	return m.peek()
}

// peek returns the peaks so far, as stop does, and goes on watching.
func (m *memWatch) peek() (hwm, anon float64) {
	return procStatusMiB("VmHWM"), max(math.Float64frombits(m.maxAnon.Load()), procStatusMiB("RssAnon"))
}

func procStatusMiB(field string) float64 { return procStatusMiBOf("self", field) }

// procStatusMiBOf reads a field of /proc/PID/status in MiB (0 if absent).
func procStatusMiBOf(pid, field string) float64 {
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// Machine describes where the run happened.
type Machine struct {
	Date       string `json:"date"`
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	MemoryGiB  int    `json:"memory_gib"`
	Kernel     string `json:"kernel"`
	Filesystem string `json:"filesystem"`
	Go         string `json:"go"`
	LoadAvg    string `json:"loadavg_at_start"`
}

func describeMachine(dir string) Machine {
	m := Machine{Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), Cores: runtime.NumCPU(), Go: runtime.Version()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if rest, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ":"))
				break
			}
		}
	}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		m.MemoryGiB = int((uint64(si.Totalram)*uint64(si.Unit) + 1<<29) >> 30)
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:])
	}
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(data))
		if len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	m.Filesystem = filesystemOf(dir)
	return m
}

// filesystemOf names the type and device of the mount holding dir.
func filesystemOf(dir string) string {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "?"
	}
	best, desc := "", "?"
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		mp := f[1]
		if (dir == mp || strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			best, desc = mp, f[2]+" on "+f[0]
		}
	}
	return desc
}
