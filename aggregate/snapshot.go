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
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/batpak-go/batpak/segment"
)

// Snapshot is an aggregate's state at a stream version.
type Snapshot struct {
	Entity  string
	Version uint64
	// Type identifies the state's Go type; a snapshot of another type is
	// ignored, so renaming or replacing a state type falls back to a replay.
	Type string
	Data []byte // msgpack of the state
}

// SnapshotStore keeps the latest snapshot per entity. Load returns
// ok=false when there is none; any error makes the repository replay.
type SnapshotStore interface {
	Load(ctx context.Context, entity string) (s Snapshot, ok bool, err error)
	Save(ctx context.Context, s Snapshot) error
}

// loadSnapshot fills state from the latest usable snapshot and returns its
// version; a missing, corrupt or incompatible snapshot returns ok=false.
func (r *Repository[S, PS, C]) loadSnapshot(ctx context.Context, entity string, state *S) (uint64, bool) {
	snap, ok, err := r.snapshots.Load(ctx, entity)
	if err != nil || !ok || snap.Entity != entity || snap.Type != typeName[S]() {
		return 0, false
	}
	if err := msgpack.Unmarshal(snap.Data, state); err != nil {
		return 0, false
	}
	return snap.Version, true
}

// maybeSnapshot saves a snapshot when the save crossed a multiple of the
// snapshot interval. A failed snapshot is not an error: the events are saved.
func (r *Repository[S, PS, C]) maybeSnapshot(ctx context.Context, entity string, state *S, before, after uint64) {
	if r.snapshots == nil || before/r.every == after/r.every {
		return
	}
	data, err := msgpack.Marshal(state)
	if err != nil {
		return
	}
	_ = r.snapshots.Save(ctx, Snapshot{Entity: entity, Version: after, Type: typeName[S](), Data: data})
}

func typeName[S any]() string {
	t := reflect.TypeFor[S]()
	return t.PkgPath() + "." + t.Name()
}

// MemorySnapshots is an in-memory SnapshotStore.
type MemorySnapshots struct {
	mu sync.Mutex
	m  map[string]Snapshot
}

// NewMemorySnapshots returns an empty in-memory snapshot store.
func NewMemorySnapshots() *MemorySnapshots { return &MemorySnapshots{m: make(map[string]Snapshot)} }

// Load returns the snapshot of entity.
func (m *MemorySnapshots) Load(_ context.Context, entity string) (Snapshot, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.m[entity]
	return s, ok, nil
}

// Save replaces the snapshot of s.Entity.
func (m *MemorySnapshots) Save(_ context.Context, s Snapshot) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[s.Entity] = s
	return nil
}

// FileSnapshots keeps one file per entity in a directory. File names are
// hashes of the entity, so no entity can name a path outside the directory.
// Each file carries a CRC, so a damaged snapshot is detected and ignored,
// and is replaced atomically with [segment.WriteFileAtomic] (temp file,
// sync, rename, directory sync): after a crash an entity's snapshot is the
// previous one or the new one, never a torn one, and a saved one survives
// a power loss.
type FileSnapshots struct {
	dir   string
	fs    segment.FS
	locks [16]sync.Mutex // saves of one entity share a temp file: one at a time
}

// FileSnapshotsOption configures a [FileSnapshots].
type FileSnapshotsOption func(*FileSnapshots)

// WithSnapshotFS replaces the file system (by default [segment.OSFS]),
// e.g. with one that injects faults.
func WithSnapshotFS(fsys segment.FS) FileSnapshotsOption {
	return func(f *FileSnapshots) { f.fs = fsys }
}

// NewFileSnapshots returns a snapshot store in dir, creating it (0700) and
// its missing parents durably.
func NewFileSnapshots(dir string, opts ...FileSnapshotsOption) (*FileSnapshots, error) {
	f := &FileSnapshots{dir: dir, fs: segment.OSFS{}}
	for _, o := range opts {
		o(f)
	}
	if err := segment.MkdirAllSynced(f.fs, dir, 0o700); err != nil {
		return nil, fmt.Errorf("aggregate: create %s: %w", dir, err)
	}
	return f, nil
}

// errBadSnapshot reports a snapshot file that fails its checks.
var errBadSnapshot = errors.New("aggregate: damaged snapshot")

// file returns the snapshot file of entity and the lock that serialises
// its saves.
func (f *FileSnapshots) file(entity string) (string, *sync.Mutex) {
	sum := sha256.Sum256([]byte(entity))
	return filepath.Join(f.dir, hex.EncodeToString(sum[:16])+".snap"), &f.locks[int(sum[0])%len(f.locks)]
}

// Load reads and checks the snapshot of entity.
func (f *FileSnapshots) Load(_ context.Context, entity string) (Snapshot, bool, error) {
	path, _ := f.file(entity)
	b, err := segment.ReadFile(f.fs, path)
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

// Save replaces the snapshot of s.Entity atomically and durably.
func (f *FileSnapshots) Save(_ context.Context, s Snapshot) error {
	body, err := msgpack.Marshal(&s)
	if err != nil {
		return err
	}
	b := binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(body))
	b = append(b, body...)
	path, mu := f.file(s.Entity)
	mu.Lock()
	defer mu.Unlock()
	if err := segment.WriteFileAtomic(f.fs, path, b, 0o600); err != nil {
		return fmt.Errorf("aggregate: save snapshot: %w", err)
	}
	return nil
}
