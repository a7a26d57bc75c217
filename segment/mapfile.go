package segment

import (
	"fmt"
	"os"

	"github.com/batpak-go/batpak/vfs"
	"github.com/edsrzf/mmap-go"
)

// MapFile returns the whole content of path for scanning: a read-only
// mapping on the OS file system, a copy elsewhere. Call release when done
// with data; the file itself is already closed.
func MapFile(fsys vfs.FS, path string) (data []byte, release func() error, err error) {
	return mapFile(fsys, path, -1)
}

// MapActive is [MapFile] for the active segment, to be scanned from offset
// from: where the file system reports that the file holds no data after
// some point at or past from (space preallocated and never written, or a
// hole), data ends a page after that point. Everything after it reads as
// zeros, so a scan finds there what it would find in the whole file,
// without reading megabytes of zeros. It relies on the file system
// reporting holes and unwritten extents correctly (SEEK_HOLE/SEEK_DATA);
// where it cannot say, the whole file is mapped.
func MapActive(fsys vfs.FS, path string, from int64) (data []byte, release func() error, err error) {
	return mapFile(fsys, path, from)
}

// zeroMargin is how much of a file's zero tail MapActive keeps: a scan
// sees the zeros that end the frames.
const zeroMargin = 4096

func mapFile(fsys vfs.FS, path string, from int64) (data []byte, release func() error, err error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, nil, err
	}
	// Read only: closing it has nothing to report, and a mapping
	// outlives it.
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	size := fi.Size()
	if of := vfs.OSFile(f); of != nil && size > 0 {
		m, err := mmap.Map(of, mmap.RDONLY, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("map %s: %w", path, err)
		}
		data = m
		if from < 0 {
			adviseSequential(m)
		} else {
			if end := dataEnd(of, from); end >= 0 && end+zeroMargin < size {
				data = m[:end+zeroMargin]
			}
			// Read ahead only where the scan goes: a sequential advice
			// on the whole file would have the header's page fault read
			// megabytes from the start that the scan never looks at.
			adviseRandom(m)
			if start := from &^ (int64(os.Getpagesize()) - 1); start < int64(len(data)) {
				adviseSequential(data[start:])
			}
		}
		return data, m.Unmap, nil
	}
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, 0); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	return buf, func() error { return nil }, nil
}

// Prefetch asks the kernel to start reading bytes [off, off+n) of the file
// at path in the background, so that a later read finds them in memory. It
// is only a hint: errors are ignored and files not opened by [OSFS] are
// left alone.
func Prefetch(fsys vfs.FS, path string, off, n int64) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	if of := vfs.OSFile(f); of != nil {
		adviseFileWillNeed(of, max(off, 0), n)
	}
}
