package projection

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/batpak-go/batpak/vfs"
)

// FileDeadLetters keeps the parked events of each projection in one file
// in a directory, "<name>.parked", beside the projection's checkpoint when
// the directory is a [FileCheckpoints] one ([FileCheckpoints.DeadLetters]).
//
// A file is JSON (a list of [DeadLetter]) followed by its CRC-32C, and is
// replaced whole with [vfs.WriteFileAtomic]: after a crash it holds
// the list before the change or after it, never a mix, and a change that
// returned survives a power loss. A projection with nothing parked has no
// file. Each change reads, changes and replaces the file under an
// exclusive lock on "<name>.parked.lock" (flock(2) on unix), so runners
// and the batpak command in other processes can change the same list.
type FileDeadLetters struct {
	dir string
	fs  vfs.FS
}

// ErrBadDeadLetters is returned for a damaged dead-letter file or record.
// It is not guessed around: the damage is left for a person to look at.
var ErrBadDeadLetters = errors.New("projection: damaged dead-letters")

const (
	parkedSuffix = ".parked"
	lockSuffix   = ".lock"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// NewFileDeadLetters returns a dead-letter store in dir, creating it
// (0700) and its missing parents durably. fsys nil is [vfs.OSFS].
func NewFileDeadLetters(dir string, fsys vfs.FS) (*FileDeadLetters, error) {
	if fsys == nil {
		fsys = vfs.OSFS{}
	}
	if err := vfs.MkdirAllSynced(fsys, dir, 0o700); err != nil {
		return nil, fmt.Errorf("projection: create %s: %w", dir, err)
	}
	return &FileDeadLetters{dir: dir, fs: fsys}, nil
}

func (f *FileDeadLetters) path(name string) (string, error) {
	if !validName.MatchString(name) {
		return "", fmt.Errorf("%w: %q", ErrBadName, name)
	}
	return filepath.Join(f.dir, name+parkedSuffix), nil
}

// Names returns the projections that have parked events, sorted.
func (f *FileDeadLetters) Names() ([]string, error) {
	return namesWithSuffix(f.fs, f.dir, parkedSuffix)
}

// namesWithSuffix lists the projection names of the files in dir that end
// in suffix.
func namesWithSuffix(fsys vfs.FS, dir, suffix string) ([]string, error) {
	des, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), suffix)
		if ok && de.Type().IsRegular() && validName.MatchString(name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// Parked returns name's parked events in sequence order.
func (f *FileDeadLetters) Parked(_ context.Context, name string) ([]DeadLetter, error) {
	path, err := f.path(name)
	if err != nil {
		return nil, err
	}
	// No lock: the file is replaced whole, by rename, so a read sees one
	// list or the next.
	return f.read(path)
}

// Park adds or replaces d.
func (f *FileDeadLetters) Park(_ context.Context, d DeadLetter) error {
	return f.change(d.Projection, func(m map[uint64]DeadLetter) error {
		m[d.Sequence] = d
		return nil
	})
}

// Remove drops the parked event seq of name.
func (f *FileDeadLetters) Remove(_ context.Context, name string, seq uint64) error {
	return f.change(name, func(m map[uint64]DeadLetter) error {
		delete(m, seq)
		return nil
	})
}

// Resolve sets the Resolution of the parked event seq of name.
func (f *FileDeadLetters) Resolve(_ context.Context, name string, seq uint64, how Resolution) error {
	if err := checkResolution(how); err != nil {
		return err
	}
	return f.change(name, func(m map[uint64]DeadLetter) error {
		d, ok := m[seq]
		if !ok {
			return fmt.Errorf("%w: %s #%d", ErrNotParked, name, seq)
		}
		d.Resolution = how
		m[seq] = d
		return nil
	})
}

// change reads name's list, lets fn change it and writes it back, under
// the lock; an unchanged list is not written.
func (f *FileDeadLetters) change(name string, fn func(map[uint64]DeadLetter) error) error {
	path, err := f.path(name)
	if err != nil {
		return err
	}
	return withFileLock(path+lockSuffix, func() error {
		list, err := f.read(path)
		if err != nil {
			return err
		}
		m := make(map[uint64]DeadLetter, len(list))
		for _, d := range list {
			m[d.Sequence] = d
		}
		if err := fn(m); err != nil {
			return err
		}
		next := sortedLetters(m)
		if slices.Equal(list, next) {
			return nil
		}
		return f.write(path, next)
	})
}

func (f *FileDeadLetters) read(path string) ([]DeadLetter, error) {
	b, err := vfs.ReadFile(f.fs, path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(b) < 4 || crc32.Checksum(b[:len(b)-4], castagnoli) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return nil, fmt.Errorf("%w: %s: CRC mismatch", ErrBadDeadLetters, path)
	}
	var list []DeadLetter
	if err := json.Unmarshal(b[:len(b)-4], &list); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadDeadLetters, path, err)
	}
	return list, nil
}

// write replaces the file with list, or removes it when list is empty.
func (f *FileDeadLetters) write(path string, list []DeadLetter) error {
	if len(list) == 0 {
		if err := f.fs.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("projection: remove %s: %w", path, err)
		}
		if err := f.fs.SyncDir(f.dir); err != nil {
			return fmt.Errorf("projection: remove %s: %w", path, err)
		}
		return nil
	}
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	if err := vfs.WriteFileAtomic(f.fs, path, b, 0o600); err != nil {
		return fmt.Errorf("projection: park: %w", err)
	}
	return nil
}
