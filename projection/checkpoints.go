package projection

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"regexp"
	"sync"
)

// Checkpoints stores, per projection name, the next global sequence it
// will apply (0 or absent: from the beginning).
type Checkpoints interface {
	Load(ctx context.Context, name string) (uint64, error)
	Save(ctx context.Context, name string, next uint64) error
}

// MemoryCheckpoints keeps checkpoints in memory.
type MemoryCheckpoints struct {
	mu sync.Mutex
	m  map[string]uint64
}

// NewMemoryCheckpoints returns an empty in-memory checkpoint store.
func NewMemoryCheckpoints() *MemoryCheckpoints { return &MemoryCheckpoints{m: make(map[string]uint64)} }

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
// replaced atomically (temp file, sync, rename, directory sync) and
// protected by a CRC.
type FileCheckpoints struct{ dir string }

// ErrBadName is returned for a projection name unfit for a file name.
var ErrBadName = errors.New("projection: name must match [A-Za-z0-9._-]{1,128} and not start with a dot")

// ErrBadCheckpoint is returned for a damaged checkpoint file. It is not
// guessed around: the caller decides whether to Rebuild.
var ErrBadCheckpoint = errors.New("projection: damaged checkpoint file")

var validName = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$`)

// NewFileCheckpoints returns a checkpoint store in dir, creating it (0700).
func NewFileCheckpoints(dir string) (*FileCheckpoints, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &FileCheckpoints{dir: dir}, nil
}

func (c *FileCheckpoints) path(name string) (string, error) {
	if !validName.MatchString(name) {
		return "", fmt.Errorf("%w: %q", ErrBadName, name)
	}
	return filepath.Join(c.dir, name+".checkpoint"), nil
}

// Load reads the checkpoint of name; a missing file is 0.
func (c *FileCheckpoints) Load(_ context.Context, name string) (uint64, error) {
	path, err := c.path(name)
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
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
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	d, err := os.Open(c.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
