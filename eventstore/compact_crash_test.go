package eventstore_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/vfs"
)

var errInjected = errors.New("injected fault")

// faultAtFS fails the n-th file system call (counting every open, write,
// sync, rename, remove and directory sync) once armed.
type faultAtFS struct {
	vfs.OSFS
	armed atomic.Bool
	calls atomic.Int64
	failN int64
}

func (f *faultAtFS) hit() error {
	if f.armed.Load() && f.calls.Add(1) == f.failN {
		return errInjected
	}
	return nil
}

func (f *faultAtFS) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	if flag&(os.O_WRONLY|os.O_RDWR) != 0 {
		if err := f.hit(); err != nil {
			return nil, err
		}
	}
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultAtFile{File: file, fs: f}, nil
}

func (f *faultAtFS) Rename(o, n string) error {
	if err := f.hit(); err != nil {
		return err
	}
	return f.OSFS.Rename(o, n)
}

func (f *faultAtFS) Remove(name string) error {
	if err := f.hit(); err != nil {
		return err
	}
	return f.OSFS.Remove(name)
}

func (f *faultAtFS) SyncDir(name string) error {
	if err := f.hit(); err != nil {
		return err
	}
	return f.OSFS.SyncDir(name)
}

type faultAtFile struct {
	vfs.File
	fs *faultAtFS
}

func (f *faultAtFile) WriteAt(b []byte, off int64) (int, error) {
	if err := f.fs.hit(); err != nil {
		return 0, err
	}
	return f.File.WriteAt(b, off)
}

func (f *faultAtFile) Sync() error {
	if err := f.fs.hit(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *faultAtFile) Truncate(size int64) error {
	if err := f.fs.hit(); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

// copyStoreDir copies the files of a store as they are on disk now: what a
// crash at this moment would leave (the page cache survives a process crash).
func copyStoreDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	des, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if de.IsDir() || de.Name() == eventstore.LockFileName {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, de.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// A fault (and so a crash) at every file system call of a compaction leaves
// a store that opens, verifies and holds exactly the events it should: the
// old segment or the new one, never a mix that loses an event.
func TestCompactFaultAtEveryStep(t *testing.T) {
	ctx := context.Background()
	for n := int64(1); ; n++ {
		fsys := &faultAtFS{failN: n}
		dir := t.TempDir()
		s, err := eventstore.Open(dir, eventstore.WithFS(fsys), eventstore.WithSegmentMaxBytes(8<<10), eventstore.WithSyncMode(eventstore.SyncNone))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 120 {
			c := batpak.Coordinate{Entity: []string{"keep", "drop"}[i%2], Scope: "t"}
			if _, err := s.Append(ctx, c, []batpak.Event{{Kind: kind.Custom(1, 1), Payload: make([]byte, 150)}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.DeleteStream(ctx, batpak.Coordinate{Entity: "drop", Scope: "t"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		fsys.armed.Store(true)
		_, cerr := s.Compact(ctx)
		fsys.armed.Store(false)
		crashed := copyStoreDir(t, dir)
		_ = s.Close()

		r, err := eventstore.Open(crashed)
		if err != nil {
			t.Fatalf("fault at call %d (%v): reopen: %v", n, cerr, err)
		}
		kept := 0
		for rec, err := range r.ReadAll(context.Background(), 0) {
			if err != nil {
				t.Fatalf("fault at call %d: read: %v", n, err)
			}
			if rec.Coordinate.Entity != "keep" {
				t.Fatalf("fault at call %d: deleted stream's event %d is back", n, rec.Sequence)
			}
			kept++
		}
		if kept != 60 || r.LastSequence() != 120 {
			t.Fatalf("fault at call %d: %d events kept, last sequence %d", n, kept, r.LastSequence())
		}
		if err := r.VerifyChain(context.Background(), batpak.Coordinate{Entity: "keep", Scope: "t"}); err != nil {
			t.Fatalf("fault at call %d: %v", n, err)
		}
		_ = r.Close()
		if vr, err := eventstore.Verify(crashed); err != nil || !vr.OK() {
			t.Fatalf("fault at call %d: verify: %v %v", n, vr.Problems, err)
		}
		if cerr == nil && fsys.calls.Load() < n {
			t.Logf("compaction survived a fault at each of its %d file system calls", n-1)
			return
		}
		if n > 500 {
			t.Fatal("compaction never finished without reaching the fault")
		}
	}
}
