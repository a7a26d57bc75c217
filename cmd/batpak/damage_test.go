package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batpak-go/batpak"
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

// wantEventsBut checks that the store opens with sequences 1..n and that
// dump prints every event but the lost one.
func wantEventsBut(t *testing.T, dir string, n, lost uint64) {
	t.Helper()
	s, err := eventstore.OpenReadOnly(dir)
	if err != nil {
		t.Fatalf("store does not open after repair: %v", err)
	}
	last := s.LastSequence()
	_, gerr := s.GetSequence(context.Background(), lost)
	_ = s.Close()
	if last != n || !errors.Is(gerr, batpak.ErrNotFound) {
		t.Fatalf("store ends at %d after repair (want %d); lost event %d reads as %v", last, n, lost, gerr)
	}
	r := runCmd(t, "", "dump", dir)
	r.wantCode(t, exitOK)
	if got := uint64(strings.Count(r.stdout, "\n")); got != n-1 {
		t.Fatalf("dump after repair printed %d events, want %d", got, n-1)
	}
	if strings.Contains(r.stdout, fmt.Sprintf(`"sequence":%d,`, lost)) {
		t.Fatalf("dump prints the lost event %d", lost)
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
// footer and the checkpoint still index it (the store opens). Repair reads
// every frame, loses the event the flipped byte hit and nothing else, and
// names it.
func TestRepairFlippedByteInSealedSegment(t *testing.T) {
	d := newDamagedStore(t)
	r := runCmd(t, "", "repair", d.dir, "--yes")
	r.wantCode(t, exitOK)
	wantContains(t, "repair", r.stdout, "repaired:", fmt.Sprintf("segment 2 offset %d: ", d.offset),
		fmt.Sprintf("lost: sequence %d", d.firstBad), "lost 1 event(s):", "KNOWN FROM",
		fmt.Sprintf("events kept: %d of %d sequences", d.events-1, d.events), "verify: OK")
	wantEventsBut(t, d.dir, d.events, d.firstBad)
	runCmd(t, "", "verify", d.dir).wantCode(t, exitOK)
}

func TestRepairQuarantinesDamage(t *testing.T) {
	d := newDamagedStore(t)
	d.hideFooter(t)
	if _, err := eventstore.OpenReadOnly(d.dir); !errors.Is(err, batpak.ErrCorrupt) {
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
	wantContains(t, "repair", r.stdout, "repair would", plan)
	wantContains(t, "stderr", r.stderr, "refusing to repair", "--yes")
	if after := snapshot(t, d.dir); after != before {
		t.Fatalf("refused repair changed the store:\n%s\nwas\n%s", after, before)
	}

	// --dry-run, even with --yes, changes nothing.
	r = runCmd(t, "", "repair", d.dir, "--dry-run", "--yes")
	r.wantCode(t, exitFailure)
	wantContains(t, "repair --dry-run", r.stdout, plan, fmt.Sprintf("lost: sequence %d", d.firstBad), "footer: ")
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
		fmt.Sprintf("events kept: %d of %d", d.events-1, d.events), "verify: OK")
	if strings.Contains(r.stdout, "later segments") {
		t.Error("repair moved later segments aside")
	}
	wantEventsBut(t, d.dir, d.events, d.firstBad)
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
	wantEventsBut(t, d.dir, d.events, d.firstBad)
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

// inspect exits 1 when a segment it lists is damaged, even if the store
// opens (a damaged footer: open scans the segment instead).
func TestInspectExitsOnDamage(t *testing.T) {
	ts := newTestStore(t, 100)
	seg2 := segmentFiles(t, ts.dir)[1]
	fi, err := os.Stat(seg2)
	if err != nil {
		t.Fatal(err)
	}
	flipByte(t, seg2, fi.Size()-2) // the trailer: the footer no longer loads
	if s, err := eventstore.OpenReadOnly(ts.dir); err != nil {
		t.Fatalf("the store should open: %v", err)
	} else {
		_ = s.Close()
	}
	r := runCmd(t, "", "inspect", ts.dir)
	r.wantCode(t, exitFailure)
	wantContains(t, "inspect", r.stdout, "footer unusable")
	wantContains(t, "stderr", r.stderr, "damaged or missing: 0000000002.seg", "batpak repair")

	// A missing middle segment: the store does not open, and the table says
	// which file is gone.
	ts = newTestStore(t, 100)
	if err := os.Remove(segmentFiles(t, ts.dir)[2]); err != nil {
		t.Fatal(err)
	}
	r = runCmd(t, "", "inspect", ts.dir)
	r.wantCode(t, exitFailure)
	wantContains(t, "inspect", r.stdout, "0000000003.seg", "missing")
}

// stats --scrub rereads the sealed segments: damage behind a valid footer
// and checkpoint, which opening does not see, makes it exit 1 and list the
// damage.
func TestStatsScrub(t *testing.T) {
	ts := newTestStore(t, 100)
	r := runCmd(t, "", "stats", ts.dir, "--scrub")
	r.wantCode(t, exitOK)
	wantContains(t, "stats --scrub", r.stdout, "Scrub.Runs", "Scrub.LastBytes", "Scrub.Damage")

	d := newDamagedStore(t)
	runCmd(t, "", "stats", d.dir).wantCode(t, exitOK) // what it shows is not damaged
	r = runCmd(t, "", "stats", d.dir, "--scrub")
	r.wantCode(t, exitFailure)
	wantContains(t, "stats --scrub", r.stdout, fmt.Sprintf("segment 2  file %s  offset %d: ", d.seg2, d.offset))
	wantContains(t, "stderr", r.stderr, "the scrub found 1 damaged place(s)", "batpak repair")

	r = runCmd(t, "", "stats", d.dir, "--scrub", "--json")
	r.wantCode(t, exitFailure)
	var st struct {
		Scrub struct {
			Runs   int
			Damage []struct {
				Segment uint32
				Offset  int64
				Reason  string
			}
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("stats --json: %v", err)
	}
	if st.Scrub.Runs != 1 || len(st.Scrub.Damage) != 1 || st.Scrub.Damage[0].Segment != 2 || st.Scrub.Damage[0].Offset != d.offset {
		t.Fatalf("stats --scrub --json: %+v", st.Scrub)
	}
}
