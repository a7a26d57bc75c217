package segment

import (
	"os"

	"golang.org/x/sys/unix"
)

func datasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}

func preallocate(f *os.File, size int64) error {
	err := unix.Fallocate(int(f.Fd()), 0, 0, size)
	if err == unix.EOPNOTSUPP || err == unix.ENOSYS {
		return nil
	}
	if err != nil {
		return &os.PathError{Op: "fallocate", Path: f.Name(), Err: err}
	}
	return nil
}

// adviseRandom tells the kernel that a mapping is read at random (single
// frames by position), so a page fault does not read ahead megabytes.
func adviseRandom(b []byte) { _ = unix.Madvise(b, unix.MADV_RANDOM) }

// adviseSequential tells the kernel that a mapping is read front to back
// (scans and replays), so it reads ahead generously.
func adviseSequential(b []byte) { _ = unix.Madvise(b, unix.MADV_SEQUENTIAL) }

// dataEnd returns where f's data ends for good at or after from: the start
// of a hole (or unwritten extent) after which the file has no data, or -1
// if there is none or the file system cannot say.
func dataEnd(f *os.File, from int64) int64 {
	fd := int(f.Fd())
	hole, err := unix.Seek(fd, from, unix.SEEK_HOLE)
	if err != nil {
		return -1
	}
	if _, err := unix.Seek(fd, hole, unix.SEEK_DATA); err != unix.ENXIO {
		return -1
	}
	return hole
}
