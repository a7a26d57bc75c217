package aggregate

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/vfs"
)

// MemorySnapshots is an in-memory SnapshotStore.
type MemorySnapshots struct {
	mu sync.Mutex
	m  map[batpak.Coordinate]Snapshot
}

// NewMemorySnapshots returns an empty in-memory snapshot store.
func NewMemorySnapshots() *MemorySnapshots {
	return &MemorySnapshots{m: make(map[batpak.Coordinate]Snapshot)}
}

// Load returns the snapshot of the stream coord.
func (m *MemorySnapshots) Load(_ context.Context, coord batpak.Coordinate) (Snapshot, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.m[coord]
	return s, ok, nil
}

// Save replaces the snapshot of s.Coordinate.
func (m *MemorySnapshots) Save(_ context.Context, s Snapshot) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[s.Coordinate] = s
	return nil
}

// FileSnapshots keeps one file per stream in a directory. File names are
// hashes of the stream's scope and entity, so no coordinate can name a
// path outside the directory. Each file carries a CRC, so a damaged
// snapshot is detected and ignored, and is replaced atomically with
// [vfs.WriteFileAtomic] (temp file, sync, rename, directory sync):
// after a crash a stream's snapshot is the previous one or the new one,
// never a torn one, and a saved one survives a power loss.
type FileSnapshots struct {
	dir   string
	fs    vfs.FS
	locks [16]sync.Mutex // saves of one stream share a temp file: one at a time
}

// FileSnapshotsOption configures a [FileSnapshots].
type FileSnapshotsOption func(*FileSnapshots)

// WithSnapshotFS replaces the file system (by default [vfs.OSFS]),
// e.g. with one that injects faults.
func WithSnapshotFS(fsys vfs.FS) FileSnapshotsOption {
	return func(f *FileSnapshots) { f.fs = fsys }
}

// NewFileSnapshots returns a snapshot store in dir, creating it (0700) and
// its missing parents durably.
func NewFileSnapshots(dir string, opts ...FileSnapshotsOption) (*FileSnapshots, error) {
	f := &FileSnapshots{dir: dir, fs: vfs.OSFS{}}
	for _, o := range opts {
		o(f)
	}
	if err := vfs.MkdirAllSynced(f.fs, dir, 0o700); err != nil {
		return nil, fmt.Errorf("aggregate: create %s: %w", dir, err)
	}
	return f, nil
}

// errBadSnapshot reports a snapshot file that fails its checks.
var errBadSnapshot = errors.New("aggregate: damaged snapshot")

// file returns the snapshot file of the stream coord and the lock that
// serialises its saves. The hash input is the scope's length, the scope
// and the entity, so no two coordinates share it.
func (f *FileSnapshots) file(coord batpak.Coordinate) (string, *sync.Mutex) {
	h := sha256.New()
	h.Write(binary.AppendUvarint(nil, uint64(len(coord.Scope))))
	h.Write([]byte(coord.Scope))
	h.Write([]byte(coord.Entity))
	sum := h.Sum(nil)
	return filepath.Join(f.dir, hex.EncodeToString(sum[:16])+".snap"), &f.locks[int(sum[0])%len(f.locks)]
}

// Load reads and checks the snapshot of the stream coord.
func (f *FileSnapshots) Load(_ context.Context, coord batpak.Coordinate) (Snapshot, bool, error) {
	path, _ := f.file(coord)
	b, err := vfs.ReadFile(f.fs, path)
	if errors.Is(err, fs.ErrNotExist) {
		return Snapshot{}, false, nil
	}
	if err != nil {
		return Snapshot{}, false, err
	}
	if len(b) < 4 || crc32.ChecksumIEEE(b[4:]) != binary.BigEndian.Uint32(b) {
		return Snapshot{}, false, errBadSnapshot
	}
	var s Snapshot
	if err := msgpack.Unmarshal(b[4:], &s); err != nil {
		return Snapshot{}, false, fmt.Errorf("%w: %v", errBadSnapshot, err)
	}
	return s, true, nil
}

// Save replaces the snapshot of s.Coordinate atomically and durably.
func (f *FileSnapshots) Save(_ context.Context, s Snapshot) error {
	body, err := msgpack.Marshal(&s)
	if err != nil {
		return err
	}
	b := binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(body))
	b = append(b, body...)
	path, mu := f.file(s.Coordinate)
	mu.Lock()
	defer mu.Unlock()
	if err := vfs.WriteFileAtomic(f.fs, path, b, 0o600); err != nil {
		return fmt.Errorf("aggregate: save snapshot: %w", err)
	}
	return nil
}
