// Package faultfs is a [vfs.FS] for tests: it wraps a real file system
// (normally [vfs.OSFS]) and can fail any call, write only part of a
// buffer, run out of space, and simulate a power loss.
//
// # Counting and faults
//
// Every open, read, write, sync, truncate, preallocate, rename, remove,
// mkdir, readdir and directory sync is a counted call, numbered from 1 and
// recorded in [FS.Log]. Stat and Close are passed through uncounted (Close
// always closes the real file, so an abandoned store can release its files
// even after a crash). A [Fault] fails the n-th matching call counted from
// the moment it is injected: of any kind ([FS.FailAt]), of one kind
// ([FS.FailOn]), a write that writes part of its buffer first
// ([FS.ShortWriteAt]), or a crash ([FS.CrashAt]): that call and every later
// one fail with [ErrCrashed], as if the machine had stopped. A failed call
// changes nothing on disk, except the bytes a short write wrote. Errors are
// wrapped in *fs.PathError (*os.LinkError for a rename), so errors.Is finds
// the injected error (for example syscall.ENOSPC).
//
// # Disk full
//
// [FS.SetFull](true) turns every write or preallocation that would need new
// space into ENOSPC until SetFull(false). "New space" is measured by file
// size: bytes below a file's current size (written or preallocated) are
// allocated, bytes at or beyond it are not, so a write into preallocated
// space succeeds and a write that grows the file writes the part below the
// old size and fails with ENOSPC. Space freed while full (a truncate, a
// remove) is not handed out again: the disk stays full until SetFull(false).
// Creating files and directories and growing a file with Truncate (sparse)
// still succeed; sparse holes are not modelled.
//
// # Power loss
//
// The FS keeps, for every file it has changed, a copy of its current
// content and of its content as of its last successful Sync, and for every
// directory it has seen, its current entries and its entries as of its last
// successful SyncDir. Files and directories that exist when the FS first
// looks into their directory are taken to be durable as they are.
// [FS.PowerLoss] stops the FS (as [FS.Crash] does) and rewrites the real
// directories to what a power loss now could leave in the most pessimistic
// case the model knows:
//
//   - a file keeps only its content and size as of its last successful
//     Sync: bytes written, truncations and preallocations after it are
//     undone; a file never synced is empty;
//   - a directory keeps only its entries as of its last successful SyncDir:
//     a file or directory created or renamed into it since then disappears
//     (a directory with everything in it), one removed or renamed away
//     reappears with its last synced content, and a rename over an existing
//     name brings the old file back;
//   - a failed Sync or SyncDir makes nothing durable (after a failed fsync
//     the kernel may have dropped the dirty pages).
//
// [FS.PowerLossKeepingEntries] is the other outcome for directories: every
// directory operation persisted, file data still only up to the last Sync
// (the "renamed into place, but empty" outcome of a journaling file system
// that commits metadata before data).
//
// The model does not cover: partial persistence of unsynced data (a prefix
// of the writes, torn sectors, reordered writes; every unsynced byte is
// dropped); files and directories changed behind the FS's back (the store's
// LOCK file is created with the os package and left alone); symlinks, hard
// links and renamed directories beyond moving their entries; file modes and
// times; metadata such as the size made durable by anything but a Sync of
// that file. A process crash without power loss needs no model: the page
// cache survives it, so abandoning the store (or [FS.Crash]) is enough.
//
// The FS serialises every call on one mutex and performs the real call
// under it, so the log order is the order on disk. It is meant for tests
// with small stores: it holds a copy of every file it changes in memory.
package faultfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
)

// ErrCrashed is returned by every call after a crash ([FS.Crash],
// [FS.CrashAt], [FS.PowerLoss]) until [FS.Restart].
var ErrCrashed = errors.New("faultfs: the machine crashed")

// Op is a kind of counted call.
type Op uint8

// The counted calls.
const (
	OpOpen Op = iota + 1
	OpRead
	OpWrite
	OpSync
	OpTruncate
	OpPreallocate
	OpRename
	OpRemove
	OpMkdir
	OpReadDir
	OpSyncDir
	opCount
)

var opNames = [...]string{"", "open", "read", "write", "sync", "truncate", "preallocate", "rename", "remove", "mkdir", "readdir", "syncdir"}

