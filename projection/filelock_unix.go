//go:build unix

package projection

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// withFileLock runs fn holding an exclusive flock(2) on the file at path
// (created if missing, never removed): other processes, and other calls in
// this one, wait for it. The kernel drops the lock if the process dies.
func withFileLock(path string, fn func() error) error {
	fd, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("projection: lock %s: %w", path, err)
	}
	defer func() { _ = fd.Close() }()
	for {
		err = unix.Flock(int(fd.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("projection: lock %s: %w", path, err)
	}
	defer func() { _ = unix.Flock(int(fd.Fd()), unix.LOCK_UN) }()
	return fn()
}
