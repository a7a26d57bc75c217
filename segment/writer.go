package segment

import (
	"errors"
	"fmt"
	"github.com/batpak-go/batpak/vfs"
	"os"
	"path/filepath"
)

// FileMode is the mode of new segment files unless the store says otherwise.
const FileMode os.FileMode = 0o600

// ErrSealed is returned for writes to a sealed segment.
var ErrSealed = errors.New("segment: segment is sealed")

// ErrWriterBroken is returned once a failed write could not be rolled back:
// the file's tail is unknown and nothing more may be appended to it.
var ErrWriterBroken = errors.New("segment: writer broken by an earlier failure")

// Writer appends frames to the active segment. It is not safe for
// concurrent use: the store's single writer goroutine owns it.
type Writer struct {
	fs       vfs.FS
	path     string
	id       uint32
	f        vfs.File
	end      int64 // where the next frame goes
	prealloc int64
	broken   error
}

// Create makes segment id in dir: it writes and syncs the header, reserves
// prealloc bytes (zeros after the last frame read as the end) and fsyncs the
// directory so the new file survives a crash.
func Create(fsys vfs.FS, dir string, id uint32, created int64, prealloc int64, mode os.FileMode) (*Writer, error) {
	path := filepath.Join(dir, FileName(id))
	f, err := fsys.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return nil, err
	}
	w := &Writer{fs: fsys, path: path, id: id, f: f, end: HeaderSize, prealloc: prealloc}
	err = w.init(created)
	if err == nil {
		err = fsys.SyncDir(dir)
	}
	if err != nil {
		_ = f.Close()
		_ = fsys.Remove(path)
		return nil, fmt.Errorf("create segment %s: %w", path, err)
	}
	return w, nil
}

func (w *Writer) init(created int64) error {
	if w.prealloc > 0 {
		if err := w.fs.Preallocate(w.f, w.prealloc); err != nil {
			return err
		}
	}
	hdr := AppendHeader(nil, Header{Version: FormatVersion, Segment: w.id, Created: created})
	if _, err := w.f.WriteAt(hdr, 0); err != nil {
		return err
	}
	return w.f.Sync()
}

// OpenWriter reopens segment id for appending after recovery established
// that its frames end at end. Anything after end is cut off and the space
// is reserved again.
func OpenWriter(fsys vfs.FS, dir string, id uint32, end int64, prealloc int64) (*Writer, error) {
	path := filepath.Join(dir, FileName(id))
	f, err := fsys.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	w := &Writer{fs: fsys, path: path, id: id, f: f, end: end, prealloc: prealloc}
	if err := w.cutTail(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("reopen segment %s: %w", path, err)
	}
	return w, nil
}

// cutTail removes everything after w.end, reserves the space again and syncs.
func (w *Writer) cutTail() error {
	if err := w.f.Truncate(w.end); err != nil {
		return err
	}
	if w.prealloc > w.end {
		if err := w.fs.Preallocate(w.f, w.prealloc); err != nil {
			return err
		}
	}
	return w.f.Sync()
}

// ID returns the segment id.
func (w *Writer) ID() uint32 { return w.id }

// Path returns the segment's file path.
func (w *Writer) Path() string { return w.path }

// End returns the offset where the next frame will be written.
func (w *Writer) End() int64 { return w.end }

// File returns the open file, for readers of the active segment.
func (w *Writer) File() vfs.File { return w.f }

// Write appends b (whole frames) at the end of the segment and returns the
// offset it starts at. If the write fails, the partial bytes are cut off
// again so they can never be mistaken for frames; if even that fails the
// writer is broken and refuses further writes with [ErrWriterBroken].
func (w *Writer) Write(b []byte) (int64, error) {
	if w.broken != nil {
		return 0, w.broken
	}
	off := w.end
	if _, err := w.f.WriteAt(b, off); err != nil {
		if terr := w.cutTail(); terr != nil {
			w.broken = fmt.Errorf("%w: %w (rollback: %v)", ErrWriterBroken, err, terr)
			return 0, w.broken
		}
		return 0, fmt.Errorf("write segment %s at %d: %w", w.path, off, err)
	}
	w.end += int64(len(b))
	return off, nil
}

// Rollback cuts the segment back to end, undoing writes after it (used when
// a group's data sync fails). The writer is broken afterwards either way.
func (w *Writer) Rollback(end int64) error {
	w.end = end
	err := w.cutTail()
	if w.broken == nil {
		w.broken = ErrWriterBroken
	}
	return err
}

// Sync makes everything written so far durable.
func (w *Writer) Sync() error {
	if w.broken != nil {
		return w.broken
	}
	return w.f.Sync()
}

// Seal ends the segment: it cuts the reserved space, writes the footer index
// and trailer and syncs. The segment is read-only afterwards.
func (w *Writer) Seal(ix *Index) error {
	if w.broken != nil {
		return w.broken
	}
	footer, err := AppendFooter(nil, w.id, w.end, ix)
	if err != nil {
		return err
	}
	return w.sealWith(footer)
}

// SealBuilt is Seal with the index that b built and the tails, keys and
// deleted streams of rest.
func (w *Writer) SealBuilt(b *IndexBuilder, rest *Index) error {
	if w.broken != nil {
		return w.broken
	}
	footer, err := b.AppendFooter(nil, w.id, w.end, rest)
	if err != nil {
		return err
	}
	return w.sealWith(footer)
}

// sealWith writes footer, the footer frame and trailer, after the frames.
func (w *Writer) sealWith(footer []byte) error {
	if err := w.f.Truncate(w.end); err != nil {
		return err
	}
	if _, err := w.f.WriteAt(footer, w.end); err != nil {
		return err
	}
	if err := w.f.Sync(); err != nil {
		return err
	}
	w.broken = ErrSealed
	return nil
}

// Trim gives back the space reserved after the frames, for a writer about
// to close: the next [OpenWriter] reserves it again. The cut is not synced
// (a power loss that undoes it leaves zeros after the frames, as before).
func (w *Writer) Trim() error {
	if w.broken != nil {
		return w.broken
	}
	return w.f.Truncate(w.end)
}

// Close closes the file without sealing it.
func (w *Writer) Close() error { return w.f.Close() }
