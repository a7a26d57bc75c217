package eventstore_test

// Helpers shared by the durability and recovery tests (crash_test.go,
// torn_tail_test.go, corruption_test.go, fault_test.go, invariants_test.go).
// Every name starts with "dt" so it cannot collide with other test files.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
)

var dtKind = kind.Custom(1, 7)

// dtHangTimeout is how long a test waits for a condition before calling it
// a hang: until shortly before the test binary's deadline (go test
// -timeout). It is a guard, not a performance budget: a loaded machine
// makes the tests slower but never fails them.
func dtHangTimeout(t *testing.T) time.Duration {
	d, ok := t.Deadline()
	if !ok { // go test -timeout 0
		return time.Hour
	}
	left := time.Until(d)
	return left - min(left/10, time.Minute)
}

// dtPayload marks every event the durability tests write: Tag names the
// request, I is the event's index in it and N the request's size, so a
// reader can tell whether an atomic request is whole.
type dtPayload struct {
	Tag string `msgpack:"t"`
	I   int    `msgpack:"i"`
	N   int    `msgpack:"n"`
}

func dtEvent(tag string, i, n int) batpak.Event {
	return batpak.Event{Kind: dtKind, Payload: dtPayload{Tag: tag, I: i, N: n}}
}

func dtEvents(tag string, n int) []batpak.Event {
	evs := make([]batpak.Event, n)
	for i := range evs {
		evs[i] = dtEvent(tag, i, n)
	}
	return evs
}

func dtCoord(entity string) batpak.Coordinate {
	return batpak.Coordinate{Entity: entity, Scope: "dt"}
}

func dtOpen(t testing.TB, dir string, opts ...eventstore.Option) *eventstore.Store {
	t.Helper()
	s, err := eventstore.Open(dir, opts...)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	return s
}

