package aggregate

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
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
// hashes of the entity, so no entity can name a path outside the directory;
// each file is written atomically (temp file, sync, rename) and carries a
// CRC, so a torn or damaged snapshot is detected and ignored.
type FileSnapshots struct{ dir string }

// NewFileSnapshots returns a snapshot store in dir, creating it (0700).
func NewFileSnapshots(dir string) (*FileSnapshots, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &FileSnapshots{dir: dir}, nil
}

// errBadSnapshot reports a snapshot file that fails its checks.
var errBadSnapshot = errors.New("aggregate: damaged snapshot")

func (f *FileSnapshots) path(entity string) string {
	sum := sha256.Sum256([]byte(entity))
	return filepath.Join(f.dir, hex.EncodeToString(sum[:16])+".snap")
}

// Load reads and checks the snapshot of entity.
func (f *FileSnapshots) Load(_ context.Context, entity string) (Snapshot, bool, error) {
	b, err := os.ReadFile(f.path(entity))
	if errors.Is(err, os.ErrNotExist) {
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

// Save writes the snapshot atomically.
func (f *FileSnapshots) Save(_ context.Context, s Snapshot) error {
	body, err := msgpack.Marshal(&s)
	if err != nil {
		return err
	}
	b := binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(body))
	b = append(b, body...)
	path := f.path(s.Entity)
	tmp, err := os.CreateTemp(f.dir, "snap-*.tmp")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err = tmp.Write(b); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
