package segment_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
)

// MapActive may leave out only a tail of zeros, and keeps a page of it.
func TestMapActiveSkipsOnlyZeros(t *testing.T) {
	const size = 1 << 20
	frames := bytes.Repeat([]byte{0xAB}, 10_000)
	for _, tc := range []struct {
		name  string
		later int64 // offset of data written after the preallocated hole, or 0
	}{{"preallocated tail", 0}, {"data after a hole", size - 100}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = f.Close() }()
			if err := f.Truncate(size); err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(frames, 0); err != nil {
				t.Fatal(err)
			}
			if tc.later > 0 {
				if _, err := f.WriteAt([]byte{1}, tc.later); err != nil {
					t.Fatal(err)
				}
			}
			whole, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			data, release, err := segment.MapActive(vfs.OSFS{}, path, 5000)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = release() }()
			if len(data) < len(frames)+4096 || !bytes.Equal(data, whole[:len(data)]) {
				t.Fatalf("mapped %d bytes that are not the file's first", len(data))
			}
			if !bytes.Equal(whole[len(data):], make([]byte, len(whole)-len(data))) {
				t.Fatalf("left out data after %d", len(data))
			}
			t.Logf("mapped %d of %d bytes", len(data), len(whole))
		})
	}
}

// Prefetch is a hint: on any file, range or missing path it changes
// nothing and reports nothing.
func TestPrefetchIsAHint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	content := bytes.Repeat([]byte{7}, 10_000)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]int64{{0, 100}, {-4096, 8192}, {5000, 1 << 30}, {1 << 40, 10}} {
		segment.Prefetch(vfs.OSFS{}, path, r[0], r[1])
	}
	segment.Prefetch(vfs.OSFS{}, filepath.Join(t.TempDir(), "missing"), 0, 10)
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("file changed: %v", err)
	}
}
