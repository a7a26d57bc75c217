//go:build unix

package eventstore

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/vfs"
	"github.com/batpak-go/batpak/vfs/faultfs"
)

// A read-only store counts as data what its view holds: not the space the
// writer reserved after the active segment's frames, nor segments the
// writer began since.
func TestReadOnlyDataBytesIsItsView(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, WithSegmentMaxBytes(8<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	add := func(n int) {
		for i := range n {
			if _, err := w.Append(context.Background(), batpak.Coordinate{Entity: "acct:1", Scope: "bank"}, []batpak.Event{{Kind: kind.Custom(1, 1), Payload: strings.Repeat("x", 300+i)}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(40)
	ro, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	ws, rs := w.Stats(), ro.Stats()
	if ws.Segments < 2 || ws.DataBytes >= ws.DiskBytes {
		t.Fatalf("writer: %d segments, %d data bytes of %d: the test needs sealed segments and reserved space", ws.Segments, ws.DataBytes, ws.DiskBytes)
	}
	if rs.DataBytes != ws.DataBytes {
		t.Fatalf("read-only DataBytes %d, writer's %d", rs.DataBytes, ws.DataBytes)
	}
	add(40) // the writer rotates on: the view stays as it was
	if got := ro.Stats().DataBytes; got != rs.DataBytes {
		t.Fatalf("read-only DataBytes moved from %d to %d while the writer appended", rs.DataBytes, got)
	}
}

// Close gives back the space reserved after the active segment's frames,
// and the next Open reserves it again and appends on.
func TestCloseGivesBackReservedSpace(t *testing.T) {
	dir := t.TempDir()
	c := batpak.Coordinate{Entity: "acct:1", Scope: "bank"}
	for round := range 2 {
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(context.Background(), c, []batpak.Event{{Kind: kind.Custom(1, 1), Payload: round}}); err != nil {
			t.Fatal(err)
		}
		open := s.Stats()
		if open.DiskBytes <= open.DataBytes {
			t.Fatalf("round %d: open store holds %d bytes for %d of data: nothing reserved", round, open.DiskBytes, open.DataBytes)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		ro, err := OpenReadOnly(dir)
		if err != nil {
			t.Fatal(err)
		}
		closed := ro.Stats()
		_ = ro.Close()
		if closed.DiskBytes != closed.DataBytes || closed.DataBytes != open.DataBytes || closed.Events != uint64(round+1) {
			t.Fatalf("round %d after Close: %d bytes on disk, %d of data (%d while open), %d events", round, closed.DiskBytes, closed.DataBytes, open.DataBytes, closed.Events)
		}
	}
}

// The cut Close makes is not synced: a power loss that undoes it leaves
// the reserved zeros after the frames, and the next open reads every
// event and reserves the space again.
func TestCloseCutUndoneByPowerLoss(t *testing.T) {
	dir := t.TempDir()
	fsys := faultfs.New(vfs.OSFS{})
	s, err := Open(dir, WithFS(fsys))
	if err != nil {
		t.Fatal(err)
	}
	c := batpak.Coordinate{Entity: "acct:1", Scope: "bank"}
	for i := range 3 {
		if _, err := s.Append(context.Background(), c, []batpak.Event{{Kind: kind.Custom(1, 1), Payload: i}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	closed, _ := os.Stat(segs[0])
	if err := fsys.PowerLoss(); err != nil {
		t.Fatal(err)
	}
	if undone, err := os.Stat(segs[0]); err != nil || undone.Size() <= closed.Size() {
		t.Fatalf("the power loss did not undo Close's cut: %d bytes after Close, %v after", closed.Size(), undone)
	}
	after, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if st := after.Stats(); after.LastSequence() != 3 || st.DiskBytes <= st.DataBytes {
		t.Fatalf("after a power loss undid Close's cut: %d events, %d bytes on disk for %d of data", after.LastSequence(), st.DiskBytes, st.DataBytes)
	}
}
