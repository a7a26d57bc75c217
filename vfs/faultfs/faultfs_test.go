package faultfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/batpak-go/batpak/vfs"
)

func mustOpen(t *testing.T, f *FS, path string, flag int) vfs.File {
	t.Helper()
	h, err := f.OpenFile(path, flag, 0o600)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	return h
}

func mustWrite(t *testing.T, h vfs.File, b []byte, off int64) {
	t.Helper()
	if n, err := h.WriteAt(b, off); err != nil || n != len(b) {
		t.Fatalf("write %d bytes at %d: %d, %v", len(b), off, n, err)
	}
}

func mustSync(t *testing.T, h vfs.File) {
	t.Helper()
	if err := h.Sync(); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// content returns the file's bytes, or nil and false if it does not exist.
func content(t *testing.T, path string) ([]byte, bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return b, true
}

func wantContent(t *testing.T, path string, want string) {
	t.Helper()
	got, ok := content(t, path)
	if !ok {
		t.Fatalf("%s does not exist, want %q", filepath.Base(path), want)
	}
	if string(got) != want {
		t.Fatalf("%s holds %q, want %q", filepath.Base(path), got, want)
	}
}

func wantAbsent(t *testing.T, path string) {
	t.Helper()
	if got, ok := content(t, path); ok {
		t.Fatalf("%s exists (%q), want it gone", filepath.Base(path), got)
	}
}

func TestCountAndLog(t *testing.T) {
	dir := t.TempDir()
	f := New(nil)
	p := filepath.Join(dir, "a")
	h := mustOpen(t, f, p, os.O_RDWR|os.O_CREATE)
	mustWrite(t, h, []byte("hello"), 0)
	mustSync(t, h)
	buf := make([]byte, 5)
	if _, err := h.ReadAt(buf, 0); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q, %v", buf, err)
	}
	must(t, h.Truncate(2))
	must(t, f.Preallocate(h, 100))
	if _, err := h.Stat(); err != nil { // uncounted
		t.Fatal(err)
	}
	must(t, h.Close()) // uncounted
	must(t, f.Rename(p, p+"2"))
	must(t, f.MkdirAll(filepath.Join(dir, "sub"), 0o700))
	if _, err := f.ReadDir(dir); err != nil {
		t.Fatal(err)
	}
	must(t, f.SyncDir(dir))
	must(t, f.Remove(p+"2"))

	want := []Op{OpOpen, OpWrite, OpSync, OpRead, OpTruncate, OpPreallocate, OpRename, OpMkdir, OpReadDir, OpSyncDir, OpRemove}
	log := f.Log()
	if len(log) != len(want) || f.Calls() != len(want) {
		t.Fatalf("log %v, %d calls; want %v", log, f.Calls(), want)
	}
	for i, c := range log {
		if c.N != i+1 || c.Op != want[i] || c.Err != nil || c.Fault {
			t.Fatalf("call %d: %v, want #%d %s", i, c, i+1, want[i])
		}
	}
	if log[1].Off != 0 || log[1].Len != 5 || log[1].Done != 5 || log[5].Off != 100 || filepath.Base(log[6].To) != "a2" {
		t.Fatalf("call details: %v", log)
	}
	for _, op := range Ops() {
		if f.Count(op) != 1 {
			t.Fatalf("Count(%s) = %d", op, f.Count(op))
		}
	}
	if s := log[6].String(); !strings.Contains(s, "rename a -> a2") {
		t.Fatalf("String() = %q", s)
	}
	f.ResetLog()
	if len(f.Log()) != 0 || f.Calls() != len(want) {
		t.Fatal("ResetLog")
	}
}

