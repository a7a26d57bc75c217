package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/segment"
)

// damaged is a store with one flipped byte inside an event frame of its
// second (sealed) segment.
type damaged struct {
	*testStore
	seg2     string // path of segment 2
	offset   int64  // of the damaged frame
	firstBad uint64 // sequence of the damaged event: every event before it must survive
}

func newDamagedStore(t *testing.T) *damaged {
	t.Helper()
	ts := newTestStore(t, 100)
	segs := segmentFiles(t, ts.dir)
	if len(segs) < 4 {
		t.Fatalf("want several segments, got %d", len(segs))
	}
	data, err := os.ReadFile(segs[1])
	if err != nil {
		t.Fatal(err)
	}
	ix, _, err := segment.ReadFooter(data, 2)
	if err != nil {
		t.Fatalf("segment 2 is not sealed: %v", err)
	}
	e := ix.Entries[2] // the third event of segment 2
	d := &damaged{testStore: ts, seg2: segs[1], offset: int64(e.Offset), firstBad: e.Seq}
	flipByte(t, d.seg2, d.offset+segment.FrameHeaderSize+5) // inside the payload: its CRC fails
	return d
}

// hideFooter also removes what lets the store open past the damage without
// reading it: the checkpoint, and segment 2's footer (its trailer magic).
// Opening then scans segment 2 and finds the damage, as Repair does.
func (d *damaged) hideFooter(t *testing.T) {
	t.Helper()
	if err := os.Remove(filepath.Join(d.dir, eventstore.CheckpointFileName)); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(d.seg2)
	if err != nil {
		t.Fatal(err)
	}
	flipByte(t, d.seg2, fi.Size()-2)
}

// snapshot returns the names and sizes of the store's files, to show that
// a command changed nothing.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(&b, "%s %d\n", rel, fi.Size())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// wantEventsUpTo checks that the store opens and dump prints exactly the
// events 1..n.
func wantEventsUpTo(t *testing.T, dir string, n uint64) {
	t.Helper()
	s, err := eventstore.OpenReadOnly(dir)
	if err != nil {
		t.Fatalf("store does not open after repair: %v", err)
	}
	last := s.LastSequence()
	_ = s.Close()
	if last != n {
		t.Fatalf("store holds %d events after repair, want %d", last, n)
	}
	r := runCmd(t, "", "dump", dir)
	r.wantCode(t, exitOK)
	if got := uint64(strings.Count(r.stdout, "\n")); got != n {
		t.Fatalf("dump after repair printed %d events, want %d", got, n)
	}
}

func TestVerifyHealthy(t *testing.T) {
	ts := newTestStore(t, 100)
	r := runCmd(t, "", "verify", ts.dir)
	r.wantCode(t, exitOK)
	wantContains(t, "verify", r.stdout, fmt.Sprintf("%d events in 8 streams", ts.events), "checkpoint valid", "OK: no problems")
	if r.stderr != "" {
		t.Errorf("verify without a terminal wrote to stderr (no progress bar expected):\n%s", r.stderr)
	}
}

func TestVerifyProgressBar(t *testing.T) {
	ts := newTestStore(t, 100)
	r := runApp(t, t.Context(), &app{stderrTerminal: true}, "verify", ts.dir)
	r.wantCode(t, exitOK)
	wantContains(t, "stderr", r.stderr, "verifying")
	r = runApp(t, t.Context(), &app{stderrTerminal: true}, "verify", "--quiet", ts.dir)
	r.wantCode(t, exitOK)
	if r.stderr != "" {
		t.Errorf("verify --quiet wrote to stderr:\n%s", r.stderr)
	}
}

func TestVerifyNamesDamage(t *testing.T) {
	d := newDamagedStore(t)
	r := runCmd(t, "", "verify", d.dir)
	r.wantCode(t, exitFailure)
	wantContains(t, "verify", r.stdout, fmt.Sprintf("segment 2  file %s  offset %d  frame: ", d.seg2, d.offset))
	wantContains(t, "stderr", r.stderr, "problem(s) found")
}

