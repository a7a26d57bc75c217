package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
)

// TempSuffix names the temporary file [WriteFileAtomic] writes next to its
// target: path + TempSuffix. A crash can leave it behind; the next write
// of the same path replaces it, and a recovery may remove it.
const TempSuffix = ".tmp"

// WriteFileAtomic replaces the file at path with data: it writes
// path+[TempSuffix], syncs it, renames it over path and syncs the
// directory. It is the one way a whole file is replaced (checkpoints,
// compaction outputs, projection checkpoints, aggregate snapshots), so a
// fault-injecting FS reaches every such write.
//
// The guarantee: after a crash or power loss at any point, path holds its
// old content (or is absent, if it was) or data, whole, never a mix; once
// WriteFileAtomic returns nil, data survives a power loss. The rename is
// what makes the swap atomic, the sync before it what keeps a power loss
// from leaving the new name over empty or partial data, and the directory
// sync after it what makes the new name durable. That path's own
// directory entry is durable is the caller's part (see [MkdirAllSynced]).
//
// On an error before the rename the temporary file is removed and path is
// untouched. An error from the directory sync means data is in place but
// may not survive a power loss, and a retried sync would prove nothing
// (after a failed fsync the kernel may have dropped what it had to
// write): the caller takes the write as not durable and, if it must,
// writes again.
//
// Writes of one path must not overlap: they share the temporary file. The
// caller serialises them.
func WriteFileAtomic(fsys FS, path string, data []byte, perm fs.FileMode) error {
	return WriteFileAtomicParts(fsys, path, perm, one(data))
}

// WriteFileAtomicParts is [WriteFileAtomic] of the file whose contents are
// the parts parts yields, one after the other, each written before the
// next is asked for: a caller that builds a large file in pieces need
// neither join them first nor hold them all at once.
func WriteFileAtomicParts(fsys FS, path string, perm fs.FileMode, parts iter.Seq[[]byte]) error {
	tmp := path + TempSuffix
	if err := writeSynced(fsys, tmp, perm, parts); err != nil {
		return fmt.Errorf("segment: replace %s: %w", path, err)
	}
	if err := fsys.Rename(tmp, path); err != nil {
		_ = fsys.Remove(tmp)
		return fmt.Errorf("segment: replace %s: %w", path, err)
	}
	if err := fsys.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("segment: replace %s: renamed, but the directory sync failed: %w", path, err)
	}
	return nil
}

// WriteFileSynced creates path (truncating what was there), writes data
// and syncs it, without a rename or a directory sync: for a caller that
// renames the file into place later, under its own lock, and syncs the
// directory then. On an error the file is removed.
func WriteFileSynced(fsys FS, path string, data []byte, perm fs.FileMode) error {
	if err := writeSynced(fsys, path, perm, one(data)); err != nil {
		return fmt.Errorf("segment: write %s: %w", path, err)
	}
	return nil
}

// one yields data.
func one(data []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) { yield(data) }
}

func writeSynced(fsys FS, path string, perm fs.FileMode, parts iter.Seq[[]byte]) error {
	f, err := fsys.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	var off int64
	for data := range parts {
		var n int
		n, err = f.WriteAt(data, off)
		if err == nil && n < len(data) {
			err = io.ErrShortWrite
		}
		if err != nil {
			break
		}
		off += int64(n)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = fsys.Remove(path)
	}
	return err
}

// ReadFile reads the whole file at path through fsys, as [os.ReadFile]
// does. A missing file is an error matching [fs.ErrNotExist].
func ReadFile(fsys FS, path string) ([]byte, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: errors.New("not a regular file")}
	}
	buf := make([]byte, fi.Size())
	n, err := f.ReadAt(buf, 0)
	if n == len(buf) {
		return buf, nil // io.EOF at the very end is no error
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF // the file shrank under us
	}
	return nil, fmt.Errorf("read %s: %w", path, err)
}

// MkdirAllSynced creates dir and its missing parents, and syncs the parent
// of every directory it created, so the new directories survive a power
// loss: syncing a directory makes the entries inside it durable, not its
// own entry in its parent.
func MkdirAllSynced(fsys FS, dir string, perm fs.FileMode) error {
	var missing []string
	for p := filepath.Clean(dir); filepath.Dir(p) != p; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			break
		}
		missing = append(missing, p)
	}
	if err := fsys.MkdirAll(dir, perm); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := fsys.SyncDir(filepath.Dir(missing[i])); err != nil {
			return err
		}
	}
	return nil
}