func TestFaults(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a")

	t.Run("FailAt", func(t *testing.T) {
		f := New(nil)
		h := mustOpen(t, f, p, os.O_RDWR|os.O_CREATE|os.O_TRUNC)
		f.FailAt(2, syscall.ENOSPC) // the sync below
		mustWrite(t, h, []byte("x"), 0)
		err := h.Sync()
		var pe *fs.PathError
		if !errors.Is(err, syscall.ENOSPC) || !errors.As(err, &pe) || pe.Op != "fdatasync" {
			t.Fatalf("sync: %v", err)
		}
		mustSync(t, h) // fires once
		if c := f.Log()[2]; !c.Fault || c.Op != OpSync {
			t.Fatalf("log: %v", f.Log())
		}
		must(t, h.Close())
	})
	t.Run("FailOn", func(t *testing.T) {
		f := New(nil)
		f.FailOn(OpOpen, 2, nil)
		h := mustOpen(t, f, p, os.O_RDWR)
		if _, err := f.OpenFile(p, os.O_RDWR, 0); !errors.Is(err, syscall.EIO) {
			t.Fatalf("second open: %v", err)
		}
		must(t, h.Close())
		// A failed create creates nothing.
		f.FailOn(OpOpen, 1, syscall.EACCES)
		if _, err := f.OpenFile(p+"new", os.O_RDWR|os.O_CREATE, 0o600); !errors.Is(err, syscall.EACCES) {
			t.Fatalf("create: %v", err)
		}
		wantAbsent(t, p+"new")
		f.FailOn(OpRename, 1, syscall.EXDEV)
		if err := f.Rename(p, p+"x"); !errors.Is(err, syscall.EXDEV) {
			t.Fatalf("rename: %v", err)
		}
		wantAbsent(t, p+"x")
	})
	t.Run("ShortWrite", func(t *testing.T) {
		f := New(nil)
		h := mustOpen(t, f, p, os.O_RDWR|os.O_CREATE|os.O_TRUNC)
		f.ShortWriteAt(1, 3, syscall.EIO)
		n, err := h.WriteAt([]byte("abcdefgh"), 0)
		if n != 3 || !errors.Is(err, syscall.EIO) {
			t.Fatalf("short write: %d, %v", n, err)
		}
		wantContent(t, p, "abc")
		f.ShortWriteAt(1, -1, nil) // half
		if n, err := h.WriteAt([]byte("ABCDEFGH"), 0); n != 4 || err == nil {
			t.Fatalf("half write: %d, %v", n, err)
		}
		wantContent(t, p, "ABCD")
		must(t, h.Close())
	})
	t.Run("MatchRepeat", func(t *testing.T) {
		f := New(nil)
		f.Inject(Fault{Op: OpWrite, Match: func(c Call) bool { return c.Off >= 10 }, Repeat: true, Err: syscall.EIO})
		h := mustOpen(t, f, p, os.O_RDWR|os.O_CREATE|os.O_TRUNC)
		mustWrite(t, h, []byte("x"), 0)
		for range 3 {
			if _, err := h.WriteAt([]byte("y"), 10); !errors.Is(err, syscall.EIO) {
				t.Fatalf("repeating fault: %v", err)
			}
		}
		f.ClearFaults()
		mustWrite(t, h, []byte("y"), 10)
		must(t, h.Close())
	})
	t.Run("CrashAt", func(t *testing.T) {
		f := New(nil)
		h := mustOpen(t, f, p, os.O_RDWR|os.O_CREATE|os.O_TRUNC)
		f.CrashAt(2)
		mustWrite(t, h, []byte("one"), 0)
		if _, err := h.WriteAt([]byte("two"), 3); !errors.Is(err, ErrCrashed) {
			t.Fatalf("write at the crash: %v", err)
		}
		if err := f.SyncDir(dir); !errors.Is(err, ErrCrashed) || !f.Crashed() {
			t.Fatalf("call after the crash: %v", err)
		}
		wantContent(t, p, "one")
		must(t, h.Close()) // still closes
		f.Restart()
		mustSync(t, mustOpen(t, f, p, os.O_RDWR))
	})
	t.Run("SameCall", func(t *testing.T) {
		// Two faults due at the same call: the second takes the next one.
		f := New(nil)
		f.FailAt(1, syscall.EIO)
		f.FailAt(1, syscall.ENOSPC)
		_, err1 := f.OpenFile(p, os.O_RDONLY, 0)
		_, err2 := f.OpenFile(p, os.O_RDONLY, 0)
		if !errors.Is(err1, syscall.EIO) || !errors.Is(err2, syscall.ENOSPC) {
			t.Fatalf("%v, %v", err1, err2)
		}
	})
}

