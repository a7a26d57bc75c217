package segment_test

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
)

func readAll(t testing.TB, r *segment.Reader, s *builtSegment) {
	t.Helper()
	for i, p := range s.Positions {
		var rec segment.Record
		if err := r.Read(p, &rec); err != nil {
			t.Errorf("Read(%+v): %v", p, err) // not Fatal: called from other goroutines too
			return
		}
		diffRecord(t, rec, s.Records[i])
	}
}

// TestReaderActiveThenSealed reads an active segment while it is written,
// then sealed. The reader maps the active file's reserved size: with none
// every read is a pread, with a little some frames are mapped and later
// ones (and one across the end of the mapping) are read with pread.
func TestReaderActiveThenSealed(t *testing.T) {
	for _, prealloc := range []int64{0, 1024, 1 << 16} {
		t.Run(fmt.Sprintf("prealloc=%d", prealloc), func(t *testing.T) { testReaderActiveThenSealed(t, prealloc) })
	}
}

func testReaderActiveThenSealed(t *testing.T, prealloc int64) {
	dir := t.TempDir()
	sealed := buildSegment(t, vfs.OSFS{}, dir, 1, 1, 10, 0, true)

	w, err := segment.Create(vfs.OSFS{}, dir, 2, 0, prealloc, segment.FileMode)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	active := &builtSegment{Path: w.Path(), ID: 2}
	r := segment.NewReader(vfs.OSFS{}, dir)
	defer r.Close()
	r.AddSealed(1)
	r.AddSealed(1) // idempotent
	r.SetActive(2, w.File())
	for i := range 8 {
		rec := testRecord(uint64(11 + i))
		fr := frameOf(t, &rec)
		off, err := w.Write(fr)
		if err != nil {
			t.Fatal(err)
		}
		active.Records = append(active.Records, rec)
		active.Positions = append(active.Positions, segment.Position{Segment: 2, Offset: uint32(off), Length: uint32(len(fr))})
		// Visible to the reader as soon as it is written.
		readAll(t, r, active)
	}
	readAll(t, r, sealed)

	// Concurrent reads of both kinds of segment.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				readAll(t, r, sealed)
				readAll(t, r, active)
			}
		})
	}
	wg.Wait()

	// Seal segment 2: the same positions now read through a mapping.
	if err := w.Seal(indexOf(active.Records, active.Positions)); err != nil {
		t.Fatal(err)
	}
	r.Seal(2)
	readAll(t, r, active)
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	var rec segment.Record
	if err := r.Read(active.Positions[0], &rec); err == nil {
		t.Errorf("Read after Close succeeded")
	}
}

func TestReaderSamePreadAndMmap(t *testing.T) {
	dir := t.TempDir()
	s := buildSegment(t, vfs.OSFS{}, dir, 3, 100, 15, 0, true)

	mapped := segment.NewReader(vfs.OSFS{}, dir)
	defer mapped.Close()
	mapped.AddSealed(3)

	f, err := vfs.OSFS{}.OpenFile(s.Path, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	active := segment.NewReader(vfs.OSFS{}, dir) // maps the file as an active segment's
	defer active.Close()
	active.SetActive(3, f)

	fake := segment.NewReader(&fakeFS{}, dir)
	defer fake.Close()
	fake.AddSealed(3)

	for i, p := range s.Positions {
		var a, b, c segment.Record
		if err := mapped.Read(p, &a); err != nil {
			t.Fatal(err)
		}
		if err := active.Read(p, &b); err != nil {
			t.Fatal(err)
		}
		if err := fake.Read(p, &c); err != nil {
			t.Fatal(err)
		}
		diffRecord(t, a, s.Records[i])
		diffRecord(t, b, s.Records[i])
		diffRecord(t, c, s.Records[i])
	}
}

// corruptByte flips a byte of the file at off.
func corruptByte(t testing.TB, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

type namedFS struct {
	name string
	fsys vfs.FS
}

// readerFileSystems are the two ways a reader reads sealed segments: a
// memory mapping on the OS file system, ReadAt on any other.
func readerFileSystems() []namedFS {
	return []namedFS{
		{"mmap", vfs.OSFS{}},
		{"ReadAt (fake FS)", &fakeFS{}},
	}
}

func TestReaderCorruptFrame(t *testing.T) {
	for _, tt := range readerFileSystems() {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := buildSegment(t, vfs.OSFS{}, dir, 4, 1, 6, 0, true)
			bad := s.Positions[3]
			corruptByte(t, s.Path, int64(bad.Offset)+int64(bad.Length)/2)

			r := segment.NewReader(tt.fsys, dir)
			defer r.Close()
			r.AddSealed(4)
			var rec segment.Record
			err := r.Read(bad, &rec)
			ce := asCorrupt(t, err)
			if ce.Segment != 4 || ce.Offset != int64(bad.Offset) || ce.Path != s.Path {
				t.Errorf("CorruptError %+v, want segment 4 offset %d path %s", ce, bad.Offset, s.Path)
			}
			// The other frames are fine.
			for i, p := range s.Positions {
				if i == 3 {
					continue
				}
				if err := r.Read(p, &rec); err != nil {
					t.Errorf("Read(%+v): %v", p, err)
				}
				diffRecord(t, rec, s.Records[i])
			}
		})
	}
}

