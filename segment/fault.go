package segment

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// ErrFileCut is returned by a read of a mapped file that faulted because
// the file became shorter than the mapping while it was read: another
// process (the writer of a store read without its lock) cut the file
// under the mapping. The bytes read so far describe a file that no longer
// exists; start over from the file as it is now.
var ErrFileCut = errors.New("segment: the mapped file was cut while it was read")

// CatchFaults makes a memory fault in the calling goroutine (SIGBUS on a
// page of a mapping past the end of its file) a panic that the returned
// function, deferred, turns into an [ErrFileCut] error in *err; any other
// panic goes on. Use it where a goroutine reads a mapping of a file that a
// process without the store's lock may cut (the active segment of a store
// being written):
//
//	defer segment.CatchFaults(&err)()
//
// Without it, the fault kills the process.
func CatchFaults(err *error) func() {
	old := debug.SetPanicOnFault(true)
	return func() {
		debug.SetPanicOnFault(old)
		r := recover()
		if r == nil {
			return
		}
		f, ok := r.(interface{ Addr() uintptr })
		if !ok {
			panic(r)
		}
		*err = fmt.Errorf("%w (fault at %#x)", ErrFileCut, f.Addr())
	}
}