func TestFull(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a")
	f := New(nil)
	h := mustOpen(t, f, p, os.O_RDWR|os.O_CREATE)
	must(t, f.Preallocate(h, 16))
	mustWrite(t, h, []byte("0123456789"), 0)
	f.SetFull(true)
	if !f.Full() {
		t.Fatal("Full")
	}
	mustWrite(t, h, []byte("abcdef"), 10) // inside the reserved 16 bytes
	n, err := h.WriteAt([]byte("XYZ"), 15)
	if n != 1 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write that grows the file: %d, %v", n, err)
	}
	wantContent(t, p, "0123456789abcdeX")
	if err := f.Preallocate(h, 32); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("preallocate: %v", err)
	}
	must(t, f.Preallocate(h, 8)) // needs nothing new
	// Creating files and growing them sparsely still works; writing them does not.
	g := mustOpen(t, f, p+"2", os.O_RDWR|os.O_CREATE)
	if _, err := g.WriteAt([]byte("x"), 0); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write to a new file: %v", err)
	}
	// Freed space is not handed out again while full.
	must(t, h.Truncate(4))
	if _, err := h.WriteAt([]byte("xx"), 4); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write after truncate: %v", err)
	}
	f.SetFull(false)
	mustWrite(t, g, []byte("x"), 0)
	mustWrite(t, h, []byte("more than before"), 4)
	must(t, h.Close())
	must(t, g.Close())
}

func TestPowerLossFiles(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "old")
	must(t, os.WriteFile(old, []byte("durable before"), 0o600))
	f := New(nil)
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")

	ha := mustOpen(t, f, a, os.O_RDWR|os.O_CREATE) // created, synced, dir synced
	mustWrite(t, ha, []byte("synced"), 0)
	mustSync(t, ha)
	must(t, f.SyncDir(dir))
	mustWrite(t, ha, []byte(" and not"), 6) // dropped
	must(t, f.Preallocate(ha, 64))          // undone: the size goes back

	hb := mustOpen(t, f, b, os.O_RDWR|os.O_CREATE) // created after the dir sync: vanishes
	mustWrite(t, hb, []byte("gone"), 0)
	mustSync(t, hb)

	hc := mustOpen(t, f, c, os.O_RDWR|os.O_CREATE) // in the directory, never synced: empty
	mustWrite(t, hc, []byte("never synced"), 0)

	ho := mustOpen(t, f, old, os.O_RDWR) // pre-existing: durable as it was
	mustWrite(t, ho, []byte("CHANGED"), 0)
	must(t, ho.Truncate(3))

	must(t, f.SyncDir(dir)) // makes c's entry (and b's) durable, not their content
	hb2 := mustOpen(t, f, b+"2", os.O_RDWR|os.O_CREATE)
	mustWrite(t, hb2, []byte("x"), 0)
	mustSync(t, hb2)
	for _, h := range []vfs.File{ha, hb, hc, ho, hb2} {
		must(t, h.Close())
	}
	must(t, f.PowerLoss())

	wantContent(t, a, "synced")
	wantContent(t, b, "gone") // its entry was synced by the second SyncDir
	wantContent(t, c, "")
	wantContent(t, old, "durable before")
	wantAbsent(t, b+"2")
	if _, err := f.OpenFile(a, os.O_RDONLY, 0); !errors.Is(err, ErrCrashed) {
		t.Fatalf("open after power loss: %v", err)
	}
	// After a restart the model goes on from what is on disk.
	f.Restart()
	h := mustOpen(t, f, a, os.O_RDWR)
	mustWrite(t, h, []byte("SYNCED"), 0)
	must(t, h.Close())
	must(t, f.PowerLoss())
	wantContent(t, a, "synced")
}