func TestReaderCorruptActiveFrame(t *testing.T) {
	dir := t.TempDir()
	s := buildSegment(t, vfs.OSFS{}, dir, 5, 1, 4, 0, false)
	corruptByte(t, s.Path, int64(s.Positions[1].Offset)+3) // in the length field
	f, err := vfs.OSFS{}.OpenFile(s.Path, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := segment.NewReader(vfs.OSFS{}, dir)
	defer r.Close()
	r.SetActive(5, f)
	var rec segment.Record
	if ce := asCorrupt(t, r.Read(s.Positions[1], &rec)); ce.Offset != int64(s.Positions[1].Offset) {
		t.Errorf("CorruptError %+v", ce)
	}
}

func TestReaderBadPositions(t *testing.T) {
	for _, tt := range readerFileSystems() {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := buildSegment(t, vfs.OSFS{}, dir, 6, 1, 3, 0, true)
			r := segment.NewReader(tt.fsys, dir)
			defer r.Close()
			r.AddSealed(6)
			p := s.Positions[1]
			var rec segment.Record
			for _, bad := range []segment.Position{
				{Segment: 6, Offset: p.Offset, Length: p.Length - 1},       // short
				{Segment: 6, Offset: p.Offset, Length: p.Length + 1},       // long
				{Segment: 6, Offset: p.Offset + 1, Length: p.Length},       // misaligned
				{Segment: 6, Offset: p.Offset, Length: 0},                  // empty
				{Segment: 6, Offset: 0, Length: segment.HeaderSize},        // the header
				{Segment: 6, Offset: uint32(s.FrameEnd), Length: p.Length}, // inside the footer
			} {
				if err := r.Read(bad, &rec); !errors.Is(err, segment.ErrCorrupt) {
					t.Errorf("Read(%+v) = %v, want ErrCorrupt", bad, err)
				}
			}
			if err := r.Read(segment.Position{Segment: 99, Offset: p.Offset, Length: p.Length}, &rec); err == nil {
				t.Errorf("Read of an unknown segment succeeded")
			}
			// A registered sealed segment whose file is missing.
			r.AddSealed(98)
			if err := r.Read(segment.Position{Segment: 98, Offset: p.Offset, Length: p.Length}, &rec); err == nil || errors.Is(err, segment.ErrCorrupt) {
				t.Errorf("Read of a missing file = %v, want an I/O error", err)
			}
		})
	}
}

func TestReaderPastEndMmap(t *testing.T) {
	dir := t.TempDir()
	s := buildSegment(t, vfs.OSFS{}, dir, 7, 1, 2, 0, true)
	r := segment.NewReader(vfs.OSFS{}, dir)
	defer r.Close()
	r.AddSealed(7)
	var rec segment.Record
	size := uint32(len(readFile(t, s.Path)))
	for _, p := range []segment.Position{
		{Segment: 7, Offset: s.Positions[1].Offset, Length: 1 << 30},
		{Segment: 7, Offset: size, Length: 10},
		{Segment: 7, Offset: 0xFFFFFFFF, Length: 0xFFFFFFFF},
	} {
		if ce := asCorrupt(t, r.Read(p, &rec)); ce.Offset != int64(p.Offset) {
			t.Errorf("Read(%+v): CorruptError %+v", p, ce)
		}
	}
}

// TestReaderPastEndReadAt: on the pread path (active segment, or any
// segment on a non-OS file system) a position past the end of the file must
// be reported as corruption like on the mmap path, and its length must be
// checked against MaxFramePayload before a buffer of that size is allocated.
func TestReaderPastEndReadAt(t *testing.T) {
	dir := t.TempDir()
	buildSegment(t, vfs.OSFS{}, dir, 8, 1, 2, 0, true)
	r := segment.NewReader(&fakeFS{}, dir)
	defer r.Close()
	r.AddSealed(8)
	var rec segment.Record
	var err error
	n := bytesAllocated(func() {
		err = r.Read(segment.Position{Segment: 8, Offset: segment.HeaderSize, Length: 200 << 20}, &rec)
	})
	if !errors.Is(err, segment.ErrCorrupt) {
		t.Errorf("Read past the end: %v, want ErrCorrupt", err)
	}
	if n > 1<<20 {
		t.Errorf("Read with a %d-byte length allocated %d bytes", 200<<20, n)
	}
}

// TestReaderPrefetch hands Prefetch frames of a sealed segment, of a
// segment the reader does not know and past a segment's end: reads work as
// before, and frames just read are reported in memory.
func TestReaderPrefetch(t *testing.T) {
	dir := t.TempDir()
	s := buildSegment(t, vfs.OSFS{}, dir, 1, 1, 10, 0, true)
	r := segment.NewReader(vfs.OSFS{}, dir)
	defer r.Close()
	r.AddSealed(1)
	pos := append([]segment.Position{}, s.Positions...)
	pos = append(pos, segment.Position{Segment: 9, Offset: 64, Length: 64}, segment.Position{Segment: 1, Offset: 1 << 30, Length: 64})
	r.Prefetch(pos)
	readAll(t, r, s)
	if r.Prefetch(s.Positions) {
		t.Error("frames just read are reported not in memory")
	}
}