func (o Op) String() string {
	if o > 0 && o < opCount {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Ops lists every kind of counted call.
func Ops() []Op {
	out := make([]Op, 0, opCount-1)
	for o := OpOpen; o < opCount; o++ {
		out = append(out, o)
	}
	return out
}

// Call is one counted call, as recorded in the log.
type Call struct {
	N     int    // number among all counted calls, from 1
	Op    Op     // kind
	Path  string // the file or directory as the caller named it (rename: the old path)
	To    string // rename: the new path
	Flag  int    // open: the flags
	Off   int64  // read, write: offset; truncate, preallocate: size
	Len   int    // read, write: bytes asked for
	Done  int    // read, write: bytes done
	Err   error  // what the call returned
	Fault bool   // the error was injected (or the FS had crashed)
}

func (c Call) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d %s %s", c.N, c.Op, filepath.Base(c.Path))
	switch c.Op {
	case OpRename:
		fmt.Fprintf(&b, " -> %s", filepath.Base(c.To))
	case OpOpen:
		if c.Flag&os.O_CREATE != 0 {
			b.WriteString(" create")
		}
		if c.Flag&(os.O_WRONLY|os.O_RDWR) != 0 {
			b.WriteString(" rw")
		}
	case OpRead, OpWrite:
		fmt.Fprintf(&b, " @%d+%d", c.Off, c.Len)
		if c.Done != c.Len {
			fmt.Fprintf(&b, " (did %d)", c.Done)
		}
	case OpTruncate, OpPreallocate:
		fmt.Fprintf(&b, " %d", c.Off)
	}
	if c.Err != nil {
		fmt.Fprintf(&b, ": %v", c.Err)
		if c.Fault {
			b.WriteString(" [injected]")
		}
	}
	return b.String()
}

// Fault is an injected failure. It fires at the Nth call, counted from the
// moment it is injected, that matches Op and Match.
type Fault struct {
	Op    Op              // only calls of this kind; 0 for any counted call
	Nth   int             // fire at the Nth matching call (0 or 1: the next one)
	Match func(Call) bool // optional further filter (Op, Path, To, Flag, Off and Len are set)
	// Err is returned, wrapped in a *fs.PathError; nil means syscall.EIO.
	Err error
	// Short makes a write write this many bytes of its buffer before it
	// fails (a negative value: half of it). Other calls ignore it.
	Short int
	// Repeat keeps failing every later matching call once the fault fired.
	Repeat bool
	// Crash makes the call a crash: it and every later call fail with
	// ErrCrashed (Err and Short are ignored).
	Crash bool
}

type faultState struct {
	Fault
	seen  int
	fired bool
}

// FS is the fault-injecting file system. Its zero value is not usable: use [New].
type FS struct {
	base vfs.FS

	mu      sync.Mutex
	n       int
	counts  [opCount]int
	log     []Call
	faults  []*faultState
	full    bool
	crashed bool
	dirs    map[string]*dirState
}

// New returns an FS over base (the real file system: [vfs.OSFS] when
// base is nil). Only files and directories reached through the returned FS
// are modelled.
func New(base vfs.FS) *FS {
	if base == nil {
		base = vfs.OSFS{}
	}
	return &FS{base: base, dirs: make(map[string]*dirState)}
}

// node is a file or directory the FS knows.
type node struct {
	dir  bool
	path string // current absolute path
	// loaded: data and size mirror the real file and ddata, dsize hold
	// its durable content. An unloaded file was never changed through the
	// FS: its real content is its durable content.
	loaded bool
	data   []byte // current content; bytes from len(data) to size are zeros
	size   int64
	ddata  []byte // content as of the last successful Sync
	dsize  int64
}

// dirState is what the FS knows of one directory.
type dirState struct {
	path    string
	self    *node // this directory's entry in its parent, if the FS created it
	live    map[string]*node
	durable map[string]*node
}

func (n *node) write(b []byte, off int64) {
	if len(b) == 0 {
		return
	}
	end := off + int64(len(b))
	if old := int64(len(n.data)); end > old {
		if end > int64(cap(n.data)) {
			nd := make([]byte, end, max(end, 2*int64(cap(n.data))))
			copy(nd, n.data)
			n.data = nd
		} else {
			n.data = n.data[:end]
			clear(n.data[old:])
		}
	}
	copy(n.data[off:], b)
	n.size = max(n.size, end)
}

func (n *node) truncate(size int64) {
	if size < int64(len(n.data)) {
		n.data = n.data[:size]
	}
	n.size = size
}

// --- faults and counting ---

// Inject adds a fault.
func (f *FS) Inject(ft Fault) {
	if ft.Nth <= 0 {
		ft.Nth = 1
	}
	if ft.Err == nil {
		ft.Err = syscall.EIO
	}
	f.mu.Lock()
	f.faults = append(f.faults, &faultState{Fault: ft})
	f.mu.Unlock()
}

// FailAt fails the n-th counted call from now, of any kind, with err (nil: EIO).
func (f *FS) FailAt(n int, err error) { f.Inject(Fault{Nth: n, Err: err}) }

// FailOn fails the nth call of kind op from now with err (nil: EIO).
func (f *FS) FailOn(op Op, nth int, err error) { f.Inject(Fault{Op: op, Nth: nth, Err: err}) }

// ShortWriteAt makes the nth write from now write only keep bytes of its
// buffer (a negative keep: half) and fail with err (nil: EIO).
func (f *FS) ShortWriteAt(nth, keep int, err error) {
	if keep == 0 {
		keep = -1
	}
	f.Inject(Fault{Op: OpWrite, Nth: nth, Err: err, Short: keep})
}

// CrashAt crashes the machine at the n-th counted call from now: that call
// and every later one fail with [ErrCrashed].
func (f *FS) CrashAt(n int) { f.Inject(Fault{Nth: n, Crash: true}) }

// ClearFaults removes every injected fault that has not fired yet (and
// every repeating one).
func (f *FS) ClearFaults() {
	f.mu.Lock()
	f.faults = nil
	f.mu.Unlock()
}

// SetFull turns the disk-full mode on or off (see the package doc).
func (f *FS) SetFull(full bool) {
	f.mu.Lock()
	f.full = full
	f.mu.Unlock()
}

// Full reports whether the disk-full mode is on.
func (f *FS) Full() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.full
}

