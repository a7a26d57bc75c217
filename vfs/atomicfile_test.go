package vfs_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/batpak-go/batpak/vfs"
	"github.com/batpak-go/batpak/vfs/faultfs"
)

// The ways a machine can stop: a process crash keeps what reached the page
// cache; a power loss keeps only what was synced, with the directory
// entries as of their last sync or, on a journaling file system, all of them.
var cuts = []struct {
	name string
	cut  func(*faultfs.FS) error
}{
	{"crash", func(f *faultfs.FS) error { f.Crash(); return nil }},
	{"power loss", (*faultfs.FS).PowerLoss},
	{"power loss keeping entries", (*faultfs.FS).PowerLossKeepingEntries},
}

// atomicCase is what is on disk before a WriteFileAtomic and what it writes.
type atomicCase struct {
	name  string
	old   []byte // nil: no file
	stale []byte // a temp file left by an earlier crash, if not nil
	data  []byte
}

var atomicCases = []atomicCase{
	{name: "new file", data: bytes.Repeat([]byte("n"), 100)},
	{name: "shorter than the old", old: bytes.Repeat([]byte("o"), 300), data: bytes.Repeat([]byte("n"), 100)},
	{name: "longer than the old", old: bytes.Repeat([]byte("o"), 100), data: bytes.Repeat([]byte("n"), 5000)},
	{name: "over a stale temp file", old: []byte("old"), stale: bytes.Repeat([]byte("s"), 400), data: []byte("new")},
	{name: "empty", old: []byte("old"), data: []byte{}},
}

// setup writes tc's files behind the FS's back (so they count as durable)
// and returns the target path.
func (tc atomicCase) setup(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "target")
	if tc.old != nil {
		mustWrite(t, path, tc.old)
	}
	if tc.stale != nil {
		mustWrite(t, path+vfs.TempSuffix, tc.stale)
	}
	return path
}

func mustWrite(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// calls returns the number of counted calls fn makes on a fresh FS.
func calls(t *testing.T, fn func(*faultfs.FS) error) int {
	t.Helper()
	f := faultfs.New(nil)
	if err := fn(f); err != nil {
		t.Fatal(err)
	}
	return f.Calls()
}

// TestWriteFileAtomicCrashAtEveryCall stops the machine at every counted
// call of a WriteFileAtomic (and just after it) in every way faultfs
// models: the target then holds the old content or the new, whole, and
// the new once WriteFileAtomic returned nil. After a restart the write
// goes through and leaves nothing but the target.
func TestWriteFileAtomicCrashAtEveryCall(t *testing.T) {
	for _, tc := range atomicCases {
		n := calls(t, func(f *faultfs.FS) error {
			return vfs.WriteFileAtomic(f, tc.setup(t), tc.data, 0o600)
		})
		if n != 5 { // open, write, sync, rename, syncdir
			t.Fatalf("%s: a clean WriteFileAtomic makes %d counted calls, want 5", tc.name, n)
		}
		for _, cut := range cuts {
			for k := 1; k <= n+1; k++ {
				t.Run(fmt.Sprintf("%s/%s/at call %d", tc.name, cut.name, k), func(t *testing.T) {
					path := tc.setup(t)
					f := faultfs.New(nil)
					f.CrashAt(k)
					err := vfs.WriteFileAtomic(f, path, tc.data, 0o600)
					if (err != nil) != (k <= n) {
						t.Fatalf("WriteFileAtomic = %v with a crash at call %d of %d", err, k, n)
					}
					if err != nil && !errors.Is(err, faultfs.ErrCrashed) {
						t.Fatalf("error %v does not wrap the crash", err)
					}
					if cerr := cut.cut(f); cerr != nil {
						t.Fatal(cerr)
					}
					checkOldOrNew(t, path, tc.old, tc.data, err == nil, f.Log())

					f.Restart()
					if err := vfs.WriteFileAtomic(f, path, tc.data, 0o600); err != nil {
						t.Fatalf("after a restart: %v", err)
					}
					checkOnly(t, path, tc.data)
				})
			}
		}
	}
}

// checkOldOrNew fails unless path holds old (absent for nil) or data,
// and data if done.
func checkOldOrNew(t *testing.T, path string, old, data []byte, done bool, log []faultfs.Call) {
	t.Helper()
	got, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(got, data):
	case done:
		t.Fatalf("the write returned nil, the file holds %d bytes (%v), want the new %d; calls:\n%s", len(got), err, len(data), callLines(log))
	case old == nil && errors.Is(err, fs.ErrNotExist):
	case old != nil && err == nil && bytes.Equal(got, old):
	default:
		t.Fatalf("the file holds %d bytes %.20q (%v): neither the old %d nor the new %d; calls:\n%s", len(got), got, err, len(old), len(data), callLines(log))
	}
}

// checkOnly fails unless path holds data and is the only entry of its
// directory.
func checkOnly(t *testing.T, path string, data []byte) {
	t.Helper()
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the file holds %d bytes (%v), want the new %d", len(got), err, len(data))
	}
	des, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(des) != 1 {
		names := make([]string, 0, len(des))
		for _, de := range des {
			names = append(names, de.Name())
		}
		t.Fatalf("directory holds %v, want only %s", names, filepath.Base(path))
	}
}

func callLines(log []faultfs.Call) string {
	var b bytes.Buffer
	for _, c := range log {
		fmt.Fprintf(&b, "  %v\n", c)
	}
	return b.String()
}

