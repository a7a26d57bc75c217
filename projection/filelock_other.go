//go:build !unix

package projection

import "sync"

var fileLocks sync.Map // path → *sync.Mutex

// withFileLock runs fn holding a lock on path. Without flock(2) it only
// keeps out other calls in this process.
func withFileLock(path string, fn func() error) error {
	mu, _ := fileLocks.LoadOrStore(path, new(sync.Mutex))
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	return fn()
}
