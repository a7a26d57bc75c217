package segment_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
)

// testRecord returns a deterministic event record with global sequence seq.
// Its payload is never empty and its last byte is never zero, so any cut
// inside the frame changes the frame's bytes even when zeros follow the cut.
func testRecord(seq uint64) segment.Record {
	r := segment.Record{
		Seq:            seq,
		Kind:           0x1001 + uint16(seq%7),
		Flags:          uint16(seq % 3),
		Version:        seq,
		Timestamp:      1_700_000_000_000_000 + int64(seq)*1000,
		Entity:         fmt.Sprintf("account:%d", seq%5),
		Scope:          "bank:eu",
		IdempotencyKey: fmt.Sprintf("req-%d", seq),
		Payload:        bytes.Repeat([]byte{byte(seq), 0xA5, byte(seq >> 8)}, 10+int(seq%13)),
	}
	r.Payload = append(r.Payload, 0x7f)
	binary.BigEndian.PutUint64(r.ID[:], 0x0190_0000_0000_0000|seq)
	binary.BigEndian.PutUint64(r.ID[8:], seq*0x9E3779B97F4A7C15)
	r.Correlation = r.ID
	if seq%2 == 0 {
		r.Correlation[15] ^= 0xff
		r.Causation[0], r.Causation[15] = byte(seq), 1
	}
	for i := range r.Hash {
		r.Hash[i] = byte(seq) + byte(i)*3 + 1
		r.PrevHash[i] = byte(seq-1) + byte(i)*3 + 1
	}
	if seq%3 == 0 {
		r.Metadata = map[string]string{"user": "u-1", "ip": "10.0.0.1", "trace": fmt.Sprint(seq)}
	}
	return r
}

// frameOf returns the frame that holds r.
func frameOf(t testing.TB, r *segment.Record) []byte {
	t.Helper()
	b, err := segment.AppendFrame(nil, segment.AppendRecord(nil, r))
	if err != nil {
		t.Fatalf("AppendFrame: %v", err)
	}
	return b
}

// normalized returns r with empty metadata and payload in a canonical form
// (nil), which is how DecodeRecord returns them.
func normalized(r segment.Record) segment.Record {
	if len(r.Metadata) == 0 {
		r.Metadata = nil
	}
	if len(r.Payload) == 0 {
		r.Payload = nil
	}
	return r
}

func recordsEqual(a, b segment.Record) bool {
	a, b = normalized(a), normalized(b)
	if !bytes.Equal(a.Payload, b.Payload) || len(a.Metadata) != len(b.Metadata) {
		return false
	}
	for k, v := range a.Metadata {
		if w, ok := b.Metadata[k]; !ok || w != v {
			return false
		}
	}
	return a.Seq == b.Seq && a.Kind == b.Kind && a.Flags == b.Flags && a.Version == b.Version &&
		a.Timestamp == b.Timestamp && a.ID == b.ID && a.Correlation == b.Correlation &&
		a.Causation == b.Causation && a.Entity == b.Entity && a.Scope == b.Scope &&
		a.PrevHash == b.PrevHash && a.Hash == b.Hash && a.IdempotencyKey == b.IdempotencyKey
}

func diffRecord(t testing.TB, got, want segment.Record) {
	t.Helper()
	if !recordsEqual(got, want) {
		t.Errorf("record mismatch:\n got %+v\nwant %+v", got, want)
	}
}

// builtSegment describes a segment file made by buildSegment.
type builtSegment struct {
	Path      string
	ID        uint32
	Records   []segment.Record
	Positions []segment.Position
	FrameEnd  int64 // end of the last event frame (where the footer starts when sealed)
	Index     *segment.Index
}

// buildSegment creates segment id in dir holding n records with consecutive
// sequences from firstSeq, written one Write per frame, and seals it if seal.
func buildSegment(t testing.TB, fsys vfs.FS, dir string, id uint32, firstSeq uint64, n int, prealloc int64, seal bool) *builtSegment {
	t.Helper()
	w, err := segment.Create(fsys, dir, id, 1_700_000_000_000_000, prealloc, segment.FileMode)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	defer w.Close()
	s := &builtSegment{Path: w.Path(), ID: id}
	for i := range n {
		r := testRecord(firstSeq + uint64(i))
		fr := frameOf(t, &r)
		off, err := w.Write(fr)
		if err != nil {
			t.Fatalf("Write: %v", err)
		}
		s.Records = append(s.Records, r)
		s.Positions = append(s.Positions, segment.Position{Segment: id, Offset: uint32(off), Length: uint32(len(fr))})
	}
	if err := w.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	s.FrameEnd = w.End()
	s.Index = indexOf(s.Records, s.Positions)
	if seal {
		if err := w.Seal(s.Index); err != nil {
			t.Fatalf("Seal: %v", err)
		}
	}
	return s
}