// Calls returns the number of counted calls so far.
func (f *FS) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// Count returns the number of counted calls of kind op so far.
func (f *FS) Count(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if op >= opCount {
		return 0
	}
	return f.counts[op]
}

// Log returns a copy of the log of counted calls since New, or since the
// last [FS.ResetLog].
func (f *FS) Log() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

// ResetLog empties the log (the call numbers go on).
func (f *FS) ResetLog() {
	f.mu.Lock()
	f.log = nil
	f.mu.Unlock()
}

// Crash stops the machine: every later counted call fails with
// [ErrCrashed] and changes nothing. Close still closes the real files, so
// the store that used the FS can be closed to release them.
func (f *FS) Crash() {
	f.mu.Lock()
	f.crashed = true
	f.mu.Unlock()
}

// Crashed reports whether the FS has crashed.
func (f *FS) Crashed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.crashed
}

// Restart ends a crash: calls reach the disk again. Faults are cleared; the
// counters and the log go on. After a [FS.PowerLoss] the model starts from
// what the power loss left; after a [FS.Crash] alone (a process crash) the
// unsynced data are still on disk and still unsynced.
func (f *FS) Restart() {
	f.mu.Lock()
	f.crashed = false
	f.faults = nil
	f.mu.Unlock()
}

// begin counts a call and decides whether it fails. It returns the fault
// to apply, if any. f.mu is held.
func (f *FS) begin(c *Call) *faultState {
	f.n++
	f.counts[c.Op]++
	c.N = f.n
	if f.crashed {
		c.Fault = true
		return &faultState{Fault: Fault{Err: ErrCrashed}}
	}
	var hit *faultState
	for _, ft := range f.faults {
		if (ft.Op != 0 && ft.Op != c.Op) || (ft.Match != nil && !ft.Match(*c)) {
			continue
		}
		ft.seen++
		if ft.seen == ft.Nth || (ft.fired && ft.Repeat) {
			if hit != nil { // one fault per call: this one takes the next
				ft.Nth++
				continue
			}
			ft.fired = true
			hit = ft
		}
	}
	f.faults = slices.DeleteFunc(f.faults, func(ft *faultState) bool { return ft.fired && !ft.Repeat })
	if hit == nil {
		return nil
	}
	c.Fault = true
	if hit.Crash {
		f.crashed = true
		return &faultState{Fault: Fault{Err: ErrCrashed}}
	}
	return hit
}