func dtClose(t testing.TB, s *eventstore.Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func dtAppend(t testing.TB, s *eventstore.Store, entity string, evs []batpak.Event, opts ...batpak.AppendOption) []batpak.Receipt {
	t.Helper()
	rs, err := s.Append(context.Background(), dtCoord(entity), evs, opts...)
	if err != nil {
		t.Fatalf("append to %s: %v", entity, err)
	}
	return rs
}

func dtBatch(t testing.TB, s *eventstore.Store, tag string, entities []string, opts ...batpak.AppendOption) []batpak.Receipt {
	t.Helper()
	items := make([]batpak.BatchItem, len(entities))
	for i, e := range entities {
		items[i] = batpak.BatchItem{Coordinate: dtCoord(e), Event: dtEvent(tag, i, len(entities))}
	}
	rs, err := s.AppendBatch(context.Background(), items, opts...)
	if err != nil {
		t.Fatalf("append batch %s: %v", tag, err)
	}
	return rs
}

// dtMixedRequest makes request i of a fixture store, of kind 0 (one keyed
// event), 1 (two events) or 2 (an atomic batch over three streams), tagged
// tag, and returns its receipts.
func dtMixedRequest(t testing.TB, s *eventstore.Store, tag string, i, kind int) []batpak.Receipt {
	t.Helper()
	switch kind {
	case 0:
		return dtAppend(t, s, fmt.Sprintf("acct:%d", i%5), dtEvents(tag, 1), batpak.WithIdempotencyKey(tag))
	case 1:
		return dtAppend(t, s, fmt.Sprintf("acct:%d", i%7), dtEvents(tag, 2))
	default:
		return dtBatch(t, s, tag, []string{"acct:1", "acct:2", "ledger"})
	}
}

// dtReadAll returns every visible event, failing on a read error.
func dtReadAll(t testing.TB, s *eventstore.Store) []batpak.Record {
	t.Helper()
	var out []batpak.Record
	for rec, err := range s.ReadAll(context.Background(), 0) {
		if err != nil {
			t.Fatalf("ReadAll after %d events: %v", len(out), err)
		}
		out = append(out, rec)
	}
	return out
}

// dtCheck verifies the structural invariants of an open store and returns
// its events: ReadAll is dense 1..N in order, every stream's versions are
// dense from 1 and match StreamVersion, every stream's hash chain verifies,
// Get finds every event, and every tagged atomic request is whole and
// contiguous.
func dtCheck(t testing.TB, s *eventstore.Store) []batpak.Record {
	t.Helper()
	recs := dtReadAll(t, s)
	if n := s.LastSequence(); n != uint64(len(recs)) {
		t.Fatalf("LastSequence %d, ReadAll yielded %d events", n, len(recs))
	}
	versions := make(map[batpak.Coordinate]uint64)
	type req struct{ first, seen, size int }
	reqs := make(map[string]*req)
	for i, r := range recs {
		if r.Sequence != uint64(i+1) {
			t.Fatalf("ReadAll position %d has sequence %d", i, r.Sequence)
		}
		e := r.Coordinate
		if r.Version != versions[e]+1 {
			t.Fatalf("sequence %d: %s version %d follows %d", r.Sequence, e, r.Version, versions[e])
		}
		versions[e] = r.Version
		var p dtPayload
		if r.Kind != dtKind || r.Decode(&p) != nil || p.Tag == "" {
			continue
		}
		q := reqs[p.Tag]
		if q == nil {
			q = &req{first: i, size: p.N}
			reqs[p.Tag] = q
		}
		if p.I != q.seen || i != q.first+q.seen || p.N != q.size {
			t.Fatalf("request %s: event %d/%d at sequence %d, expected event %d at sequence %d (duplicate or torn request)",
				p.Tag, p.I, p.N, r.Sequence, q.seen, q.first+q.seen+1)
		}
		q.seen++
	}
	for tag, q := range reqs {
		if q.seen != q.size {
			t.Fatalf("request %s: %d of its %d events are visible (an atomic request was torn)", tag, q.seen, q.size)
		}
	}
	for e, v := range versions {
		if got := s.StreamVersion(e); got != v {
			t.Fatalf("StreamVersion(%s) = %d, ReadAll saw %d", e, got, v)
		}
		if err := s.VerifyChain(context.Background(), e); err != nil {
			t.Fatalf("VerifyChain(%s): %v", e, err)
		}
	}
	for _, r := range recs {
		g, err := s.Get(context.Background(), r.ID)
		if err != nil {
			t.Fatalf("Get(%s) of sequence %d: %v", r.ID, r.Sequence, err)
		}
		if g.Sequence != r.Sequence || g.Hash != r.Hash || g.Version != r.Version {
			t.Fatalf("Get(%s) = seq %d v%d, ReadAll had seq %d v%d", r.ID, g.Sequence, g.Version, r.Sequence, r.Version)
		}
	}
	return recs
}

// dtSameEvents fails unless got holds exactly the events of want (same
// ids, sequences, versions and hashes).
func dtSameEvents(t testing.TB, got, want []batpak.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("store has %d events, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := &got[i], &want[i]
		if g.ID != w.ID || g.Sequence != w.Sequence || g.Version != w.Version || g.Hash != w.Hash || g.Coordinate != w.Coordinate {
			t.Fatalf("event %d is %s (id %s), want %s (id %s)", i+1, g, g.ID, w, w.ID)
		}
	}
}

// dtTags returns the set of request tags among recs.
func dtTags(recs []batpak.Record) map[string]bool {
	out := make(map[string]bool)
	for i := range recs {
		var p dtPayload
		if recs[i].Decode(&p) == nil && p.Tag != "" {
			out[p.Tag] = true
		}
	}
	return out
}

// dtPos returns where s stores the event at sequence seq.
func dtPos(t testing.TB, s *eventstore.Store, seq uint64) segment.Position {
	t.Helper()
	p, ok := s.Position(seq)
	if !ok {
		t.Fatalf("no position for sequence %d", seq)
	}
	return p
}

func dtSegPath(dir string, id uint32) string { return filepath.Join(dir, segment.FileName(id)) }

// dtSegments returns the segment ids in dir, ascending.
func dtSegments(t testing.TB, dir string) []uint32 {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint32
	for _, de := range des {
		if id, ok := segment.ParseFileName(de.Name()); ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// dtFrame is one frame found by scanning a segment file.
type dtFrame struct {
	Off, Size int64
	Rec       segment.Record // Payload and Metadata are copied
}

func (f dtFrame) End() int64 { return f.Off + f.Size }

// dtScan lists the frames of a segment file (events and batch markers) and
// returns where they end and whether a footer follows.
func dtScan(t testing.TB, path string, id uint32) (frames []dtFrame, frameEnd int64, sealed bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := segment.Scan(data, id, path, 0, func(off int64, size int, rec *segment.Record) error {
		r := *rec
		r.Payload = bytes.Clone(rec.Payload)
		frames = append(frames, dtFrame{Off: off, Size: int64(size), Rec: r})
		return nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", path, err)
	}
	if res.Torn != nil {
		t.Fatalf("scan %s: torn tail %v", path, res.Torn)
	}
	return frames, res.FrameEnd, res.Sealed
}

// dtCopyDir copies the regular files of src into dst (created), as a crash
// would leave them: whatever the page cache holds right now.
func dtCopyDir(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	des, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		dtCopyFile(t, filepath.Join(src, de.Name()), filepath.Join(dst, de.Name()))
	}
}

func dtCopyFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// dtPatch overwrites bytes of a file at off.
func dtPatch(t testing.TB, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// dtFlip xors the byte at off of path with mask.
func dtFlip(t testing.TB, path string, off int64, mask byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 || off >= int64(len(data)) {
		t.Fatalf("flip at %d outside %s (%d bytes)", off, path, len(data))
	}
	dtPatch(t, path, off, []byte{data[off] ^ mask})
}

// dtZeroFrom zeroes path from off to its end, keeping its size.
func dtZeroFrom(t testing.TB, path string, off int64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := fi.Size() - off; n > 0 {
		dtPatch(t, path, off, make([]byte, n))
	}
}

// dtCorrupt asserts that err is a *segment.CorruptError matching ErrCorrupt
// for segment seg (and, when off >= 0, at offset off).
func dtCorrupt(t testing.TB, err error, seg uint32, off int64) *segment.CorruptError {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want corruption in segment %d at %d", seg, off)
	}
	if !errors.Is(err, batpak.ErrCorrupt) {
		t.Fatalf("error %v does not match ErrCorrupt", err)
	}
	var ce *segment.CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *segment.CorruptError", err)
	}
	if ce.Segment != seg || (off >= 0 && ce.Offset != off) {
		t.Fatalf("corruption reported in segment %d at %d (%s), want segment %d at %d", ce.Segment, ce.Offset, ce.Reason, seg, off)
	}
	if seg != 0 && ce.Path != "" && filepath.Base(ce.Path) != segment.FileName(seg) {
		t.Fatalf("corruption names path %s, want %s", ce.Path, segment.FileName(seg))
	}
	return ce
}

// dtFS wraps vfs.OSFS to inject faults and to record the operations a
// store performs. Hooks run with no lock held; counters are per operation
// over all files. With noSync, Sync and SyncDir succeed without syncing
// (tests that only exercise recovery logic run much faster).
type dtFS struct {
	inner vfs.OSFS

	mu        sync.Mutex
	noSync    bool
	logOps    bool // record operations for Ops
	syncs     int  // File.Sync calls
	writes    int  // File.WriteAt calls
	ops       []string
	failSync  func(name string, call int) error
	failWrite func(name string, off int64, b []byte, call int) (partial int, err error)
}

func (f *dtFS) record(format string, args ...any) {
	f.mu.Lock()
	if f.logOps {
		f.ops = append(f.ops, fmt.Sprintf(format, args...))
	}
	f.mu.Unlock()
}

// Ops returns a copy of the operation log.
func (f *dtFS) Ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ops)
}