// indexOf builds the footer index of records at positions.
func indexOf(recs []segment.Record, pos []segment.Position) *segment.Index {
	var st segment.StringTable
	ix := &segment.Index{}
	tails := map[uint32]int{}
	for i := range recs {
		r := &recs[i]
		e := segment.IndexEntry{
			Seq: r.Seq, Version: r.Version, Timestamp: r.Timestamp,
			ID: r.ID, Correlation: r.Correlation, Causation: r.Causation,
			Kind: r.Kind, Flags: r.Flags,
			Entity: st.ID(r.Entity), Scope: st.ID(r.Scope),
			Segment: pos[i].Segment, Offset: pos[i].Offset, Length: pos[i].Length,
		}
		ix.Entries = append(ix.Entries, e)
		tail := segment.StreamTail{Entity: e.Entity, Version: r.Version, LastHash: r.Hash}
		if j, ok := tails[e.Entity]; ok {
			ix.Tails[j] = tail
		} else {
			tails[e.Entity] = len(ix.Tails)
			ix.Tails = append(ix.Tails, tail)
		}
		if r.IdempotencyKey != "" {
			ix.Keys = append(ix.Keys, segment.IdempotencyRecord{Key: r.IdempotencyKey, First: r.Seq, Count: 1})
		}
	}
	ix.Strings = st.Strings
	return ix
}

// scanned is what one Scan delivered.
type scanned struct {
	Offsets []int64
	Sizes   []int
	Records []segment.Record
}

func scanAll(data []byte, id uint32, path string, from int64) (scanned, segment.ScanResult, error) {
	var s scanned
	res, err := segment.Scan(data, id, path, from, func(off int64, size int, rec *segment.Record) error {
		s.Offsets = append(s.Offsets, off)
		s.Sizes = append(s.Sizes, size)
		c := *rec
		c.Payload = append([]byte(nil), rec.Payload...)
		s.Records = append(s.Records, c)
		return nil
	})
	return s, res, err
}

// mapScan maps path with MapFile and scans it.
func mapScan(t testing.TB, path string, id uint32) (scanned, segment.ScanResult, error) {
	t.Helper()
	data, release, err := segment.MapFile(vfs.OSFS{}, path)
	if err != nil {
		t.Fatalf("MapFile: %v", err)
	}
	defer func() {
		if err := release(); err != nil {
			t.Errorf("release: %v", err)
		}
	}()
	return scanAll(data, id, path, 0)
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func asCorrupt(t testing.TB, err error) *segment.CorruptError {
	t.Helper()
	var ce *segment.CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *segment.CorruptError", err, err)
	}
	if !errors.Is(err, segment.ErrCorrupt) {
		t.Fatalf("error %v does not match ErrCorrupt", err)
	}
	return ce
}

// bytesAllocated returns how many bytes f allocated on the heap.
func bytesAllocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// fakeFS wraps OSFS and injects failures. Files it opens are not *os.File
// underneath as far as the segment package can tell, so readers take the
// ReadAt (non-mmap) paths.
type fakeFS struct {
	vfs.OSFS

	mu           sync.Mutex
	failWriteAt  error // WriteAt writes half its bytes, then fails with this
	failTruncate error
	failSync     error
	failSyncDir  error
	writeCalls   int
}

func (f *fakeFS) set(fn func(*fakeFS)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeFS) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	inner, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &fakeFile{File: inner, fs: f}, nil
}

func (f *fakeFS) SyncDir(name string) error {
	f.mu.Lock()
	err := f.failSyncDir
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.OSFS.SyncDir(name)
}

func (f *fakeFS) Preallocate(file vfs.File, size int64) error {
	if ff, ok := file.(*fakeFile); ok {
		file = ff.File
	}
	return f.OSFS.Preallocate(file, size)
}

type fakeFile struct {
	vfs.File
	fs *fakeFS
}

func (f *fakeFile) WriteAt(b []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	f.fs.writeCalls++
	err := f.fs.failWriteAt
	f.fs.mu.Unlock()
	if err != nil {
		n, werr := f.File.WriteAt(b[:len(b)/2], off)
		if werr != nil {
			return n, werr
		}
		return n, err
	}
	return f.File.WriteAt(b, off)
}

func (f *fakeFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	err := f.fs.failTruncate
	f.fs.mu.Unlock()
	if err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func (f *fakeFile) Sync() error {
	f.fs.mu.Lock()
	err := f.fs.failSync
	f.fs.mu.Unlock()
	if err != nil {
		return err
	}
	return f.File.Sync()
}

var (
	_ vfs.FS   = (*fakeFS)(nil)
	_ vfs.File = (*fakeFile)(nil)
)

func segPath(dir string, id uint32) string { return filepath.Join(dir, segment.FileName(id)) }
