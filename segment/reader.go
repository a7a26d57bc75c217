package segment

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/batpak-go/batpak/vfs"
	"github.com/edsrzf/mmap-go"
)

// Position locates a frame: segment id, offset and total frame length.
type Position struct {
	Segment uint32
	Offset  uint32
	Length  uint32
}

// Reader reads frames at known positions. Sealed segments are memory-mapped
// once and read without copying the frame, but for a frame's first read,
// which copies it with pread (firstread.go). The active segment's reserved
// size is mapped when it is registered; frames beyond it (a segment without
// preallocation) are read with pread through the file the writer appends
// to. It is safe for concurrent use.
type Reader struct {
	fs   vfs.FS
	dir  string
	mu   sync.RWMutex
	segs map[uint32]*readSegment
	bufs sync.Pool
}

type readSegment struct {
	mu     sync.Mutex
	sealed bool
	file   vfs.File                  // active: the writer's file; sealed: opened on first read
	mapped atomic.Pointer[mmap.MMap] // segments on the OS file system
	marks  atomic.Pointer[pageMarks] // of mapped: which 64 KiB windows reads have touched (firstread.go)
	owned  bool                      // file was opened by the reader and must be closed by it
	held   bool                      // opened by Hold: a writer in another process may cut it
}

// NewReader returns a reader for the segments in dir.
func NewReader(fsys vfs.FS, dir string) *Reader {
	return &Reader{fs: fsys, dir: dir, segs: make(map[uint32]*readSegment)}
}

// AddSealed registers a sealed segment; it is opened on first read.
func (r *Reader) AddSealed(id uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.segs[id]; !ok {
		r.segs[id] = &readSegment{sealed: true}
	}
}

