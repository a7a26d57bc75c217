package projection_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/batpak-go/batpak/projection"
	"github.com/batpak-go/batpak/vfs/faultfs"
)

// cuts are the ways faultfs can stop the machine.
var cuts = []struct {
	name string
	cut  func(*faultfs.FS) error
}{
	{"crash", func(f *faultfs.FS) error { f.Crash(); return nil }},
	{"power loss", (*faultfs.FS).PowerLoss},
	{"power loss keeping entries", (*faultfs.FS).PowerLossKeepingEntries},
}

// TestFileCheckpointsCrashAtEveryCall stops the machine at every counted
// call of a Save (and just after it): the checkpoint read back is the
// previous one or the new one, never a damaged one, and the new one once
// Save returned nil, so the rename is made durable by a directory sync.
// The store's directory is created through the same FS, so a power loss
// that dropped it would show too.
func TestFileCheckpointsCrashAtEveryCall(t *testing.T) {
	ctx := context.Background()
	const next = 1<<40 + 3
	for _, prev := range []uint64{0, 7} { // 0: no checkpoint yet
		open := func(t *testing.T, f *faultfs.FS) (*projection.FileCheckpoints, string) {
			t.Helper()
			dir := filepath.Join(t.TempDir(), "new", "checkpoints")
			cps, err := projection.NewFileCheckpoints(dir, projection.WithCheckpointFS(f))
			if err != nil {
				t.Fatal(err)
			}
			if prev != 0 {
				if err := cps.Save(ctx, "p", prev); err != nil {
					t.Fatal(err)
				}
			}
			return cps, dir
		}
		f := faultfs.New(nil)
		cps, _ := open(t, f)
		before := f.Calls()
		if err := cps.Save(ctx, "p", next); err != nil {
			t.Fatal(err)
		}
		n := f.Calls() - before
		if n < 5 { // open, write, sync, rename, syncdir
			t.Fatalf("a Save makes %d counted calls: it does not go through the FS", n)
		}
		for _, cut := range cuts {
			for k := 1; k <= n+1; k++ {
				t.Run(fmt.Sprintf("previous %d/%s/at call %d of %d", prev, cut.name, k, n), func(t *testing.T) {
					f := faultfs.New(nil)
					cps, dir := open(t, f)
					f.CrashAt(k)
					err := cps.Save(ctx, "p", next)
					if (err != nil) != (k <= n) {
						t.Fatalf("Save = %v with a crash at call %d of %d", err, k, n)
					}
					if err := cut.cut(f); err != nil {
						t.Fatal(err)
					}
					after, err2 := projection.NewFileCheckpoints(dir) // the real file system
					if err2 != nil {
						t.Fatal(err2)
					}
					got, lerr := after.Load(ctx, "p")
					switch {
					case lerr != nil:
						t.Fatalf("Load after the cut: %v", lerr)
					case got == next:
					case err == nil:
						t.Fatalf("Save returned nil, Load = %d, want %d", got, next)
					case got != prev:
						t.Fatalf("Load = %d, want %d or %d", got, prev, next)
					}
				})
			}
		}
	}
}

// TestFileCheckpointsSaveErrors fails every call of a Save in turn: the
// error wraps the cause, the previous checkpoint stays (the directory sync
// comes after the rename: there the new one is in place) and no temp file
// is left.
func TestFileCheckpointsSaveErrors(t *testing.T) {
	ctx := context.Background()
	for k := 1; k <= 5; k++ {
		dir := t.TempDir()
		f := faultfs.New(nil)
		cps, err := projection.NewFileCheckpoints(dir, projection.WithCheckpointFS(f))
		if err != nil {
			t.Fatal(err)
		}
		if err := cps.Save(ctx, "p", 7); err != nil {
			t.Fatal(err)
		}
		f.FailAt(k, syscall.EIO)
		if err := cps.Save(ctx, "p", 8); !errors.Is(err, syscall.EIO) {
			t.Fatalf("call %d failed: Save = %v", k, err)
		}
		want := uint64(7)
		if k == 5 {
			want = 8
		}
		if got, err := cps.Load(ctx, "p"); err != nil || got != want {
			t.Fatalf("call %d failed: Load = %d, %v; want %d", k, got, err, want)
		}
		if des, err := os.ReadDir(dir); err != nil || len(des) != 1 {
			t.Fatalf("call %d failed: directory holds %v (%v), want only the checkpoint", k, des, err)
		}
	}
	// A failed read is an error, not a damaged checkpoint.
	f := faultfs.New(nil)
	cps, err := projection.NewFileCheckpoints(t.TempDir(), projection.WithCheckpointFS(f))
	if err != nil {
		t.Fatal(err)
	}
	if err := cps.Save(ctx, "p", 7); err != nil {
		t.Fatal(err)
	}
	f.FailOn(faultfs.OpRead, 1, syscall.EIO)
	if _, err := cps.Load(ctx, "p"); !errors.Is(err, syscall.EIO) || errors.Is(err, projection.ErrBadCheckpoint) {
		t.Fatalf("Load with a failing read = %v", err)
	}
}

// TestFileCheckpointsConcurrentSaves: saves of one name share a temp file,
// so they must not overlap; every one succeeds and the last word is one of
// them.
func TestFileCheckpointsConcurrentSaves(t *testing.T) {
	ctx := context.Background()
	cps, err := projection.NewFileCheckpoints(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				for _, name := range []string{"shared", fmt.Sprintf("own-%d", w)} {
					if err := cps.Save(ctx, name, uint64(w*each+i+1)); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	got, err := cps.Load(ctx, "shared")
	if err != nil || got == 0 || got > workers*each {
		t.Fatalf("Load = %d, %v", got, err)
	}
	for w := range workers {
		if got, err := cps.Load(ctx, fmt.Sprintf("own-%d", w)); err != nil || got != uint64(w*each+each) {
			t.Fatalf("own-%d: Load = %d, %v; want %d", w, got, err, w*each+each)
		}
	}
}
