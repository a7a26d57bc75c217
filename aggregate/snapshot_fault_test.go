package aggregate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/batpak-go/batpak/aggregate"
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

// TestFileSnapshotsCrashAtEveryCall stops the machine at every counted
// call of a Save (and just after it): the snapshot read back is the
// previous one or the new one, never a torn one, and the new one once Save
// returned nil, so the rename is made durable by a directory sync. The
// store's directory is created through the same FS, so a power loss that
// dropped it would show too.
func TestFileSnapshotsCrashAtEveryCall(t *testing.T) {
	ctx := context.Background()
	snap := func(v uint64, size int) aggregate.Snapshot {
		return aggregate.Snapshot{Coordinate: co("acct"), Version: v, Type: "t", Data: bytes.Repeat([]byte{byte(v)}, size)}
	}
	next := snap(10, 3000)
	for _, prev := range []*aggregate.Snapshot{nil, new(snap(5, 100)), new(snap(5, 9000))} {
		open := func(t *testing.T, f *faultfs.FS) (*aggregate.FileSnapshots, string) {
			t.Helper()
			dir := filepath.Join(t.TempDir(), "new", "snaps")
			fs, err := aggregate.NewFileSnapshots(dir, aggregate.WithSnapshotFS(f))
			if err != nil {
				t.Fatal(err)
			}
			if prev != nil {
				if err := fs.Save(ctx, *prev); err != nil {
					t.Fatal(err)
				}
			}
			return fs, dir
		}
		f := faultfs.New(nil)
		fs, _ := open(t, f)
		before := f.Calls()
		if err := fs.Save(ctx, next); err != nil {
			t.Fatal(err)
		}
		n := f.Calls() - before
		if n < 5 { // open, write, sync, rename, syncdir
			t.Fatalf("a Save makes %d counted calls: it does not go through the FS", n)
		}
		prevName := "none"
		if prev != nil {
			prevName = fmt.Sprintf("%d bytes", len(prev.Data))
		}
		for _, cut := range cuts {
			for k := 1; k <= n+1; k++ {
				t.Run(fmt.Sprintf("previous %s/%s/at call %d of %d", prevName, cut.name, k, n), func(t *testing.T) {
					f := faultfs.New(nil)
					fs, dir := open(t, f)
					f.CrashAt(k)
					err := fs.Save(ctx, next)
					if (err != nil) != (k <= n) {
						t.Fatalf("Save = %v with a crash at call %d of %d", err, k, n)
					}
					if err := cut.cut(f); err != nil {
						t.Fatal(err)
					}
					after, err2 := aggregate.NewFileSnapshots(dir) // the real file system
					if err2 != nil {
						t.Fatal(err2)
					}
					got, ok, lerr := after.Load(ctx, co("acct"))
					switch {
					case lerr != nil:
						t.Fatalf("Load after the cut: %v", lerr)
					case ok && got.Version == next.Version && bytes.Equal(got.Data, next.Data):
					case err == nil:
						t.Fatalf("Save returned nil, Load = v%d (ok %v), want v%d", got.Version, ok, next.Version)
					case prev == nil && !ok:
					case prev != nil && ok && got.Version == prev.Version && bytes.Equal(got.Data, prev.Data):
					default:
						t.Fatalf("Load = v%d with %d bytes (ok %v): neither the previous snapshot nor the new one", got.Version, len(got.Data), ok)
					}
				})
			}
		}
	}
}

// TestFileSnapshotsSaveErrors fails every call of a Save in turn: the
// error wraps the cause, the previous snapshot stays (the directory sync
// comes after the rename: there the new one is in place) and no temp file
// is left.
func TestFileSnapshotsSaveErrors(t *testing.T) {
	ctx := context.Background()
	for k := 1; k <= 5; k++ {
		dir := t.TempDir()
		f := faultfs.New(nil)
		fs, err := aggregate.NewFileSnapshots(dir, aggregate.WithSnapshotFS(f))
		if err != nil {
			t.Fatal(err)
		}
		if err := fs.Save(ctx, aggregate.Snapshot{Coordinate: co("e"), Version: 1}); err != nil {
			t.Fatal(err)
		}
		f.FailAt(k, syscall.EIO)
		if err := fs.Save(ctx, aggregate.Snapshot{Coordinate: co("e"), Version: 2}); !errors.Is(err, syscall.EIO) {
			t.Fatalf("call %d failed: Save = %v", k, err)
		}
		want := uint64(1)
		if k == 5 {
			want = 2
		}
		if got, ok, err := fs.Load(ctx, co("e")); err != nil || !ok || got.Version != want {
			t.Fatalf("call %d failed: Load = v%d, %v, %v; want v%d", k, got.Version, ok, err, want)
		}
		if des, err := os.ReadDir(dir); err != nil || len(des) != 1 {
			t.Fatalf("call %d failed: directory holds %v (%v), want only the snapshot", k, des, err)
		}
	}
}

// TestFileSnapshotsConcurrentSaves: saves of one entity share a temp file,
// so they must not overlap; every one succeeds, the file left is whole,
// and no temp file remains.
func TestFileSnapshotsConcurrentSaves(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fs, err := aggregate.NewFileSnapshots(dir)
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				v := uint64(w*each + i + 1)
				// Sizes differ, so overlapping writes of one temp file would tear it.
				s := aggregate.Snapshot{Coordinate: co("shared"), Version: v, Type: "t", Data: bytes.Repeat([]byte{byte(w)}, 100*(w+1))}
				if err := fs.Save(ctx, s); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	got, ok, err := fs.Load(ctx, co("shared"))
	if err != nil || !ok || len(got.Data) == 0 || !bytes.Equal(got.Data, bytes.Repeat(got.Data[:1], 100*(int(got.Data[0])+1))) {
		t.Fatalf("Load = %+v, %v, %v", got, ok, err)
	}
	if des, err := os.ReadDir(dir); err != nil || len(des) != 1 {
		t.Fatalf("directory holds %v (%v), want only the snapshot", des, err)
	}
}
