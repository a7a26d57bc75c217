// Package huge allocates large slices that are filled right away on
// transparent huge pages where the kernel offers them (Linux), so that
// filling them costs a page fault per 2 MiB rather than per 4 KiB.
package huge
