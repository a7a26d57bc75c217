package eventstore_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
)

// mapsOf counts the process's mappings of path, as /proc/self/maps lists
// them (a replaced file's name ends in " (deleted)").
func mapsOf(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skip("no /proc/self/maps:", err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasSuffix(line, " "+path) || strings.HasSuffix(line, " "+path+" (deleted)") {
			n++
		}
	}
	return n
}

// The store keeps the checkpoint it opened from mapped while its index
// uses it, through appends and newer checkpoints that replace the file,
// and lets the mapping go once the store is closed and unreferenced.
func TestCheckpointMappingReleased(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, eventstore.CheckpointFileName)
	ctx := context.Background()
	k := kind.Custom(1, 1)
	appendSome := func(s *eventstore.Store, n int) {
		t.Helper()
		for i := range n {
			if _, err := s.Append(ctx, batpak.Coordinate{Entity: string(rune('a' + i%5)), Scope: "s"}, []batpak.Event{{Kind: k}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	s, err := eventstore.Open(dir, eventstore.WithSyncMode(eventstore.SyncNone), eventstore.WithCheckpointEvery(10))
	if err != nil {
		t.Fatal(err)
	}
	appendSome(s, 20)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	base := mapsOf(t, path)

	s, err = eventstore.Open(dir, eventstore.WithSyncMode(eventstore.SyncNone), eventstore.WithCheckpointEvery(10))
	if err != nil {
		t.Fatal(err)
	}
	if p := s.Stats().ColdStart.Path; p != "checkpoint" {
		t.Fatalf("opened from %s", p)
	}
	if got := mapsOf(t, path); got <= base {
		t.Fatalf("%d mappings of the checkpoint after the open, %d before", got, base)
	}
	// Periodic checkpoints replace the file; the old one stays mapped
	// and every stream still reads whole.
	appendSome(s, 40)
	for e := range 5 {
		n := 0
		for _, err := range s.ReadStream(ctx, batpak.Coordinate{Entity: string(rune('a' + e)), Scope: "s"}, 1) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 12 {
			t.Fatalf("stream %c: %d events, want 12", 'a'+e, n)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = nil
	// Cleanups run after a collection finds the index unreachable, on a
	// goroutine of their own: collect until the mapping is gone.
	for i := 0; mapsOf(t, path) > base; i++ {
		if i == 1000 {
			t.Fatalf("checkpoint still mapped after %d collections", i)
		}
		runtime.GC()
		runtime.Gosched()
	}
}
