// Package vfs is the file system under batpak's stores: a small [FS] and
// [File] that every file operation goes through, [OSFS] (the real one),
// and the crash-safe ways to write, read and create files and directories
// ([WriteFileAtomic], [ReadFile], [MkdirAllSynced]).
//
// Guarantees: File.Sync makes written data durable (fdatasync where the
// platform has it); SyncDir makes a directory's entries durable; after
// WriteFileAtomic returns, the new content survives a power loss, and a
// crash at any point leaves the old content or the new, never a mix.
//
// Caveats: package vfs/faultfs implements FS to fail, fill up and lose
// power on purpose in tests; the fault model is written down there.
package vfs

import (
	"io"
	"io/fs"
	"os"
)

// File is the subset of *os.File the store uses. Sync must make written data
// durable (fdatasync where the platform has it).
type File interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	Truncate(size int64) error
	Stat() (fs.FileInfo, error)
	Close() error
}

// FS is the file system under a store. [OSFS] is the real one; tests swap in
// one that fails or drops writes on purpose (package vfs/faultfs).
type FS interface {
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	ReadDir(name string) ([]fs.DirEntry, error)
	Rename(oldpath, newpath string) error
	Remove(name string) error
	MkdirAll(path string, perm fs.FileMode) error
	// SyncDir makes the directory's entries (creations, renames, removals) durable.
	SyncDir(name string) error
	// Preallocate reserves size bytes for f so later writes and data syncs
	// do not change the file's metadata. It may be a no-op.
	Preallocate(f File, size int64) error
}

// OSFS is the operating system's file system.
type OSFS struct{}

// OpenFile opens name with os.OpenFile.
func (OSFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// ReadDir lists name.
func (OSFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }

// Rename renames oldpath to newpath.
func (OSFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// Remove removes name.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// MkdirAll creates path and its parents.
func (OSFS) MkdirAll(path string, perm fs.FileMode) error { return os.MkdirAll(path, perm) }

// SyncDir fsyncs the directory name.
func (OSFS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Preallocate reserves size bytes for f (fallocate on Linux).
func (OSFS) Preallocate(f File, size int64) error {
	if of, ok := f.(osFile); ok {
		return preallocate(of.File, size)
	}
	return nil
}

// osFile is an *os.File whose Sync is a data sync.
type osFile struct{ *os.File }

func (f osFile) Sync() error { return datasync(f.File) }

// WrapOS returns f, opened by the caller, as a File of [OSFS].
func WrapOS(f *os.File) File { return osFile{f} }

// OSFile returns the underlying *os.File of a file opened by [OSFS], or nil.
func OSFile(f File) *os.File {
	if of, ok := f.(osFile); ok {
		return of.File
	}
	return nil
}
