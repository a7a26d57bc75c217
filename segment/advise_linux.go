package segment

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// adviseRandom tells the kernel that a mapping is read at random (single
// frames by position), so a page fault does not read ahead megabytes.
func adviseRandom(b []byte) { _ = unix.Madvise(b, unix.MADV_RANDOM) }

// adviseSequential tells the kernel that a mapping is read front to back
// (scans and replays), so it reads ahead generously.
func adviseSequential(b []byte) { _ = unix.Madvise(b, unix.MADV_SEQUENTIAL) }

// resident reports whether the page of mapping m holding offset off is in
// memory (or the kernel cannot say).
func resident(m []byte, off int) bool {
	page := os.Getpagesize()
	start := off &^ (page - 1)
	var vec byte
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[start])), uintptr(min(page, len(m)-start)), uintptr(unsafe.Pointer(&vec)))
	return errno != 0 || vec&1 != 0
}

// adviseWillNeed asks the kernel to start reading m[from:to] of a file
// mapping into memory.
func adviseWillNeed(m []byte, from, to int) {
	_ = unix.Madvise(m[from&^(os.Getpagesize()-1):to], unix.MADV_WILLNEED)
}

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

// adviseFileWillNeed asks the kernel to start reading f[off:off+n].
func adviseFileWillNeed(f *os.File, off, n int64) {
	_ = unix.Fadvise(int(f.Fd()), off, n, unix.FADV_WILLNEED)
}
