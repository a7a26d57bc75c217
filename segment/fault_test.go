//go:build unix

package segment_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
)

// mapCut maps a file of four pages and cuts it to one.
func mapCut(t *testing.T) (path string, data []byte) {
	t.Helper()
	page := os.Getpagesize()
	path = filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, make([]byte, 4*page), 0o600); err != nil {
		t.Fatal(err)
	}
	data, release, err := segment.MapFile(vfs.OSFS{}, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = release() })
	if err := os.Truncate(path, int64(page)); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// A mapping read past the end of a file cut after it was mapped faults;
// RecoverFault makes that a FaultError matching ErrFileCut instead of a
// crash, and leaves other panics alone.
func TestRecoverFaultFileCutUnderMapping(t *testing.T) {
	page := os.Getpagesize()
	path, data := mapCut(t)
	read := func(off int) (b byte, err error) {
		defer segment.RecoverFault(segment.GuardFaults(), &err, segment.Mapping{Data: &data, FS: vfs.OSFS{}, Path: path})
		return data[off], nil
	}
	if _, err := read(page - 1); err != nil {
		t.Fatalf("a byte inside the file: %v", err)
	}
	_, err := read(3*page + 5)
	var fe *segment.FaultError
	if !errors.Is(err, segment.ErrFileCut) || !errors.As(err, &fe) || fe.Offset != int64(3*page+5) || fe.Path != path {
		t.Fatalf("a byte past the cut: %v (%+v), want ErrFileCut at offset %d", err, fe, 3*page+5)
	}

	defer func() {
		if r := recover(); r != "other" {
			t.Fatalf("recovered %v, want the other panic to go on", r)
		}
	}()
	func() (err error) {
		defer segment.RecoverFault(segment.GuardFaults(), &err, segment.Mapping{Data: &data, FS: vfs.OSFS{}, Path: path})
		panic("other")
	}()
}

// bigFile is a file whose Stat claims a size larger than the mapping.
type bigFile struct{ vfs.File }

func (bigFile) Stat() (fs.FileInfo, error) { return bigInfo{}, nil }

type bigInfo struct{ fs.FileInfo }

func (bigInfo) Size() int64 { return 1 << 40 }

// A fault where the file is still long enough is no cut (the disk failed
// to read the page): it never matches ErrFileCut, so it is never taken for
// a writer's seal.
func TestRecoverFaultNotACut(t *testing.T) {
	page := os.Getpagesize()
	path, data := mapCut(t)
	_, err := func() (b byte, err error) {
		defer segment.RecoverFault(segment.GuardFaults(), &err, segment.Mapping{Data: &data, File: bigFile{}, Path: path})
		return data[2*page], nil
	}()
	var fe *segment.FaultError
	if !errors.As(err, &fe) || errors.Is(err, segment.ErrFileCut) || fe.Offset != int64(2*page) {
		t.Fatalf("a fault in a file long enough: %v (%+v), want a FaultError that is not a cut", err, fe)
	}
}

// A held file (a read-only store's) that its writer cuts below a frame
// the reader indexed reads as ErrFileCut, not as a crash.
func TestReaderHeldFileCutUnderIt(t *testing.T) {
	dir := t.TempDir()
	seg := buildSegment(t, vfs.OSFS{}, dir, 1, 1, 200, 0, false)
	r := segment.NewReader(vfs.OSFS{}, dir)
	defer r.Close()
	if _, err := r.Hold(1); err != nil {
		t.Fatal(err)
	}
	readAll(t, r, seg)
	last := seg.Positions[len(seg.Positions)-1]
	if int(last.Offset) < 2*os.Getpagesize() {
		t.Fatalf("the last frame is at %d: the test needs it two pages in", last.Offset)
	}
	if err := os.Truncate(seg.Path, int64(os.Getpagesize())); err != nil {
		t.Fatal(err)
	}
	var rec segment.Record
	if err := r.Read(seg.Positions[0], &rec); err != nil {
		t.Fatalf("a frame still in the file: %v", err)
	}
	if err := r.Read(last, &rec); !errors.Is(err, segment.ErrFileCut) {
		t.Fatalf("a frame past the cut: %v, want ErrFileCut", err)
	}
}