// TestRepairFlippedByteInSealedSegment: damage in a sealed segment whose
// footer and the checkpoint still index it. Repair must never report
// success while verify still finds the damage; when it repairs, every
// event before the damage is kept.
func TestRepairFlippedByteInSealedSegment(t *testing.T) {
	d := newDamagedStore(t)
	r := runCmd(t, "", "repair", d.dir, "--yes")
	if r.code == exitOK {
		wantEventsUpTo(t, d.dir, d.firstBad-1)
		runCmd(t, "", "verify", d.dir).wantCode(t, exitOK)
		return
	}
	// eventstore.Repair finds damage the way Open does, and Open trusts the
	// checkpoint and footers without reading the frames they index: the
	// command then says that the damage remains.
	r.wantCode(t, exitFailure)
	wantContains(t, "repair", r.stdout, "verify still finds", fmt.Sprintf("segment 2  file %s  offset %d  frame: ", d.seg2, d.offset))
	wantContains(t, "stderr", r.stderr, "problem(s) that repair does not remove")
}

func TestRepairQuarantinesDamage(t *testing.T) {
	d := newDamagedStore(t)
	d.hideFooter(t)
	if _, err := eventstore.OpenReadOnly(d.dir); !errors.Is(err, eventstore.ErrCorrupt) {
		t.Fatalf("damaged store opens: %v", err)
	}
	r := runCmd(t, "", "verify", d.dir)
	r.wantCode(t, exitFailure)
	wantContains(t, "verify", r.stdout, fmt.Sprintf("segment 2  file %s  offset %d  frame: ", d.seg2, d.offset))

	// inspect still lists the segments, and says what to do.
	r = runCmd(t, "", "inspect", d.dir)
	r.wantCode(t, exitFailure)
	wantContains(t, "inspect", r.stdout, "0000000001.seg", "sealed, footer", fmt.Sprintf("damaged at offset %d", d.offset))
	wantContains(t, "stderr", r.stderr, "batpak repair")

	before := snapshot(t, d.dir)
	plan := fmt.Sprintf("segment 2 offset %d: ", d.offset)

	// Non-interactive stdin without --yes: refuse, change nothing.
	r = runCmd(t, "y\n", "repair", d.dir)
	r.wantCode(t, exitFailure)
	wantContains(t, "repair", r.stdout, "would move", plan)
	wantContains(t, "stderr", r.stderr, "refusing to repair", "--yes")
	if after := snapshot(t, d.dir); after != before {
		t.Fatalf("refused repair changed the store:\n%s\nwas\n%s", after, before)
	}

	// --dry-run, even with --yes, changes nothing.
	r = runCmd(t, "", "repair", d.dir, "--dry-run", "--yes")
	r.wantCode(t, exitFailure)
	wantContains(t, "repair --dry-run", r.stdout, plan, "later segments")
	if after := snapshot(t, d.dir); after != before {
		t.Fatal("repair --dry-run changed the store")
	}

	// A person at a terminal who answers no.
	r = runApp(t, t.Context(), &app{stdin: strings.NewReader("n\n"), stdinTerminal: true}, "repair", d.dir)
	r.wantCode(t, exitFailure)
	wantContains(t, "stderr", r.stderr, "[y/N]", "declined")
	if after := snapshot(t, d.dir); after != before {
		t.Fatal("declined repair changed the store")
	}

	// And one who answers yes.
	r = runApp(t, t.Context(), &app{stdin: strings.NewReader("y\n"), stdinTerminal: true}, "repair", d.dir)
	r.wantCode(t, exitOK)
	wantContains(t, "repair", r.stdout, "repaired:", plan,
		filepath.Join(d.dir, eventstore.QuarantineDir, fmt.Sprintf("0000000002.seg.%d.bin", d.offset)),
		"0000000003.seg", fmt.Sprintf("events kept: %d", d.firstBad-1), "verify: OK")
	wantEventsUpTo(t, d.dir, d.firstBad-1)
	runCmd(t, "", "verify", d.dir).wantCode(t, exitOK)
	r = runCmd(t, "", "inspect", d.dir)
	r.wantCode(t, exitOK)
	wantContains(t, "inspect", r.stdout, "quarantine  ")

	// Nothing left to do.
	r = runCmd(t, "", "repair", d.dir)
	r.wantCode(t, exitOK)
	wantContains(t, "repair", r.stdout, "nothing to repair", "verify: OK")
}

func TestRepairWithYes(t *testing.T) {
	d := newDamagedStore(t)
	d.hideFooter(t)
	r := runCmd(t, "", "repair", d.dir, "--yes")
	r.wantCode(t, exitOK)
	wantEventsUpTo(t, d.dir, d.firstBad-1)
}

func TestRepairLockedStore(t *testing.T) {
	ts := newTestStore(t, 5)
	s, err := eventstore.Open(ts.dir, storeOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := runCmd(t, "", "repair", ts.dir, "--yes")
	r.wantCode(t, exitFailure)
	wantContains(t, "stderr", r.stderr, "locked", "close the process")
}