// TestWriteFileAtomicOrder checks the calls themselves: the data are
// synced before the rename and the directory after it.
func TestWriteFileAtomicOrder(t *testing.T) {
	path := atomicCases[1].setup(t)
	f := faultfs.New(nil)
	if err := vfs.WriteFileAtomic(f, path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range f.Log() {
		got = append(got, fmt.Sprintf("%s %s", c.Op, filepath.Base(c.Path)))
	}
	want := []string{"open target.tmp", "write target.tmp", "sync target.tmp", "rename target.tmp", "syncdir " + filepath.Base(filepath.Dir(path))}
	if !slices.Equal(got, want) {
		t.Fatalf("calls %q, want %q", got, want)
	}
}

// TestWriteFileAtomicErrors fails every call in turn (and a short write,
// and a full disk): the error wraps the cause, no temp file is left, and
// the target is untouched unless only the directory sync failed.
func TestWriteFileAtomicErrors(t *testing.T) {
	tc := atomicCases[1]
	faults := []struct {
		name    string
		inject  func(*faultfs.FS)
		cause   error
		renamed bool
	}{
		{"open", func(f *faultfs.FS) { f.FailOn(faultfs.OpOpen, 1, nil) }, syscall.EIO, false},
		{"write", func(f *faultfs.FS) { f.FailOn(faultfs.OpWrite, 1, nil) }, syscall.EIO, false},
		{"short write", func(f *faultfs.FS) { f.ShortWriteAt(1, -1, syscall.ENOSPC) }, syscall.ENOSPC, false},
		{"disk full", func(f *faultfs.FS) { f.SetFull(true) }, syscall.ENOSPC, false},
		{"sync", func(f *faultfs.FS) { f.FailOn(faultfs.OpSync, 1, nil) }, syscall.EIO, false},
		{"rename", func(f *faultfs.FS) { f.FailOn(faultfs.OpRename, 1, nil) }, syscall.EIO, false},
		{"syncdir", func(f *faultfs.FS) { f.FailOn(faultfs.OpSyncDir, 1, nil) }, syscall.EIO, true},
	}
	for _, ft := range faults {
		t.Run(ft.name, func(t *testing.T) {
			path := tc.setup(t)
			f := faultfs.New(nil)
			ft.inject(f)
			err := vfs.WriteFileAtomic(f, path, tc.data, 0o600)
			if !errors.Is(err, ft.cause) {
				t.Fatalf("WriteFileAtomic = %v, want an error wrapping %v", err, ft.cause)
			}
			want := tc.old
			if ft.renamed {
				want = tc.data
			}
			checkOnly(t, path, want)
		})
	}
}

// TestWriteFileSynced: the data are synced (a power loss after the caller
// synced the directory keeps them), and a failure at any call leaves no
// file.
func TestWriteFileSynced(t *testing.T) {
	data := bytes.Repeat([]byte("d"), 1000)
	dir := t.TempDir()
	path := filepath.Join(dir, "out")
	f := faultfs.New(nil)
	if err := vfs.WriteFileSynced(f, path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := f.PowerLoss(); err != nil {
		t.Fatal(err)
	}
	checkOnly(t, path, data)

	n := calls(t, func(f *faultfs.FS) error {
		return vfs.WriteFileSynced(f, filepath.Join(t.TempDir(), "out"), data, 0o600)
	})
	for k := 1; k <= n; k++ {
		path := filepath.Join(t.TempDir(), "out")
		f := faultfs.New(nil)
		f.FailAt(k, nil)
		if err := vfs.WriteFileSynced(f, path, data, 0o600); !errors.Is(err, syscall.EIO) {
			t.Fatalf("call %d failed: WriteFileSynced = %v", k, err)
		}
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("call %d failed: the file is left behind (%v)", k, err)
		}
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	for _, b := range [][]byte{{}, []byte("x"), bytes.Repeat([]byte("abc"), 10000)} {
		path := filepath.Join(dir, "f")
		mustWrite(t, path, b)
		got, err := vfs.ReadFile(faultfs.New(nil), path)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("ReadFile = %d bytes, %v; want %d", len(got), err, len(b))
		}
	}
	if _, err := vfs.ReadFile(vfs.OSFS{}, filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadFile of a missing file = %v", err)
	}
	if _, err := vfs.ReadFile(vfs.OSFS{}, dir); err == nil {
		t.Fatal("ReadFile read a directory")
	}
	f := faultfs.New(nil)
	f.FailOn(faultfs.OpRead, 1, nil)
	if _, err := vfs.ReadFile(f, filepath.Join(dir, "f")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("ReadFile with a failing read = %v", err)
	}
}

// TestMkdirAllSynced: the directories it creates survive a power loss;
// the control shows that those MkdirAll alone creates do not.
func TestMkdirAllSynced(t *testing.T) {
	for _, synced := range []bool{true, false} {
		base := t.TempDir()
		dir := filepath.Join(base, "a", "b", "c")
		f := faultfs.New(nil)
		mkdir := f.MkdirAll
		if synced {
			mkdir = func(p string, perm fs.FileMode) error { return vfs.MkdirAllSynced(f, p, perm) }
		}
		if err := mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := vfs.WriteFileAtomic(f, filepath.Join(dir, "file"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := f.PowerLoss(); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "file"))
		if synced && (err != nil || string(got) != "x") {
			t.Fatalf("after MkdirAllSynced and a power loss: %q, %v", got, err)
		}
		if !synced && !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("control: a directory never synced survived a power loss (%v)", err)
		}
	}
	// An existing directory is left alone and nothing is synced.
	f := faultfs.New(nil)
	if err := vfs.MkdirAllSynced(f, t.TempDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if n := f.Count(faultfs.OpSyncDir); n != 0 {
		t.Fatalf("%d directory syncs for an existing directory", n)
	}
}
