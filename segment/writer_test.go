package segment_test

import (
	"errors"
	"io/fs"
	"os"
	"testing"

	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
)

var errInjected = errors.New("injected failure")

func TestCreate(t *testing.T) {
	dir := t.TempDir()
	w, err := segment.Create(vfs.OSFS{}, dir, 1, 123, 0, segment.FileMode)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.ID() != 1 || w.Path() != segPath(dir, 1) || w.End() != segment.HeaderSize {
		t.Errorf("writer id %d path %q end %d", w.ID(), w.Path(), w.End())
	}
	fi, err := os.Stat(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || segment.FileMode != 0o600 {
		t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
	}
	h, err := segment.DecodeHeader(readFile(t, w.Path()))
	if err != nil {
		t.Fatal(err)
	}
	if h != (segment.Header{Version: segment.FormatVersion, Segment: 1, Created: 123}) {
		t.Errorf("header %+v", h)
	}
	// A segment is never created over an existing one.
	if _, err := segment.Create(vfs.OSFS{}, dir, 1, 0, 0, segment.FileMode); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second Create: %v, want ErrExist", err)
	}
	if _, err := segment.Create(vfs.OSFS{}, dir+"/missing", 2, 0, 0, segment.FileMode); err == nil {
		t.Errorf("Create in a missing directory succeeded")
	}
}

func TestCreatePreallocates(t *testing.T) {
	dir := t.TempDir()
	w, err := segment.Create(vfs.OSFS{}, dir, 2, 0, 1<<20, segment.FileMode)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	data := readFile(t, w.Path())
	if len(data) != 1<<20 && len(data) != segment.HeaderSize {
		t.Fatalf("file is %d bytes", len(data))
	}
	if !allZero(data[segment.HeaderSize:]) {
		t.Errorf("preallocated space is not zero")
	}
}

func TestCreateFailureRemovesFile(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  func(*fakeFS)
	}{
		{"sync dir", func(f *fakeFS) { f.failSyncDir = errInjected }},
		{"sync", func(f *fakeFS) { f.failSync = errInjected }},
		{"header write", func(f *fakeFS) { f.failWriteAt = errInjected }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			fsys := &fakeFS{}
			fsys.set(tt.set)
			_, err := segment.Create(fsys, dir, 3, 0, 4096, segment.FileMode)
			if !errors.Is(err, errInjected) {
				t.Fatalf("Create: %v, want the injected error", err)
			}
			if _, err := os.Stat(segPath(dir, 3)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("failed Create left the file behind: %v", err)
			}
		})
	}
}

func TestWriterWriteSyncSeal(t *testing.T) {
	dir := t.TempDir()
	w, err := segment.Create(vfs.OSFS{}, dir, 4, 0, 1<<16, segment.FileMode)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var recs []segment.Record
	var pos []segment.Position
	// One write may hold several frames (a group commit).
	var group []byte
	for i := range 6 {
		r := testRecord(uint64(i + 1))
		recs = append(recs, r)
		fr := frameOf(t, &r)
		if i < 3 {
			end := w.End()
			off, err := w.Write(fr)
			if err != nil || off != end || w.End() != end+int64(len(fr)) {
				t.Fatalf("Write = %d, %v; end %d -> %d", off, err, end, w.End())
			}
			pos = append(pos, segment.Position{Segment: 4, Offset: uint32(off), Length: uint32(len(fr))})
			continue
		}
		pos = append(pos, segment.Position{Segment: 4, Offset: uint32(w.End()) + uint32(len(group)), Length: uint32(len(fr))})
		group = append(group, fr...)
	}
	if _, err := w.Write(group); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	end := w.End()
	ix := indexOf(recs, pos)
	if err := w.Seal(ix); err != nil {
		t.Fatal(err)
	}
	data := readFile(t, w.Path())
	footer, _ := segment.AppendFooter(nil, 4, end, ix)
	if int64(len(data)) != end+int64(len(footer)) {
		t.Errorf("sealed file is %d bytes, want %d (preallocation must be cut)", len(data), end+int64(len(footer)))
	}
	got, off, err := segment.ReadFooter(data, 4)
	if err != nil || off != end || !indexEqual(got, ix) {
		t.Fatalf("ReadFooter = %d, %v", off, err)
	}
	sc, res, err := scanAll(data, 4, w.Path(), 0)
	if err != nil || !res.Sealed || len(sc.Records) != 6 {
		t.Fatalf("Scan = %d records, %+v, %v", len(sc.Records), res, err)
	}
	for i := range recs {
		diffRecord(t, sc.Records[i], recs[i])
		if sc.Offsets[i] != int64(pos[i].Offset) {
			t.Errorf("record %d at %d, want %d", i, sc.Offsets[i], pos[i].Offset)
		}
	}
}