// end records a finished call and returns its error.
func (f *FS) end(c *Call, done int, err error) error {
	c.Done, c.Err = done, err
	f.log = append(f.log, *c)
	return err
}

func pathErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	return &fs.PathError{Op: op, Path: path, Err: err}
}

// --- directories and nodes ---

func absPath(name string) string {
	if p, err := filepath.Abs(name); err == nil {
		return p
	}
	return filepath.Clean(name)
}

// see returns the state of directory abs, listing it on first sight: what
// is there then is taken to be durable.
func (f *FS) see(abs string) *dirState {
	if d := f.dirs[abs]; d != nil {
		return d
	}
	d := &dirState{path: abs, live: make(map[string]*node), durable: make(map[string]*node)}
	if des, err := f.base.ReadDir(abs); err == nil {
		for _, de := range des {
			n := &node{dir: de.IsDir(), path: filepath.Join(abs, de.Name())}
			d.live[de.Name()], d.durable[de.Name()] = n, n
		}
	}
	f.dirs[abs] = d
	return d
}

// lookup returns the node at abs (nil if there is none), adopting as
// durable a file that appeared behind the FS's back.
func (f *FS) lookup(abs string) (*dirState, string, *node) {
	d := f.see(filepath.Dir(abs))
	name := filepath.Base(abs)
	if n := d.live[name]; n != nil {
		return d, name, n
	}
	fi, err := f.stat(abs)
	if err != nil {
		return d, name, nil
	}
	n := &node{dir: fi.IsDir(), path: abs}
	d.live[name] = n
	if d.durable[name] == nil {
		d.durable[name] = n
	}
	return d, name, n
}

func (f *FS) stat(abs string) (fs.FileInfo, error) {
	h, err := f.base.OpenFile(abs, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer func() { _ = h.Close() }()
	return h.Stat()
}

// load mirrors the real content of an unloaded file, which is also its
// durable content.
func (f *FS) load(n *node) error {
	if n == nil || n.loaded || n.dir {
		return nil
	}
	h, err := f.base.OpenFile(n.path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("faultfs: load %s: %w", n.path, err)
	}
	defer func() { _ = h.Close() }()
	fi, err := h.Stat()
	if err != nil {
		return fmt.Errorf("faultfs: load %s: %w", n.path, err)
	}
	buf := make([]byte, fi.Size())
	if _, err := h.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("faultfs: load %s: %w", n.path, err)
	}
	k := len(buf)
	for k > 0 && buf[k-1] == 0 {
		k--
	}
	n.data, n.size = bytes.Clone(buf[:k]), int64(len(buf))
	n.ddata, n.dsize = bytes.Clone(n.data), n.size
	n.loaded = true
	return nil
}

// --- vfs.FS ---

// OpenFile opens name. Opening a file for writing makes the FS mirror it.
func (f *FS) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := Call{Op: OpOpen, Path: name, Flag: flag}
	if ft := f.begin(&c); ft != nil {
		return nil, f.end(&c, 0, pathErr("open", name, ft.Err))
	}
	abs := absPath(name)
	d, base, n := f.lookup(abs)
	writable := flag&(os.O_WRONLY|os.O_RDWR) != 0
	if n != nil && !n.dir && (writable || flag&os.O_TRUNC != 0) {
		if err := f.load(n); err != nil {
			return nil, f.end(&c, 0, err)
		}
	}
	inner, err := f.base.OpenFile(name, flag, perm)
	if err != nil {
		return nil, f.end(&c, 0, err)
	}
	if n == nil {
		n = &node{path: abs, loaded: true}
		d.live[base] = n
	}
	if flag&os.O_TRUNC != 0 && !n.dir {
		n.truncate(0)
	}
	return &fileHandle{fs: f, inner: inner, n: n, name: name}, f.end(&c, 0, nil)
}

