package faultfs_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/batpak-go/batpak/vfs"
	"github.com/batpak-go/batpak/vfs/faultfs"
)

// A file written and synced survives a power loss; what was written after
// the last sync does not, and a file whose directory entry was never synced
// disappears.
func Example() {
	dir, _ := os.MkdirTemp("", "faultfs-example")
	defer os.RemoveAll(dir)
	fsys := faultfs.New(vfs.OSFS{})

	f, _ := fsys.OpenFile(filepath.Join(dir, "log"), os.O_RDWR|os.O_CREATE, 0o600)
	_, _ = f.WriteAt([]byte("durable"), 0)
	_ = f.Sync()
	_ = fsys.SyncDir(dir)
	_, _ = f.WriteAt([]byte(" and lost"), 7)
	_ = f.Close()
	g, _ := fsys.OpenFile(filepath.Join(dir, "new"), os.O_RDWR|os.O_CREATE, 0o600)
	_, _ = g.WriteAt([]byte("x"), 0)
	_ = g.Sync()
	_ = g.Close()

	fsys.FailOn(faultfs.OpSync, 1, syscall.EIO) // the next sync fails
	h, _ := fsys.OpenFile(filepath.Join(dir, "log"), os.O_RDWR, 0)
	err := h.Sync()
	fmt.Println("sync:", errors.Is(err, syscall.EIO))
	_ = h.Close()

	_ = fsys.PowerLoss()
	b, _ := os.ReadFile(filepath.Join(dir, "log"))
	_, statErr := os.Stat(filepath.Join(dir, "new"))
	fmt.Printf("log: %q, new exists: %v\n", b, statErr == nil)
	fmt.Println(len(fsys.Log()), "calls logged")
	// Output:
	// sync: true
	// log: "durable", new exists: false
	// 10 calls logged
}