func TestOpenWriterCutsTail(t *testing.T) {
	for _, prealloc := range []int64{0, 1 << 16} {
		dir := t.TempDir()
		s := buildSegment(t, vfs.OSFS{}, dir, 5, 1, 4, prealloc, false)
		// Garbage after the frames: a torn frame, and bytes further on.
		f, err := os.OpenFile(s.Path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte{0, 0, 1, 0, 9, 9, 9, 9, 1, 2, 3}, s.FrameEnd); err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte("junk"), s.FrameEnd+5000); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if _, res, err := mapScan(t, s.Path, 5); err != nil || res.Torn == nil {
			t.Fatalf("prealloc %d: before reopening: %+v, %v; want a torn tail", prealloc, res, err)
		}

		w, err := segment.OpenWriter(vfs.OSFS{}, dir, 5, s.FrameEnd, prealloc)
		if err != nil {
			t.Fatal(err)
		}
		if w.End() != s.FrameEnd || w.ID() != 5 {
			t.Errorf("reopened writer at %d", w.End())
		}
		data := readFile(t, s.Path)
		if int64(len(data)) != s.FrameEnd && int64(len(data)) != prealloc {
			t.Errorf("prealloc %d: file is %d bytes after reopening", prealloc, len(data))
		}
		if !allZero(data[s.FrameEnd:]) {
			t.Errorf("prealloc %d: bytes after the end survived OpenWriter", prealloc)
		}
		r := testRecord(5)
		if off, err := w.Write(frameOf(t, &r)); err != nil || off != s.FrameEnd {
			t.Fatalf("Write = %d, %v", off, err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got, res, err := mapScan(t, s.Path, 5)
		if err != nil || res.Torn != nil || len(got.Records) != 5 {
			t.Fatalf("prealloc %d: after reopening: %d records, %+v, %v", prealloc, len(got.Records), res, err)
		}
		diffRecord(t, got.Records[4], r)
	}
	if _, err := segment.OpenWriter(vfs.OSFS{}, t.TempDir(), 9, segment.HeaderSize, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenWriter of a missing segment: %v", err)
	}
}

func TestWriterWriteFailureRollsBack(t *testing.T) {
	for _, prealloc := range []int64{0, 1 << 16} {
		dir := t.TempDir()
		fsys := &fakeFS{}
		s := buildSegment(t, fsys, dir, 6, 1, 0, 0, false) // just the header
		w, err := segment.OpenWriter(fsys, dir, 6, s.FrameEnd, prealloc)
		if err != nil {
			t.Fatal(err)
		}
		var recs []segment.Record
		for i := range 3 {
			recs = append(recs, testRecord(uint64(i+1)))
			if _, err := w.Write(frameOf(t, &recs[i])); err != nil {
				t.Fatal(err)
			}
		}
		end := w.End()

		fsys.set(func(f *fakeFS) { f.failWriteAt = errInjected })
		big := testRecord(4)
		big.Payload = make([]byte, 10000)
		for i := range big.Payload {
			big.Payload[i] = byte(i%251) + 1
		}
		_, err = w.Write(frameOf(t, &big))
		if !errors.Is(err, errInjected) || errors.Is(err, segment.ErrWriterBroken) {
			t.Fatalf("prealloc %d: failed Write: %v, want the injected error, writer not broken", prealloc, err)
		}
		if w.End() != end {
			t.Errorf("End moved to %d after a failed write, want %d", w.End(), end)
		}
		data := readFile(t, w.Path())
		if !allZero(data[end:]) {
			t.Fatalf("prealloc %d: partial bytes of the failed write remain after %d", prealloc, end)
		}
		if int64(len(data)) != end && int64(len(data)) != prealloc {
			t.Errorf("prealloc %d: file is %d bytes after rollback, end %d", prealloc, len(data), end)
		}

		// The writer still works.
		fsys.set(func(f *fakeFS) { f.failWriteAt = nil })
		recs = append(recs, testRecord(4))
		if off, err := w.Write(frameOf(t, &recs[3])); err != nil || off != end {
			t.Fatalf("Write after a rolled-back failure = %d, %v; want offset %d", off, err, end)
		}
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got, res, err := mapScan(t, w.Path(), 6)
		if err != nil || res.Torn != nil || len(got.Records) != 4 {
			t.Fatalf("scan after recovery: %d records, %+v, %v", len(got.Records), res, err)
		}
		for i := range recs {
			diffRecord(t, got.Records[i], recs[i])
		}
	}
}

func TestWriterBrokenWhenRollbackFails(t *testing.T) {
	dir := t.TempDir()
	fsys := &fakeFS{}
	w, err := segment.Create(fsys, dir, 7, 0, 0, segment.FileMode)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r := testRecord(1)
	fr := frameOf(t, &r)
	if _, err := w.Write(fr); err != nil {
		t.Fatal(err)
	}
	fsys.set(func(f *fakeFS) { f.failWriteAt, f.failTruncate = errInjected, errInjected })
	if _, err := w.Write(fr); !errors.Is(err, segment.ErrWriterBroken) {
		t.Fatalf("Write with a failed rollback: %v, want ErrWriterBroken", err)
	}
	// Even once the file system recovers, the writer refuses to go on.
	fsys.set(func(f *fakeFS) { f.failWriteAt, f.failTruncate = nil, nil })
	calls := fsys.writeCalls
	if _, err := w.Write(fr); !errors.Is(err, segment.ErrWriterBroken) {
		t.Errorf("Write on a broken writer: %v", err)
	}
	if fsys.writeCalls != calls {
		t.Errorf("a broken writer wrote to the file")
	}
	if err := w.Sync(); !errors.Is(err, segment.ErrWriterBroken) {
		t.Errorf("Sync on a broken writer: %v", err)
	}
	if err := w.Seal(&segment.Index{}); !errors.Is(err, segment.ErrWriterBroken) {
		t.Errorf("Seal on a broken writer: %v", err)
	}
}

func TestWriterRollback(t *testing.T) {
	dir := t.TempDir()
	s := buildSegment(t, vfs.OSFS{}, dir, 8, 1, 0, 0, false)
	w, err := segment.OpenWriter(vfs.OSFS{}, dir, 8, s.FrameEnd, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var ends []int64
	for i := range 3 {
		r := testRecord(uint64(i + 1))
		if _, err := w.Write(frameOf(t, &r)); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, w.End())
	}
	if err := w.Rollback(ends[0]); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	if w.End() != ends[0] {
		t.Errorf("End %d after Rollback, want %d", w.End(), ends[0])
	}
	got, res, err := mapScan(t, w.Path(), 8)
	if err != nil || res.Torn != nil || len(got.Records) != 1 || res.FrameEnd != ends[0] {
		t.Fatalf("after Rollback: %d records, %+v, %v", len(got.Records), res, err)
	}
	r := testRecord(2)
	if _, err := w.Write(frameOf(t, &r)); !errors.Is(err, segment.ErrWriterBroken) {
		t.Errorf("Write after Rollback: %v, want ErrWriterBroken", err)
	}
}

func TestWriterSyncFailureIsReported(t *testing.T) {
	dir := t.TempDir()
	fsys := &fakeFS{}
	w, err := segment.Create(fsys, dir, 9, 0, 0, segment.FileMode)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	fsys.set(func(f *fakeFS) { f.failSync = errInjected })
	if err := w.Sync(); !errors.Is(err, errInjected) {
		t.Errorf("Sync: %v, want the injected error", err)
	}
	if err := w.Seal(&segment.Index{}); !errors.Is(err, errInjected) {
		t.Errorf("Seal with a failing sync: %v, want the injected error", err)
	}
	fsys.set(func(f *fakeFS) { f.failSync, f.failTruncate = nil, errInjected })
	if err := w.Seal(&segment.Index{}); !errors.Is(err, errInjected) {
		t.Errorf("Seal with a failing truncate: %v, want the injected error", err)
	}
}

// TestWriterWriteAfterSeal: Seal documents that the segment is read-only
// afterwards, but the writer keeps its end at the footer's offset, so a later
// Write overwrites the footer of a sealed segment.
func TestWriterWriteAfterSeal(t *testing.T) {
	dir := t.TempDir()
	s := buildSegment(t, vfs.OSFS{}, dir, 10, 1, 0, 0, false)
	w, err := segment.OpenWriter(vfs.OSFS{}, dir, 10, s.FrameEnd, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r := testRecord(1)
	if _, err := w.Write(frameOf(t, &r)); err != nil {
		t.Fatal(err)
	}
	if err := w.Seal(&segment.Index{}); err != nil {
		t.Fatal(err)
	}
	r2 := testRecord(2)
	if _, err := w.Write(frameOf(t, &r2)); err == nil {
		t.Errorf("Write after Seal succeeded")
	}
	if _, _, err := segment.ReadFooter(readFile(t, w.Path()), 10); err != nil {
		t.Errorf("footer destroyed by a Write after Seal: %v", err)
	}
}
