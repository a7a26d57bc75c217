package eventstore_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/batpak-go/batpak/eventstore"
)

// A damaged frame at the end of the active segment followed by an older
// valid frame (a frame whose event comes before the damage) is a torn
// tail, not corruption: nothing after the damage continues the log.
// Recovery judges it the same whether it resumes at the checkpoint's offset
// or scans the segment from its start.
func TestTornTailBeforeStaleFrame(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base")
	s := dtOpen(t, base)
	dtAppend(t, s, "a", dtEvents("x", 5))
	dtClose(t, s) // the checkpoint covers all five events
	segs := dtSegments(t, base)
	id := segs[len(segs)-1]
	frames, end, _ := dtScan(t, dtSegPath(base, id), id)
	data := dtReadFile(t, dtSegPath(base, id))
	stale := data[frames[1].Off:frames[1].End()] // the frame of event 2
	damaged := []byte{0, 0, 1, 0, 0xde, 0xad, 0xbe, 0xef}
	dtPatch(t, dtSegPath(base, id), end, append(damaged, stale...))

	for _, tc := range []struct {
		name       string
		checkpoint bool
	}{{"checkpoint", true}, {"scan", false}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "s")
			dtCopyDir(t, base, dir)
			if !tc.checkpoint {
				if err := os.Remove(filepath.Join(dir, eventstore.CheckpointFileName)); err != nil {
					t.Fatal(err)
				}
			}
			s, err := eventstore.Open(dir)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer dtClose(t, s)
			if got := len(dtReadAll(t, s)); got != 5 {
				t.Fatalf("%d events after recovery, want 5", got)
			}
			if cs := s.Stats().ColdStart; cs.TruncatedBytes == 0 {
				t.Fatalf("the torn tail was not cut: %+v", cs)
			}
		})
	}
}