func (f *dtFS) Writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}

func (f *dtFS) SetFailSync(h func(name string, call int) error) {
	f.mu.Lock()
	f.failSync = h
	f.mu.Unlock()
}

func (f *dtFS) SetFailWrite(h func(name string, off int64, b []byte, call int) (int, error)) {
	f.mu.Lock()
	f.failWrite = h
	f.mu.Unlock()
}

func (f *dtFS) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	file, err := f.inner.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	if flag&os.O_CREATE != 0 {
		f.record("create %s", filepath.Base(name))
	}
	return &dtFile{File: file, fs: f, name: filepath.Base(name)}, nil
}

func (f *dtFS) ReadDir(name string) ([]fs.DirEntry, error) { return f.inner.ReadDir(name) }

func (f *dtFS) Rename(oldpath, newpath string) error {
	err := f.inner.Rename(oldpath, newpath)
	if err == nil {
		f.record("rename %s %s", filepath.Base(oldpath), filepath.Base(newpath))
	}
	return err
}

func (f *dtFS) Remove(name string) error {
	err := f.inner.Remove(name)
	if err == nil {
		f.record("remove %s", filepath.Base(name))
	}
	return err
}

func (f *dtFS) MkdirAll(path string, perm fs.FileMode) error { return f.inner.MkdirAll(path, perm) }