func TestPowerLossDirectoryOps(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	must(t, os.WriteFile(p("keep"), []byte("keep v1"), 0o600))
	must(t, os.WriteFile(p("victim"), []byte("victim v1"), 0o600))
	must(t, os.WriteFile(p("removed"), []byte("removed v1"), 0o600))
	must(t, os.WriteFile(p("removed-synced"), []byte("x"), 0o600))
	f := New(nil)

	// rename over an existing file, not followed by a directory sync: undone
	h := mustOpen(t, f, p("victim.tmp"), os.O_RDWR|os.O_CREATE)
	mustWrite(t, h, []byte("victim v2"), 0)
	mustSync(t, h)
	must(t, h.Close())
	must(t, f.Rename(p("victim.tmp"), p("victim")))
	// remove, not synced: the file comes back
	must(t, f.Remove(p("removed")))
	// a pre-existing file renamed away and not synced: back under its old name
	must(t, f.Rename(p("keep"), p("kept")))
	must(t, f.PowerLoss())
	wantContent(t, p("victim"), "victim v1")
	wantAbsent(t, p("victim.tmp"))
	wantContent(t, p("removed"), "removed v1")
	wantContent(t, p("keep"), "keep v1")
	wantAbsent(t, p("kept"))

	// The same with directory syncs: everything sticks.
	f.Restart()
	h = mustOpen(t, f, p("victim.tmp"), os.O_RDWR|os.O_CREATE)
	mustWrite(t, h, []byte("victim v2"), 0)
	mustSync(t, h)
	must(t, h.Close())
	must(t, f.Rename(p("victim.tmp"), p("victim")))
	must(t, f.Remove(p("removed")))
	must(t, f.Remove(p("removed-synced")))
	must(t, f.SyncDir(dir))
	must(t, f.PowerLoss())
	wantContent(t, p("victim"), "victim v2")
	wantAbsent(t, p("victim.tmp"))
	wantAbsent(t, p("removed"))
	wantAbsent(t, p("removed-synced"))

	// A renamed file whose data was never synced: the name sticks, the data do not.
	f.Restart()
	h = mustOpen(t, f, p("n.tmp"), os.O_RDWR|os.O_CREATE)
	mustWrite(t, h, []byte("unsynced"), 0)
	must(t, h.Close())
	must(t, f.Rename(p("n.tmp"), p("n")))
	must(t, f.SyncDir(dir))
	must(t, f.PowerLoss())
	wantContent(t, p("n"), "")
}

func TestPowerLossNewDirectories(t *testing.T) {
	root := t.TempDir()
	store := filepath.Join(root, "a", "b")
	f := New(nil)
	must(t, f.MkdirAll(store, 0o700))
	h := mustOpen(t, f, filepath.Join(store, "data"), os.O_RDWR|os.O_CREATE)
	mustWrite(t, h, []byte("data"), 0)
	mustSync(t, h)
	must(t, h.Close())
	must(t, f.SyncDir(store))
	// b's entry in a and a's entry in root were never synced: all of it goes.
	must(t, f.PowerLoss())
	if _, err := os.Stat(filepath.Join(root, "a")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("new directory survived a power loss without a sync of its parent: %v", err)
	}

	f.Restart()
	must(t, f.MkdirAll(store, 0o700))
	h = mustOpen(t, f, filepath.Join(store, "data"), os.O_RDWR|os.O_CREATE)
	mustWrite(t, h, []byte("data"), 0)
	mustSync(t, h)
	must(t, h.Close())
	must(t, f.SyncDir(store))
	must(t, f.SyncDir(filepath.Join(root, "a")))
	must(t, f.SyncDir(root))
	must(t, f.PowerLoss())
	wantContent(t, filepath.Join(store, "data"), "data")

	// A removed (empty) directory whose removal was not synced comes back.
	f.Restart()
	sub := filepath.Join(store, "sub")
	must(t, f.MkdirAll(sub, 0o700))
	must(t, f.SyncDir(store))
	must(t, f.Remove(sub))
	must(t, f.PowerLoss())
	if fi, err := os.Stat(sub); err != nil || !fi.IsDir() {
		t.Fatalf("removed directory did not come back: %v", err)
	}
}

