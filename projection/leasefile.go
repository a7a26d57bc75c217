//go:build unix

package projection

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/batpak-go/batpak/vfs"
)

// FileLeases are [Leases] held as flock(2) locks on files in a directory,
// one file per projection ("<name>.lease"), for runners on one machine:
// the kernel holds a lock as long as its holder's file is open and drops
// it when the process dies, however it dies, so a lease is never lost
// while its holder lives and is free the moment it does not. A waiting
// Acquire tries again every poll interval (default 100 ms), which bounds
// the takeover after a crash.
//
// The files are never removed: removing one while it is locked would let
// a second holder lock a new file of the same name. Holders write their
// process id into the file, for people looking at the directory.
type FileLeases struct {
	dir  string
	poll time.Duration
}

// FileLeasesOption configures [FileLeases].
type FileLeasesOption func(*FileLeases)

// WithLeasePoll sets how often a waiting Acquire tries to lock the lease
// file (default 100 ms).
func WithLeasePoll(d time.Duration) FileLeasesOption {
	return func(f *FileLeases) { f.poll = max(d, time.Millisecond) }
}

// NewFileLeases returns leases in dir, creating it (0700) and its missing
// parents durably.
func NewFileLeases(dir string, opts ...FileLeasesOption) (*FileLeases, error) {
	f := &FileLeases{dir: dir, poll: 100 * time.Millisecond}
	for _, o := range opts {
		o(f)
	}
	if err := vfs.MkdirAllSynced(vfs.OSFS{}, dir, 0o700); err != nil {
		return nil, fmt.Errorf("projection: create %s: %w", dir, err)
	}
	return f, nil
}

// Acquire locks name's lease file, waiting while another holder (another
// process, or another Acquire in this one) has it. name must be fit for a
// file name, as for [FileCheckpoints] ([ErrBadName]).
func (f *FileLeases) Acquire(ctx context.Context, name string) (Lease, error) {
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("%w: %q", ErrBadName, name)
	}
	path := filepath.Join(f.dir, name+".lease")
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
		l, err := tryLockFile(path)
		if err != nil || l != nil {
			return l, err
		}
		t.Reset(f.poll)
	}
}

// tryLockFile locks the file at path if no one holds it; nil, nil when
// someone does.
func tryLockFile(path string) (*fileLease, error) {
	fd, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("projection: lease %s: %w", path, err)
	}
	err = unix.Flock(int(fd.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		_ = fd.Close()
		return nil, nil
	}
	if err != nil {
		_ = fd.Close()
		return nil, fmt.Errorf("projection: lease %s: %w", path, err)
	}
	// The lock is on the file we opened: make sure it is still the one at
	// path (nothing replaced it between the open and the lock).
	var held, named unix.Stat_t
	if err := unix.Fstat(int(fd.Fd()), &held); err != nil {
		_ = fd.Close()
		return nil, fmt.Errorf("projection: lease %s: %w", path, err)
	}
	if err := unix.Lstat(path, &named); err != nil || held.Dev != named.Dev || held.Ino != named.Ino {
		_ = fd.Close()
		return nil, nil
	}
	if err := fd.Truncate(0); err == nil {
		_, _ = fd.WriteAt([]byte("pid "+strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &fileLease{fd: fd, lost: make(chan struct{})}, nil
}

// fileLease is a locked lease file. The kernel keeps the lock until the
// file is closed, so it is never lost: Lost is never closed.
type fileLease struct {
	once sync.Once
	fd   *os.File
	lost chan struct{}
}

func (l *fileLease) Lost() <-chan struct{} { return l.lost }

// Release unlocks and closes the lease file; a second Release does nothing.
func (l *fileLease) Release(context.Context) error {
	var err error
	l.once.Do(func() {
		// Closing the file drops the lock; unlock first so a holder's
		// duplicate of the descriptor (none is made here) cannot keep it.
		_ = unix.Flock(int(l.fd.Fd()), unix.LOCK_UN)
		err = l.fd.Close()
	})
	return err
}

var _ Leases = (*FileLeases)(nil)