// Hold registers segment id as sealed and opens its file now, for a reader
// that must keep the files it found at open (a read-only store): a later
// rename over the path (compaction by a writer) does not change what the
// reader reads. It returns the opened file, which the reader owns.
func (r *Reader) Hold(id uint32) (vfs.File, error) {
	f, err := r.fs.OpenFile(filepath.Join(r.dir, FileName(id)), os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("segment: open segment %d: %w", id, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.forget(id); err != nil {
		_ = f.Close()
		return nil, err
	}
	r.segs[id] = &readSegment{sealed: true, file: f, owned: true, held: true}
	return f, nil
}

// SameFile reports whether the path of segment id still names the file
// the reader holds for it (see [Reader.Hold]).
func (r *Reader) SameFile(id uint32) (bool, error) {
	r.mu.RLock()
	s := r.segs[id]
	if s == nil || s.file == nil {
		r.mu.RUnlock()
		return false, fmt.Errorf("segment: segment %d is not held", id)
	}
	a, err := s.file.Stat()
	r.mu.RUnlock()
	if err != nil {
		return false, err
	}
	f, err := r.fs.OpenFile(filepath.Join(r.dir, FileName(id)), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	defer func() { _ = f.Close() }()
	b, err := f.Stat()
	if err != nil {
		return false, err
	}
	return os.SameFile(a, b), nil
}

// MapHeld maps the whole of segment id as the reader holds it (see
// [Reader.Hold]) for the caller, who must call release when done; the
// mapping stays valid after the reader is closed. On a file system that
// cannot map, the file is read into memory.
func (r *Reader) MapHeld(id uint32) (data []byte, release func() error, err error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s := r.segs[id]
	if s == nil || s.file == nil || !s.owned {
		return nil, nil, fmt.Errorf("segment: segment %d is not held", id)
	}
	if of := vfs.OSFile(s.file); of != nil {
		m, err := mmap.Map(of, mmap.RDONLY, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("segment: map segment %d: %w", id, err)
		}
		return m, m.Unmap, nil
	}
	fi, err := s.file.Stat()
	if err != nil {
		return nil, nil, err
	}
	data = make([]byte, fi.Size())
	if _, err := s.file.ReadAt(data, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("segment: read segment %d: %w", id, err)
	}
	return data, func() error { return nil }, nil
}

// SetActive registers the active segment and the file the writer appends
// to, and maps the file's current size: the space reserved for frames. The
// writer never cuts the file below a frame it has published, so what reads
// find through the index stays within the file. Without a mapping, reads
// use pread.
func (r *Reader) SetActive(id uint32, f vfs.File) {
	s := &readSegment{file: f}
	if of := vfs.OSFile(f); of != nil {
		if fi, err := of.Stat(); err == nil && fi.Size() > HeaderSize {
			if m, err := mmap.MapRegion(of, int(fi.Size()), mmap.RDONLY, 0, 0); err == nil {
				adviseRandom(m)
				s.marks.Store(newPageMarks(len(m)))
				s.mapped.Store(&m)
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forget(id)
	r.segs[id] = s
}

// Seal marks segment id as sealed: later reads map the file anew. The
// writer's file is left to the writer to close.
func (r *Reader) Seal(id uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forget(id)
	r.segs[id] = &readSegment{sealed: true}
}

// forget unmaps segment id and closes its file if the reader opened it.
// Caller holds mu for writing, so no read is under way.
func (r *Reader) forget(id uint32) error {
	s := r.segs[id]
	if s == nil {
		return nil
	}
	var err error
	if m := s.mapped.Swap(nil); m != nil {
		err = m.Unmap()
	}
	if s.owned {
		if cerr := s.file.Close(); err == nil {
			err = cerr
		}
	}
	delete(r.segs, id)
	return err
}

// Replace forgets what the reader knows of sealed segment id (its mapping
// and file) after the file was replaced, e.g. by compaction; the next read
// maps the new file. It waits for reads under way.
func (r *Reader) Replace(id uint32) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.forget(id)
	r.segs[id] = &readSegment{sealed: true}
	return err
}

// Read reads and checks the frame at pos and decodes it into rec. A held
// file ([Reader.Hold]) is one a writer in another process may cut: a read
// below the cut returns a [*FaultError] (matching [ErrFileCut]) instead of
// killing the process.
func (r *Reader) Read(pos Position, rec *Record) error { return r.readAt(pos, rec, false) }

// ReadHead is [Reader.Read] that decodes only the head of the record
// ([DecodeRecordHead]): the frame's checksum is checked all the same, and
// nothing is allocated.
func (r *Reader) ReadHead(pos Position, rec *Record) error { return r.readAt(pos, rec, true) }

func (r *Reader) readAt(pos Position, rec *Record, head bool) error {
	// Held for the whole read, so Close cannot unmap a segment under it.
	r.mu.RLock()
	defer r.mu.RUnlock()
	s := r.segs[pos.Segment]
	if s == nil {
		return fmt.Errorf("segment: read %d:%d: no such segment", pos.Segment, pos.Offset)
	}
	if s.held {
		return r.readHeld(pos, s, rec, head)
	}
	return r.read(pos, s, rec, head)
}

// readHeld is read of a held file, with its faults caught.
func (r *Reader) readHeld(pos Position, s *readSegment, rec *Record, head bool) (err error) {
	data, err := r.mapping(pos.Segment, s) // a held file is sealed for this reader
	if err != nil {
		return err
	}
	defer RecoverFault(GuardFaults(), &err, Mapping{Data: &data, File: s.file, Path: filepath.Join(r.dir, FileName(pos.Segment))})
	return r.read(pos, s, rec, head)
}

func (r *Reader) read(pos Position, s *readSegment, rec *Record, head bool) error {
	end := int64(pos.Offset) + int64(pos.Length)
	var data []byte // the mapping, where the frame lies within it
	if s.sealed {
		m, err := r.mapping(pos.Segment, s)
		if err != nil {
			return err
		}
		if m != nil && end > int64(len(m)) {
			return r.corrupt(pos, "frame extends past the end of the segment")
		}
		data = m
	} else if m := s.mapped.Load(); m != nil && end <= int64(len(*m)) {
		data = *m
	}
	if data != nil && !s.marks.Load().firstRead(int64(pos.Offset), end) {
		return r.decode(pos, data[pos.Offset:end], rec, head)
	}
	if pos.Length < FrameHeaderSize || pos.Length > FrameHeaderSize+MaxFramePayload {
		return r.corrupt(pos, fmt.Sprintf("frame length %d out of range", pos.Length))
	}
	bp, _ := r.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	defer r.bufs.Put(bp)
	if cap(*bp) < int(pos.Length) {
		*bp = make([]byte, pos.Length)
	}
	buf := (*bp)[:pos.Length]
	if _, err := s.file.ReadAt(buf, int64(pos.Offset)); errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		if data != nil && s.held {
			// A writer cut the file: read through the mapping, whose
			// fault readHeld tells apart.
			return r.decode(pos, data[pos.Offset:end], rec, head)
		}
		return r.corrupt(pos, "frame extends past the end of the segment")
	} else if err != nil {
		return fmt.Errorf("segment: read %d:%d: %w", pos.Segment, pos.Offset, err)
	}
	return r.decode(pos, buf, rec, head)
}

// Prefetch hints that the frames at pos are read next. If the first of
// them is not in the page cache, the kernel is asked to start reading them
// all, so that the reads that follow wait for the disk together instead of
// one after another, and Prefetch reports true. Frames that are not
// mapped are left alone; errors are ignored, the reads report them.
func (r *Reader) Prefetch(pos []Position) (cold bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, p := range pos {
		s := r.segs[p.Segment]
		if s == nil {
			continue
		}
		var data []byte
		if s.sealed {
			data, _ = r.mapping(p.Segment, s)
		} else if m := s.mapped.Load(); m != nil {
			data = *m
		}
		end := int64(p.Offset) + int64(p.Length)
		if end > int64(len(data)) {
			continue
		}
		if !cold {
			if resident(data, int(p.Offset)) {
				return false
			}
			cold = true
		}
		adviseWillNeed(data, int(p.Offset), int(end))
	}
	return cold
}

func (r *Reader) decode(pos Position, frame []byte, rec *Record, head bool) error {
	if why := decodeFrameRecord(frame, rec, head); why != "" {
		return r.corrupt(pos, why)
	}
	return nil
}

// ReadFrom is [Reader.Read] of the record at pos in data, the bytes of the
// segment file at path: for bytes no reader has yet.
func ReadFrom(data []byte, path string, pos Position, rec *Record) error {
	end := int64(pos.Offset) + int64(pos.Length)
	if end > int64(len(data)) {
		return &CorruptError{Segment: pos.Segment, Path: path, Offset: int64(pos.Offset), Reason: "frame extends past the end of the segment"}
	}
	if why := decodeFrameRecord(data[pos.Offset:end], rec, false); why != "" {
		return &CorruptError{Segment: pos.Segment, Path: path, Offset: int64(pos.Offset), Reason: why}
	}
	return nil
}

// decodeFrameRecord decodes the record of frame, checking its checksum and
// that it is exactly one frame; it returns why it is damaged, or "".
func decodeFrameRecord(frame []byte, rec *Record, head bool) string {
	payload, size, st := DecodeFrame(frame)
	if st != FrameOK || size != len(frame) {
		return "frame checksum or length mismatch on read"
	}
	var err error
	if head { // called directly, not through a func value: rec must not escape
		err = DecodeRecordHead(payload, rec)
	} else {
		err = DecodeRecord(payload, rec)
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

func (r *Reader) corrupt(pos Position, reason string) error {
	return &CorruptError{Segment: pos.Segment, Path: filepath.Join(r.dir, FileName(pos.Segment)), Offset: int64(pos.Offset), Reason: reason}
}

// mapping returns the mapped bytes of a sealed segment, opening it on first
// use. On a file system other than the OS's it returns nil and the caller
// reads with ReadAt.
func (r *Reader) mapping(id uint32, s *readSegment) ([]byte, error) {
	if m := s.mapped.Load(); m != nil {
		return *m, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.mapped.Load(); m != nil {
		return *m, nil
	}
	if s.file == nil {
		f, err := r.fs.OpenFile(filepath.Join(r.dir, FileName(id)), os.O_RDONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("segment: open sealed segment %d: %w", id, err)
		}
		s.file, s.owned = f, true
	}
	of := vfs.OSFile(s.file)
	if of == nil {
		return nil, nil
	}
	m, err := mmap.Map(of, mmap.RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("segment: map sealed segment %d: %w", id, err)
	}
	adviseRandom(m)
	s.marks.Store(newPageMarks(len(m)))
	s.mapped.Store(&m)
	return m, nil
}

// Close unmaps and closes what the reader opened.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var first error
	for id := range r.segs {
		if err := r.forget(id); first == nil {
			first = err
		}
	}
	return first
}

// OpenHeld returns a file of the caller's own on segment id as the reader
// holds it (see [Reader.Hold]): a duplicate descriptor, which stays open
// after the reader is closed; the caller closes it. On a file system other
// than [vfs.OSFS] it returns nil and no error: use [Reader.MapHeld].
func (r *Reader) OpenHeld(id uint32) (vfs.File, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s := r.segs[id]
	if s == nil || s.file == nil || !s.owned {
		return nil, fmt.Errorf("segment: segment %d is not held", id)
	}
	of := vfs.OSFile(s.file)
	if of == nil {
		return nil, nil
	}
	f, err := dupFile(of)
	if err != nil {
		return nil, fmt.Errorf("segment: open segment %d: %w", id, err)
	}
	if f == nil {
		return nil, nil
	}
	return vfs.WrapOS(f), nil
}
