//go:build unix

package eventstore

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/vfs"
	"github.com/batpak-go/batpak/vfs/faultfs"
)

// A read-only open scans the active segment through a mapping while the
// writer may seal it, which first cuts the space reserved after the
// frames: the scan then reads pages past the end of the file. That was a
// SIGBUS that killed the reading process; now the open starts over and
// sees the file as it is.
func TestReadOnlyOpenSurvivesSealCuttingTheActiveSegment(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	c := batpak.Coordinate{Entity: "acct:1", Scope: "bank"}
	for i := range 10 {
		if _, err := w.Append(context.Background(), c, []batpak.Event{{Kind: kind.Custom(1, 1), Payload: i}}); err != nil {
			t.Fatal(err)
		}
	}
	last, _ := w.Position(w.LastSequence())
	end := int64(last.Offset) + int64(last.Length)
	active := w.segmentPath(last.Segment)

	mapped := cutOnFirstMap(t, active, end)
	ro, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatalf("read-only open while the active segment was cut: %v", err)
	}
	defer ro.Close()
	if *mapped != 2 {
		t.Fatalf("active segment mapped %d times, want 2 (the scan of the first mapping faults, the open starts over)", *mapped)
	}
	if n := ro.LastSequence(); n != 10 {
		t.Fatalf("read-only store sees %d events, want 10", n)
	}
	if _, err := w.Append(context.Background(), c, []batpak.Event{{Kind: kind.Custom(1, 1), Payload: 10}}); err != nil {
		t.Fatalf("the writer after the cut: %v", err)
	}
}

// Verify takes no lock, so a writer may seal the active segment under it
// too: the segment is reported as not verified, not as damage, and the
// process lives.
func TestVerifySurvivesSealCuttingTheActiveSegment(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range 10 {
		if _, err := w.Append(context.Background(), batpak.Coordinate{Entity: "acct:1", Scope: "bank"}, []batpak.Event{{Kind: kind.Custom(1, 1), Payload: i}}); err != nil {
			t.Fatal(err)
		}
	}
	last, _ := w.Position(w.LastSequence())
	cutOnFirstMap(t, w.segmentPath(last.Segment), int64(last.Offset)+int64(last.Length))
	rep, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0].Detail, "not verified: a writer cut the file") {
		t.Fatalf("Verify while the active segment was cut: problems %v, warnings %v", rep.Problems, rep.Warnings)
	}
}

// cutOnFirstMap cuts the file at path to size once, right after recovery
// or Verify first maps it, as the writer's Seal does before it writes the
// footer, and counts the mappings of path.
func cutOnFirstMap(t *testing.T, path string, size int64) *int {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() < size+int64(3*os.Getpagesize()) {
		t.Fatalf("%s is %d bytes, frames end at %d: the test needs space reserved after them", path, fi.Size(), size)
	}
	mapped := new(int)
	testHookMapped = func(p string) {
		if p != path {
			return
		}
		*mapped++
		if *mapped == 1 {
			if err := os.Truncate(path, size); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(func() { testHookMapped = nil })
	return mapped
}

// A read-only store shows only durable events: what it indexed of the
// active segment and the writer had not synced yet is synced by the open,
// so a power loss right after cannot take back an event it showed.
func TestReadOnlyOpenShowsOnlyDurableEvents(t *testing.T) {
	dir := t.TempDir()
	fsys := faultfs.New(vfs.OSFS{})
	w, err := Open(dir, WithFS(fsys), WithSyncMode(SyncNone))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := w.Append(context.Background(), batpak.Coordinate{Entity: "acct:1", Scope: "bank"}, []batpak.Event{{Kind: kind.Custom(1, 1), Payload: i}}); err != nil {
			t.Fatal(err)
		}
	}
	ro, err := OpenReadOnly(dir, WithFS(fsys))
	if err != nil {
		t.Fatal(err)
	}
	shown := ro.LastSequence()
	_ = ro.Close()
	if err := fsys.PowerLoss(); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	after, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if shown != 10 || after.LastSequence() != shown {
		t.Fatalf("the read-only store showed %d events; after a power loss the store has %d", shown, after.LastSequence())
	}
}

// A read-only open whose sync of the active segment fails does not show
// what it could not make durable: the open fails with the error.
func TestReadOnlyOpenFailsWhenItsSyncFails(t *testing.T) {
	dir := t.TempDir()
	fsys := faultfs.New(vfs.OSFS{})
	w, err := Open(dir, WithFS(fsys), WithSyncMode(SyncNone))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Append(context.Background(), batpak.Coordinate{Entity: "acct:1", Scope: "bank"}, []batpak.Event{{Kind: kind.Custom(1, 1), Payload: 1}}); err != nil {
		t.Fatal(err)
	}
	fsys.FailOn(faultfs.OpSync, 1, syscall.EIO)
	if ro, err := OpenReadOnly(dir, WithFS(fsys)); !errors.Is(err, syscall.EIO) {
		if ro != nil {
			_ = ro.Close()
		}
		t.Fatalf("read-only open whose sync failed: %v, want EIO", err)
	}
}
