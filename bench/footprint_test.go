package main

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFootprintUnwritten: a file of 8 KiB written into 1 MiB reserved with
// fallocate (as a preallocated segment) counts 1 MiB allocated, of which
// 1 MiB - 8 KiB unwritten.
func TestFootprintUnwritten(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "0000000001.seg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Fallocate(int(f.Fd()), 0, 0, 1<<20); err != nil {
		t.Skipf("no fallocate here: %v", err)
	}
	if _, err := f.WriteAt(make([]byte, 8192), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "checkpoint"), make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	fp, err := diskFootprint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fp.FiemapErr != "" {
		t.Skipf("no FIEMAP here: %s", fp.FiemapErr)
	}
	if fp.Allocated != 1<<20+4096 || fp.Unwritten != 1<<20-8192 || fp.Apparent != 1<<20+4096 {
		t.Errorf("allocated %d, unwritten %d, apparent %d", fp.Allocated, fp.Unwritten, fp.Apparent)
	}
	if fp.Written["seg"] != 8192 || fp.Written["checkpoint"] != 4096 || fp.WrittenTotal() != 8192+4096 {
		t.Errorf("written by kind: %v", fp.Written)
	}
}

func TestFileKind(t *testing.T) {
	for name, want := range map[string]string{
		"0000000001.seg": "seg", "checkpoint": "checkpoint", "MANIFEST-000001": "MANIFEST", "000004.log": "log",
		"OPTIONS-000003": "OPTIONS", "1.blk": "blk", "index.db": "db", "events.db-wal": "db-wal", "000123": "numbered",
	} {
		if got := fileKind(name); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
}
