//go:build unix

package segment_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
)

// A mapping read past the end of a file cut after it was mapped faults;
// CatchFaults makes that an ErrFileCut error instead of a crash, and
// leaves other panics alone.
func TestCatchFaultsFileCutUnderMapping(t *testing.T) {
	page := os.Getpagesize()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, make([]byte, 4*page), 0o600); err != nil {
		t.Fatal(err)
	}
	data, release, err := segment.MapFile(vfs.OSFS{}, path)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := os.Truncate(path, int64(page)); err != nil {
		t.Fatal(err)
	}
	read := func(off int) (b byte, err error) {
		defer segment.CatchFaults(&err)()
		return data[off], nil
	}
	if _, err := read(page - 1); err != nil {
		t.Fatalf("a byte inside the file: %v", err)
	}
	if _, err := read(3 * page); !errors.Is(err, segment.ErrFileCut) {
		t.Fatalf("a byte past the cut: %v, want ErrFileCut", err)
	}

	defer func() {
		if r := recover(); r != "other" {
			t.Fatalf("recovered %v, want the other panic to go on", r)
		}
	}()
	func() (err error) {
		defer segment.CatchFaults(&err)()
		panic("other")
	}()
}

// A held file (a read-only store's) that its writer cuts below a frame
// the reader indexed (a rollback of frames never acknowledged) reads as
// ErrFileCut, not as a crash.
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