// TestMirror runs random operations and checks after each one that the
// FS's copy of every file is what the disk holds, then that a power loss
// leaves exactly the content of the last sync of files whose entries were
// synced.
func TestMirror(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			dir := t.TempDir()
			names := []string{"x", "y", "z"}
			f := New(nil)
			handles := map[string]vfs.File{}
			type want struct {
				data    []byte
				present bool
			}
			durable := map[string]want{} // only for names whose state is fully known
			for step := range 200 {
				name := names[rng.IntN(len(names))]
				path := filepath.Join(dir, name)
				h := handles[name]
				switch op := rng.IntN(10); {
				case h == nil || op == 0:
					if h != nil {
						must(t, h.Close())
					}
					nh, err := f.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
					must(t, err)
					handles[name] = nh
				case op < 5:
					b := make([]byte, 1+rng.IntN(40))
					for i := range b {
						b[i] = byte('a' + rng.IntN(26))
					}
					mustWrite(t, h, b, int64(rng.IntN(60)))
				case op == 5:
					must(t, h.Truncate(int64(rng.IntN(50))))
				case op == 6:
					must(t, f.Preallocate(h, int64(1+rng.IntN(120))))
				case op == 7:
					mustSync(t, h)
				case op == 8:
					must(t, f.SyncDir(dir))
				case op == 9:
					other := names[rng.IntN(len(names))]
					if other == name {
						continue
					}
					must(t, f.Rename(path, filepath.Join(dir, other)))
					if oh := handles[other]; oh != nil {
						must(t, oh.Close())
					}
					handles[other] = h
					delete(handles, name)
				}
				f.mu.Lock()
				d := f.dirs[dir]
				for n, nd := range d.live {
					got, _ := content(t, filepath.Join(dir, n))
					mirror := append(bytes.Clone(nd.data), make([]byte, nd.size-int64(len(nd.data)))...)
					if nd.loaded && !bytes.Equal(got, mirror) {
						f.mu.Unlock()
						t.Fatalf("step %d: %s on disk %q, mirror %q", step, n, got, mirror)
					}
				}
				f.mu.Unlock()
			}
			// Sync everything, change it again, lose power: the synced state remains.
			for name, h := range handles {
				mustSync(t, h)
				got, _ := content(t, filepath.Join(dir, name))
				durable[name] = want{got, true}
			}
			must(t, f.SyncDir(dir))
			for name := range durable {
				if h := handles[name]; h != nil {
					mustWrite(t, h, []byte("lost"), 0)
				}
			}
			for _, h := range handles {
				must(t, h.Close())
			}
			must(t, f.PowerLoss())
			for _, name := range slices.Sorted(maps.Keys(durable)) {
				got, ok := content(t, filepath.Join(dir, name))
				if !ok || !bytes.Equal(got, durable[name].data) {
					t.Fatalf("%s after power loss: %q (exists %v), want %q", name, got, ok, durable[name].data)
				}
			}
		})
	}
}

func TestPowerLossKeepingEntries(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	must(t, os.WriteFile(p("old"), []byte("old v1"), 0o600))
	must(t, os.WriteFile(p("gone"), []byte("gone"), 0o600))
	f := New(nil)
	h := mustOpen(t, f, p("new.tmp"), os.O_RDWR|os.O_CREATE)
	mustWrite(t, h, []byte("new, synced"), 0)
	mustSync(t, h)
	mustWrite(t, h, []byte(" and more"), 11)
	must(t, h.Close())
	must(t, f.Rename(p("new.tmp"), p("old")))
	must(t, f.Remove(p("gone")))
	h = mustOpen(t, f, p("unsynced"), os.O_RDWR|os.O_CREATE)
	mustWrite(t, h, []byte("data"), 0)
	must(t, h.Close())
	must(t, f.MkdirAll(p("sub"), 0o700))
	must(t, f.PowerLossKeepingEntries())
	wantContent(t, p("old"), "new, synced")
	wantAbsent(t, p("new.tmp"))
	wantAbsent(t, p("gone"))
	wantContent(t, p("unsynced"), "")
	if fi, err := os.Stat(p("sub")); err != nil || !fi.IsDir() {
		t.Fatalf("new directory: %v", err)
	}
}

func TestRenameDirectory(t *testing.T) {
	root := t.TempDir()
	f := New(nil)
	must(t, f.MkdirAll(filepath.Join(root, "a", "b"), 0o700))
	must(t, f.SyncDir(root))
	must(t, f.SyncDir(filepath.Join(root, "a")))
	h := mustOpen(t, f, filepath.Join(root, "a", "b", "x"), os.O_RDWR|os.O_CREATE)
	mustWrite(t, h, []byte("x1"), 0)
	mustSync(t, h)
	must(t, f.SyncDir(filepath.Join(root, "a", "b")))
	must(t, f.Rename(filepath.Join(root, "a"), filepath.Join(root, "c")))
	mustWrite(t, h, []byte("x2"), 0) // the open file moved with its directory
	mustSync(t, h)
	must(t, h.Close())
	must(t, f.SyncDir(root))
	must(t, f.PowerLoss())
	wantContent(t, filepath.Join(root, "c", "b", "x"), "x2")
	wantAbsent(t, filepath.Join(root, "a", "b", "x"))
}
