package segment

import (
	"fmt"
	"os"

	"github.com/edsrzf/mmap-go"
)

// MapFile returns the whole content of path for scanning: a read-only
// mapping on the OS file system, a copy elsewhere. Call release when done.
func MapFile(fsys FS, path string) (data []byte, release func() error, err error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	size := fi.Size()
	if of := OSFile(f); of != nil && size > 0 {
		m, err := mmap.Map(of, mmap.RDONLY, 0)
		if err != nil {
			_ = f.Close()
			return nil, nil, fmt.Errorf("map %s: %w", path, err)
		}
		adviseSequential(m)
		return m, func() error {
			err := m.Unmap()
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return err
		}, nil
	}
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, 0); err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	return buf, f.Close, nil
}
