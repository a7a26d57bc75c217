package segment

import "sync/atomic"

// A frame's first read copies it with pread instead of touching its
// mapping; later reads near it go through the mapping. The first
// touch of a mapped page costs a page fault, and on virtual machines
// where the hypervisor keeps the page tables a fault is dear: 35 to 55 µs
// for a page of a file in the page cache on the machines the benchmarks
// run on, against 3 µs for a pread of that page. A read of a stream just
// after open touches one new page per event: 100 faults at random pages
// took 3 to 6 ms there, 100 preads of the same pages under 0.4 ms.
//
// A fault maps not only its page but the pages around it that are in the
// page cache (fault-around, 64 KiB by default), so the marks are per 64 KiB
// of the mapping: the first read in a window uses pread, the next one
// faults the window in. The marks only choose how a frame is read: a
// mapped page the kernel has let go of faults again, which is still
// correct.

// firstReadMax is the largest frame read with pread on its first read;
// larger ones are read through the mapping, where one fault maps many
// pages at once.
const firstReadMax = 64 << 10

// pageMarks has a bit for each markSize bytes of a mapping: set once a
// frame in them has been read.
type pageMarks []atomic.Uint64

// markShift is log2 of markSize, the kernel's fault-around window.
const markShift = 16

// newPageMarks returns the marks of a mapping of size bytes.
func newPageMarks(size int) *pageMarks {
	m := make(pageMarks, (size>>markShift)/64+1)
	return &m
}

// firstRead reports whether a window of bytes [from, to) of the mapping
// has not been read before, and marks them all read. A nil m has every
// window read.
func (m *pageMarks) firstRead(from, to int64) bool {
	if m == nil || to-from > firstReadMax {
		return false
	}
	first := false
	for p := uint64(from) >> markShift; p <= uint64(to-1)>>markShift; p++ {
		w, bit := &(*m)[p/64], uint64(1)<<(p%64)
		if w.Load()&bit == 0 {
			w.Or(bit)
			first = true
		}
	}
	return first
}
