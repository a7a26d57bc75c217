package segment

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"unsafe"

	"github.com/batpak-go/batpak/vfs"
)

// ErrFileCut matches a [*FaultError] whose file became shorter than the
// mapping while it was read: another process (the writer of a store read
// without its lock) cut the file under it. The bytes read so far describe
// a file that no longer exists; start over from the file as it is now.
var ErrFileCut = errors.New("segment: the mapped file was cut while it was read")

// FaultError is a memory fault reading a mapped file. Either the file was
// cut below the faulting page (Cut; the error matches [ErrFileCut]), or
// the page could not be read from the disk (an I/O error, which is never
// taken for a cut).
type FaultError struct {
	Path   string
	Offset int64 // the faulting byte's offset in the file; -1 if it is not in the mapping
	Cut    bool
}

func (e *FaultError) Error() string {
	if e.Cut {
		return fmt.Sprintf("segment: %s was cut below offset %d while it was read", e.Path, e.Offset)
	}
	return fmt.Sprintf("segment: reading %s at offset %d through its mapping failed (an I/O error, or a bug)", e.Path, e.Offset)
}

// Is reports whether target is [ErrFileCut] and the file was cut.
func (e *FaultError) Is(target error) bool { return e.Cut && target == ErrFileCut }

// Mapping names a mapped file for [RecoverFault]: its bytes (through a
// pointer, so that a mapping made after the defer counts), and the file,
// whose size now tells a cut from an I/O error. File may be nil: then the
// file at Path is looked at.
type Mapping struct {
	Data *[]byte
	File vfs.File
	FS   vfs.FS
	Path string
}

// GuardFaults makes a memory fault in the calling goroutine (SIGBUS on a
// page of a mapping that cannot be read) a panic, for [RecoverFault], and
// returns the setting to restore. Without it the fault kills the process.
func GuardFaults() (old bool) { return debug.SetPanicOnFault(true) }

// RecoverFault, deferred right after [GuardFaults] by a goroutine that
// reads the mapping m, restores the setting old and turns a memory fault
// into a [*FaultError] in *err. Other panics go on. Use it where a process
// without the store's lock reads a file its writer may cut (the active
// segment):
//
//	var data []byte
//	defer segment.RecoverFault(segment.GuardFaults(), &err, segment.Mapping{Data: &data, FS: fsys, Path: path})
func RecoverFault(old bool, err *error, m Mapping) {
	debug.SetPanicOnFault(old)
	r := recover()
	if r == nil {
		return
	}
	f, ok := r.(interface{ Addr() uintptr })
	if !ok {
		panic(r)
	}
	*err = classifyFault(f.Addr(), m)
}

// classifyFault tells whether the fault at addr in m was past the end of
// the file as it is now.
func classifyFault(addr uintptr, m Mapping) error {
	e := &FaultError{Path: m.Path, Offset: -1}
	if m.Data == nil {
		return e
	}
	data := *m.Data
	base := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	if len(data) == 0 || addr < base || addr-base >= uintptr(len(data)) {
		return e
	}
	e.Offset = int64(addr - base)
	f := m.File
	if f == nil {
		var err error
		if f, err = m.FS.OpenFile(m.Path, os.O_RDONLY, 0); err != nil {
			return e
		}
		defer func() { _ = f.Close() }()
	}
	if fi, err := f.Stat(); err == nil && fi.Size() <= e.Offset {
		e.Cut = true
	}
	return e
}
