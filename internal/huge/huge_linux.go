package huge

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugePage is the size of a transparent huge page with 4 KiB base pages
// (amd64, most arm64).
const hugePage = 2 << 20

// Make returns a zeroed slice of n elements, asking the kernel to back
// the huge-page-aligned part of it with huge pages. Large slices that are
// filled right away then cost one page fault per 2 MiB instead of one per
// 4 KiB: on a virtual machine, where a fault can cost 10 µs, that was most
// of the time a checkpoint of a million streams took to load. The memory
// stays on the Go heap; the advice stays with it when the runtime reuses
// it, and may split the heap's mappings in up to three, which is why only
// arrays of many megabytes filled at once use it: what opening a
// checkpoint builds (streams, their sequences, the stream table, the
// packed blocks' words, the stream names).
func Make[T any](n int) []T {
	s := make([]T, n)
	if n == 0 {
		return s
	}
	p := unsafe.Pointer(unsafe.SliceData(s))
	start := uintptr(p)
	end := start + uintptr(n)*unsafe.Sizeof(s[0])
	lo, hi := (start+hugePage-1)&^(hugePage-1), end&^(hugePage-1)
	if lo < hi {
		_ = unix.Madvise(unsafe.Slice((*byte)(unsafe.Add(p, lo-start)), hi-lo), unix.MADV_HUGEPAGE)
	}
	return s
}