// ReadDir lists name.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := Call{Op: OpReadDir, Path: name}
	if ft := f.begin(&c); ft != nil {
		return nil, f.end(&c, 0, pathErr("readdir", name, ft.Err))
	}
	f.see(absPath(name))
	des, err := f.base.ReadDir(name)
	return des, f.end(&c, 0, err)
}

// Rename renames oldpath to newpath.
func (f *FS) Rename(oldpath, newpath string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := Call{Op: OpRename, Path: oldpath, To: newpath}
	if ft := f.begin(&c); ft != nil {
		return f.end(&c, 0, &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: ft.Err})
	}
	absOld, absNew := absPath(oldpath), absPath(newpath)
	od, oname, src := f.lookup(absOld)
	nd, nname, dst := f.lookup(absNew)
	for _, n := range []*node{src, dst} {
		if err := f.load(n); err != nil {
			return f.end(&c, 0, err)
		}
	}
	if err := f.base.Rename(oldpath, newpath); err != nil {
		return f.end(&c, 0, err)
	}
	if src != nil {
		delete(od.live, oname)
		nd.live[nname] = src
		f.moved(absOld, absNew, src)
	}
	return f.end(&c, 0, nil)
}

// moved updates the paths of a renamed node and, for a directory, of the
// directories and files under it.
func (f *FS) moved(from, to string, n *node) {
	n.path = to
	if !n.dir {
		return
	}
	for _, p := range slices.Collect(maps.Keys(f.dirs)) {
		if p != from && !strings.HasPrefix(p, from+string(filepath.Separator)) {
			continue
		}
		d := f.dirs[p]
		np := to + strings.TrimPrefix(p, from)
		delete(f.dirs, p)
		d.path = np
		f.dirs[np] = d
		for name, c := range d.live {
			c.path = filepath.Join(np, name)
		}
	}
}

// Remove removes name.
func (f *FS) Remove(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := Call{Op: OpRemove, Path: name}
	if ft := f.begin(&c); ft != nil {
		return f.end(&c, 0, pathErr("remove", name, ft.Err))
	}
	d, base, n := f.lookup(absPath(name))
	if err := f.load(n); err != nil {
		return f.end(&c, 0, err)
	}
	if err := f.base.Remove(name); err != nil {
		return f.end(&c, 0, err)
	}
	delete(d.live, base)
	return f.end(&c, 0, nil)
}

// MkdirAll creates path and its missing parents.
func (f *FS) MkdirAll(path string, perm fs.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := Call{Op: OpMkdir, Path: path}
	if ft := f.begin(&c); ft != nil {
		return f.end(&c, 0, pathErr("mkdir", path, ft.Err))
	}
	abs := absPath(path)
	var missing []string
	for p := abs; ; p = filepath.Dir(p) {
		if _, err := f.stat(p); err == nil || filepath.Dir(p) == p {
			break
		}
		missing = append(missing, p)
	}
	slices.Reverse(missing)
	if len(missing) > 0 {
		f.see(filepath.Dir(missing[0])) // before the new entries appear in it
	}
	if err := f.base.MkdirAll(path, perm); err != nil {
		return f.end(&c, 0, err)
	}
	for _, p := range missing {
		n := &node{dir: true, path: p}
		f.see(filepath.Dir(p)).live[filepath.Base(p)] = n
		f.dirs[p] = &dirState{path: p, self: n, live: make(map[string]*node), durable: make(map[string]*node)}
	}
	f.see(abs)
	return f.end(&c, 0, nil)
}

// SyncDir makes the entries of directory name durable.
func (f *FS) SyncDir(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := Call{Op: OpSyncDir, Path: name}
	if ft := f.begin(&c); ft != nil {
		return f.end(&c, 0, pathErr("syncdir", name, ft.Err))
	}
	d := f.see(absPath(name))
	if err := f.base.SyncDir(name); err != nil {
		return f.end(&c, 0, err)
	}
	d.durable = maps.Clone(d.live)
	return f.end(&c, 0, nil)
}