func (f *dtFS) SyncDir(name string) error {
	f.record("syncdir")
	f.mu.Lock()
	skip := f.noSync
	f.mu.Unlock()
	if skip {
		return nil
	}
	return f.inner.SyncDir(name)
}

func (f *dtFS) Preallocate(file vfs.File, size int64) error {
	if df, ok := file.(*dtFile); ok {
		file = df.File
	}
	return f.inner.Preallocate(file, size)
}

type dtFile struct {
	vfs.File
	fs   *dtFS
	name string
}

func (f *dtFile) WriteAt(b []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	f.fs.writes++
	call, hook := f.fs.writes, f.fs.failWrite
	f.fs.mu.Unlock()
	if hook != nil {
		if partial, err := hook(f.name, off, b, call); err != nil {
			n, _ := f.File.WriteAt(b[:min(max(partial, 0), len(b))], off)
			f.fs.record("write %s %d %d failed: %v", f.name, off, n, err)
			return n, &os.PathError{Op: "write", Path: f.name, Err: err}
		}
	}
	n, err := f.File.WriteAt(b, off)
	f.fs.record("write %s %d %d", f.name, off, n)
	return n, err
}

func (f *dtFile) Sync() error {
	f.fs.mu.Lock()
	f.fs.syncs++
	call, hook, skip := f.fs.syncs, f.fs.failSync, f.fs.noSync
	f.fs.mu.Unlock()
	if hook != nil {
		if err := hook(f.name, call); err != nil {
			f.fs.record("sync %s failed: %v", f.name, err)
			return &os.PathError{Op: "fdatasync", Path: f.name, Err: err}
		}
	}
	f.fs.record("sync %s", f.name)
	if skip {
		return nil
	}
	return f.File.Sync()
}

func (f *dtFile) Truncate(size int64) error {
	err := f.File.Truncate(size)
	f.fs.record("truncate %s %d", f.name, size)
	return err
}

// dtOpIndex returns the index of the first op at or after from for which
// match is true, or -1.
func dtOpIndex(ops []string, from int, match func(string) bool) int {
	for i := max(from, 0); i < len(ops); i++ {
		if match(ops[i]) {
			return i
		}
	}
	return -1
}

func dtHasPrefix(p string) func(string) bool {
	return func(s string) bool { return strings.HasPrefix(s, p) }
}

// dtSortedKeys returns the keys of m in order (for stable iteration).
func dtSortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// dtFastTempDir returns a temporary directory on a RAM file system when
// there is one (/dev/shm), else t.TempDir(). It is for the sweeps that
// create and delete thousands of small files and never rely on fsync.
func dtFastTempDir(t testing.TB) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "batpak-test-"); err == nil {
			t.Cleanup(func() { _ = os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}
