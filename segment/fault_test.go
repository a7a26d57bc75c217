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