// Preallocate reserves size bytes for file through the base file system.
func (f *FS) Preallocate(file vfs.File, size int64) error {
	h, ok := file.(*fileHandle)
	if !ok {
		return f.base.Preallocate(file, size)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := Call{Op: OpPreallocate, Path: h.name, Off: size}
	if ft := f.begin(&c); ft != nil {
		return f.end(&c, 0, pathErr("fallocate", h.name, ft.Err))
	}
	if err := f.load(h.n); err != nil {
		return f.end(&c, 0, err)
	}
	if f.full && size > h.n.size {
		return f.end(&c, 0, pathErr("fallocate", h.name, syscall.ENOSPC))
	}
	if err := f.base.Preallocate(h.inner, size); err != nil {
		return f.end(&c, 0, err)
	}
	if fi, err := h.inner.Stat(); err == nil { // a no-op preallocation keeps the size
		h.n.size = fi.Size()
	}
	return f.end(&c, 0, nil)
}

// --- files ---

// fileHandle is an open file of the FS.
type fileHandle struct {
	fs    *FS
	inner vfs.File
	n     *node
	name  string
}

func (h *fileHandle) ReadAt(b []byte, off int64) (int, error) {
	f := h.fs
	f.mu.Lock()
	defer f.mu.Unlock()
	c := Call{Op: OpRead, Path: h.name, Off: off, Len: len(b)}
	if ft := f.begin(&c); ft != nil {
		return 0, f.end(&c, 0, pathErr("read", h.name, ft.Err))
	}
	n, err := h.inner.ReadAt(b, off)
	return n, f.end(&c, n, err)
}

func (h *fileHandle) WriteAt(b []byte, off int64) (int, error) {
	f := h.fs
	f.mu.Lock()
	defer f.mu.Unlock()
	c := Call{Op: OpWrite, Path: h.name, Off: off, Len: len(b)}
	if ft := f.begin(&c); ft != nil {
		done := 0
		if !f.crashed && ft.Short != 0 {
			k := ft.Short
			if k < 0 {
				k = len(b) / 2
			}
			done = h.write(b[:min(k, len(b))], off)
		}
		return done, f.end(&c, done, pathErr("write", h.name, ft.Err))
	}
	if err := f.load(h.n); err != nil {
		return 0, f.end(&c, 0, err)
	}
	if f.full && off+int64(len(b)) > h.n.size {
		room := max(0, min(h.n.size-off, int64(len(b))))
		done := h.write(b[:room], off)
		return done, f.end(&c, done, pathErr("write", h.name, syscall.ENOSPC))
	}
	done, err := h.inner.WriteAt(b, off)
	h.n.write(b[:done], off)
	return done, f.end(&c, done, err)
}

// write writes b for real and mirrors what was written (a short write's
// part). Its own error is dropped: the caller reports the injected one.
func (h *fileHandle) write(b []byte, off int64) int {
	if len(b) == 0 || h.fs.load(h.n) != nil {
		return 0
	}
	done, _ := h.inner.WriteAt(b, off)
	h.n.write(b[:done], off)
	return done
}

func (h *fileHandle) Sync() error {
	f := h.fs
	f.mu.Lock()
	defer f.mu.Unlock()
	c := Call{Op: OpSync, Path: h.name}
	if ft := f.begin(&c); ft != nil {
		return f.end(&c, 0, pathErr("fdatasync", h.name, ft.Err))
	}
	if err := h.inner.Sync(); err != nil {
		return f.end(&c, 0, err)
	}
	if n := h.n; n.loaded {
		n.ddata, n.dsize = bytes.Clone(n.data), n.size
	}
	return f.end(&c, 0, nil)
}

func (h *fileHandle) Truncate(size int64) error {
	f := h.fs
	f.mu.Lock()
	defer f.mu.Unlock()
	c := Call{Op: OpTruncate, Path: h.name, Off: size}
	if ft := f.begin(&c); ft != nil {
		return f.end(&c, 0, pathErr("truncate", h.name, ft.Err))
	}
	if err := f.load(h.n); err != nil {
		return f.end(&c, 0, err)
	}
	if err := h.inner.Truncate(size); err != nil {
		return f.end(&c, 0, err)
	}
	h.n.truncate(size)
	return f.end(&c, 0, nil)
}

// Stat is passed through uncounted.
func (h *fileHandle) Stat() (fs.FileInfo, error) { return h.inner.Stat() }

// Close closes the real file, uncounted, even after a crash.
func (h *fileHandle) Close() error { return h.inner.Close() }

// --- power loss ---

// PowerLoss crashes the FS (every later call fails with [ErrCrashed] until
// [FS.Restart]) and rewrites the real directories it knows to what a power
// loss now could leave (see the package doc). Close the store that used
// the FS before or after; it can no longer change anything.
func (f *FS) PowerLoss() error { return f.powerLoss(false) }

// PowerLossKeepingEntries is [FS.PowerLoss] with the other outcome for
// directories: every creation, rename and removal made before the cut
// persisted (as a journaling file system commits them), while file data
// still persist only up to each file's last Sync: a file renamed or
// created since keeps its name and loses its unsynced bytes.
func (f *FS) PowerLossKeepingEntries() error { return f.powerLoss(true) }

func (f *FS) powerLoss(keepEntries bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.crashed = true
	if keepEntries {
		for _, d := range f.dirs {
			d.durable = maps.Clone(d.live)
		}
	}
	paths := slices.Collect(maps.Keys(f.dirs))
	slices.SortFunc(paths, func(a, b string) int {
		if da, db := strings.Count(a, string(filepath.Separator)), strings.Count(b, string(filepath.Separator)); da != db {
			return da - db
		}
		return strings.Compare(a, b)
	})
	var errs []error
	var gone []string
	under := func(p string) bool {
		for _, g := range gone {
			if p == g || strings.HasPrefix(p, g+string(filepath.Separator)) {
				return true
			}
		}
		return false
	}
	for _, p := range paths {
		d := f.dirs[p]
		if under(p) {
			delete(f.dirs, p)
			continue
		}
		if d.self != nil {
			if parent := f.dirs[filepath.Dir(p)]; parent == nil || parent.durable[filepath.Base(p)] != d.self {
				errs = append(errs, f.removeAll(p))
				gone = append(gone, p)
				delete(f.dirs, p)
				continue
			}
		}
		names := slices.Sorted(maps.Keys(d.live))
		for name := range d.durable {
			if d.live[name] == nil {
				names = append(names, name)
			}
		}
		for _, name := range names {
			dn, ln, full := d.durable[name], d.live[name], filepath.Join(p, name)
			switch {
			case dn == nil:
				errs = append(errs, f.removeAll(full))
			case dn.dir:
				if ln != nil && !ln.dir {
					errs = append(errs, f.removeAll(full))
				}
				if ln == nil || !ln.dir {
					errs = append(errs, f.base.MkdirAll(full, 0o700))
				}
			case dn == ln && !dn.loaded:
				// never changed through the FS: as it was
			default:
				if ln != nil && ln.dir {
					errs = append(errs, f.removeAll(full))
				}
				errs = append(errs, f.writeFile(full, dn.ddata, dn.dsize))
			}
		}
	}
	// The model now starts from what is on disk.
	for _, d := range f.dirs {
		d.live = maps.Clone(d.durable)
		for name, n := range d.live {
			n.path = filepath.Join(d.path, name)
			if n.loaded {
				n.data, n.size = bytes.Clone(n.ddata), n.dsize
			}
		}
	}
	return errors.Join(errs...)
}

func (f *FS) writeFile(path string, data []byte, size int64) error {
	h, err := f.base.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, segment.FileMode)
	if err != nil {
		return err
	}
	if len(data) > 0 {
		_, err = h.WriteAt(data, 0)
	}
	if err == nil && size != int64(len(data)) {
		err = h.Truncate(size)
	}
	if err == nil {
		err = h.Sync()
	}
	if cerr := h.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeAll removes path and everything under it through the base FS.
func (f *FS) removeAll(path string) error {
	fi, err := f.stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if fi.IsDir() {
		des, err := f.base.ReadDir(path)
		if err != nil {
			return err
		}
		for _, de := range des {
			if err := f.removeAll(filepath.Join(path, de.Name())); err != nil {
				return err
			}
		}
	}
	if err := f.base.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
