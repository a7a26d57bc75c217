package projection

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"
	"regexp"
	"sync"

	"github.com/batpak-go/batpak/vfs"
)

// Checkpoints stores, per projection name, the next global sequence it
// will apply (0 or absent: from the beginning).
type Checkpoints interface {
	Load(ctx context.Context, name string) (uint64, error)
	Save(ctx context.Context, name string, next uint64) error
}

// MemoryCheckpoints keeps checkpoints in memory.
type MemoryCheckpoints struct {
	mu  sync.Mutex
	m   map[string]uint64
	dls *MemoryDeadLetters
}

// NewMemoryCheckpoints returns an empty in-memory checkpoint store.
func NewMemoryCheckpoints() *MemoryCheckpoints {
	return &MemoryCheckpoints{m: make(map[string]uint64), dls: NewMemoryDeadLetters()}
}

// DeadLetters returns the in-memory store where a runner using these
// checkpoints parks events.
func (c *MemoryCheckpoints) DeadLetters() DeadLetters { return c.dls }

// Load returns the checkpoint of name.
func (c *MemoryCheckpoints) Load(_ context.Context, name string) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[name], nil
}

// Save sets the checkpoint of name.
func (c *MemoryCheckpoints) Save(_ context.Context, name string, next uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[name] = next
	return nil
}

// FileCheckpoints keeps one small file per projection in a directory,
// protected by a CRC and replaced atomically with [vfs.WriteFileAtomic]
// (temp file, sync, rename, directory sync): after a crash a checkpoint is
// the previous one or the new one, and a saved one survives a power loss.
type FileCheckpoints struct {
	dir   string
	fs    vfs.FS
	dls   *FileDeadLetters
	locks [16]sync.Mutex // saves of one name share a temp file: one at a time
}

// FileCheckpointsOption configures a [FileCheckpoints].
type FileCheckpointsOption func(*FileCheckpoints)

// WithCheckpointFS replaces the file system (by default [vfs.OSFS]),
// e.g. with one that injects faults.
func WithCheckpointFS(fsys vfs.FS) FileCheckpointsOption {
	return func(c *FileCheckpoints) { c.fs = fsys }
}

// ErrBadName is returned for a projection name unfit for a file name.
var ErrBadName = errors.New("projection: name must match [A-Za-z0-9._-]{1,128} and not start with a dot")

// ErrBadCheckpoint is returned for a damaged checkpoint file. It is not
// guessed around: the caller decides whether to Rebuild.
var ErrBadCheckpoint = errors.New("projection: damaged checkpoint file")

const checkpointSuffix = ".checkpoint"

var validName = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$`)

// NewFileCheckpoints returns a checkpoint store in dir, creating it (0700)
// and its missing parents durably.
func NewFileCheckpoints(dir string, opts ...FileCheckpointsOption) (*FileCheckpoints, error) {
	c := &FileCheckpoints{dir: dir, fs: vfs.OSFS{}}
	for _, o := range opts {
		o(c)
	}
	if err := vfs.MkdirAllSynced(c.fs, dir, 0o700); err != nil {
		return nil, fmt.Errorf("projection: create %s: %w", dir, err)
	}
	c.dls = &FileDeadLetters{dir: dir, fs: c.fs}
	return c, nil
}

// DeadLetters returns the [FileDeadLetters] in the checkpoints' directory
// (through the same FS): where a runner using these checkpoints parks
// events, unless told otherwise ([WithDeadLetters]).
func (c *FileCheckpoints) DeadLetters() DeadLetters { return c.dls }

// Dir returns the checkpoints' directory.
func (c *FileCheckpoints) Dir() string { return c.dir }

// Names returns the projections that have a checkpoint here, sorted.
func (c *FileCheckpoints) Names() ([]string, error) {
	return namesWithSuffix(c.fs, c.dir, checkpointSuffix)
}

func (c *FileCheckpoints) path(name string) (string, error) {
	if !validName.MatchString(name) {
		return "", fmt.Errorf("%w: %q", ErrBadName, name)
	}
	return filepath.Join(c.dir, name+checkpointSuffix), nil
}

// Load reads the checkpoint of name; a missing file is 0.
func (c *FileCheckpoints) Load(_ context.Context, name string) (uint64, error) {
	path, err := c.path(name)
	if err != nil {
		return 0, err
	}
	b, err := vfs.ReadFile(c.fs, path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(b) != 12 || crc32.ChecksumIEEE(b[:8]) != binary.BigEndian.Uint32(b[8:]) {
		return 0, fmt.Errorf("%w: %s", ErrBadCheckpoint, path)
	}
	return binary.BigEndian.Uint64(b[:8]), nil
}

// Save writes the checkpoint of name durably.
func (c *FileCheckpoints) Save(_ context.Context, name string, next uint64) error {
	path, err := c.path(name)
	if err != nil {
		return err
	}
	b := binary.BigEndian.AppendUint64(nil, next)
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
	mu := &c.locks[crc32.ChecksumIEEE([]byte(name))%uint32(len(c.locks))]
	mu.Lock()
	defer mu.Unlock()
	if err := vfs.WriteFileAtomic(c.fs, path, b, 0o600); err != nil {
		return fmt.Errorf("projection: save checkpoint %s: %w", name, err)
	}
	return nil
}
