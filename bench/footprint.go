package main

import (
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Footprint is what a closed store takes on disk.
type Footprint struct {
	// Allocated is the space allocated to the store's files (st_blocks,
	// like du): what the disk gives up, preallocated space included.
	Allocated int64
	// Unwritten is the part of Allocated in extents reserved but never
	// written (fallocate without a write: batpak's active segment keeps its
	// reservation after Close), found with FIEMAP; 0 where the file system
	// does not answer FIEMAP.
	Unwritten int64
	// Apparent is the sum of the file sizes (a preallocating fallocate
	// extends them).
	Apparent int64
	// Written is Allocated less Unwritten, by kind of file (the
	// extension, or the name without its number: "seg", "checkpoint",
	// "sst", "MANIFEST", "log", ...).
	Written map[string]int64
	// FiemapErr says why Unwritten could not be measured, if it could not.
	FiemapErr string `json:",omitempty"`
}

// WrittenTotal is the space of the written data: Allocated less Unwritten.
func (f Footprint) WrittenTotal() int64 { return f.Allocated - f.Unwritten }

// diskFootprint measures the files under dir.
func diskFootprint(dir string) (Footprint, error) {
	fp := Footprint{Written: map[string]int64{}}
	err := filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if err != nil || !de.Type().IsRegular() {
			return err
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		alloc := fi.Size()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			alloc = st.Blocks * 512
		}
		unwritten, ferr := unwrittenBytes(path)
		if ferr != nil && fp.FiemapErr == "" {
			fp.FiemapErr = ferr.Error()
		}
		unwritten = min(unwritten, alloc)
		fp.Allocated += alloc
		fp.Unwritten += unwritten
		fp.Apparent += fi.Size()
		fp.Written[fileKind(de.Name())] += alloc - unwritten
		return nil
	})
	return fp, err
}

// fileKind names the kind of a store file: its extension if it has a
// non-numeric one, else its name up to the first digit or separator.
func fileKind(name string) string {
	if ext := filepath.Ext(name); len(ext) > 1 && strings.Trim(ext[1:], "0123456789") != "" {
		return ext[1:]
	}
	if i := strings.IndexAny(name, "0123456789-_."); i > 0 {
		return name[:i]
	}
	if name == "" || strings.Trim(name, "0123456789") == "" {
		return "numbered"
	}
	return name
}

// FIEMAP (linux/fiemap.h), which golang.org/x/sys/unix does not define.
const (
	fsIocFiemap           = 0xC020660B // _IOWR('f', 11, struct fiemap)
	fiemapFlagSync        = 0x1
	fiemapExtentLast      = 0x1
	fiemapExtentUnwritten = 0x800
	fiemapHeader          = 32 // struct fiemap without its extents
	fiemapExtentSize      = 56 // struct fiemap_extent
	fiemapBatch           = 128
)

// unwrittenBytes sums the extents of path that FIEMAP reports as
// unwritten: allocated by fallocate and never written, which read as zeros.
func unwrittenBytes(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	buf := make([]uint64, (fiemapHeader+fiemapBatch*fiemapExtentSize)/8) // 8-aligned
	b := unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), len(buf)*8)
	le := binary.LittleEndian
	var total int64
	start := uint64(0)
	for {
		clear(buf)
		le.PutUint64(b[0:], start)           // fm_start
		le.PutUint64(b[8:], ^uint64(0))      // fm_length: to the end
		le.PutUint32(b[16:], fiemapFlagSync) // fm_flags
		le.PutUint32(b[24:], fiemapBatch)    // fm_extent_count
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fsIocFiemap, uintptr(unsafe.Pointer(&buf[0])))
		if errno != 0 {
			return 0, &os.PathError{Op: "fiemap", Path: path, Err: errno}
		}
		n := int(le.Uint32(b[20:])) // fm_mapped_extents
		if n == 0 {
			return total, nil
		}
		for i := range n {
			e := b[fiemapHeader+i*fiemapExtentSize:]
			logical, length, flags := le.Uint64(e[0:]), le.Uint64(e[16:]), le.Uint32(e[40:])
			if flags&fiemapExtentUnwritten != 0 {
				total += int64(length)
			}
			start = logical + length
			if flags&fiemapExtentLast != 0 {
				return total, nil
			}
		}
		if n < fiemapBatch {
			return total, nil
		}
	}
}

// addFootprint adds the disk rows of a closed store of n events: all
// allocated blocks (as du counts them), and the written part of them, by
// kind of file in Extra (bytes per event).
func (r *runner) addFootprint(fp Footprint, n int) {
	per := func(b int64) float64 { return float64(b) / float64(n) }
	extra := map[string]float64{"allocated_bytes": float64(fp.Allocated), "unwritten_bytes": float64(fp.Unwritten), "apparent_bytes": float64(fp.Apparent)}
	for kind, b := range fp.Written {
		extra["per_event_"+kind] = per(b)
	}
	r.add(Result{Row: "bytes on disk per event", Value: per(fp.Allocated), Unit: "bytes", Ops: n, Extra: extra})
	r.add(Result{Row: "bytes on disk per event, written", Value: per(fp.WrittenTotal()), Unit: "bytes", Ops: n, Extra: extra, Note: fp.FiemapErr})
}

// heapAfterOpen adds the memory rows of a store just opened (and read
// once) holding n events: the live Go heap after a collection, and the
// anonymous memory of the process, which also counts what a backend
// allocates outside the Go heap (SQLite's page cache).
func (r *runner) heapAfterOpen(n int) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.add(Result{Row: "heap after open + first read", Value: float64(ms.HeapAlloc) / (1 << 20), Unit: "MiB", Ops: n})
	r.add(Result{Row: "heap after open, bytes per event", Value: float64(ms.HeapAlloc) / float64(n), Unit: "bytes", Ops: n})
	r.add(Result{Row: "anon RSS after open + first read", Value: procStatusMiB("RssAnon"), Unit: "MiB", Ops: n})
}
