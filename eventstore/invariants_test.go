package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
)

// TestExpectedVersionSemantics: Any, NoStream, StreamExists and Exactly(n)
// against streams of 0, 1 and 2 events, through Append and AppendBatch,
// before and after a reopen (from the checkpoint and from a scan). A
// conflict carries the actual version and writes nothing.
func TestExpectedVersionSemantics(t *testing.T) {
	type tc struct {
		expected batpak.ExpectedVersion
		prior    uint64
		ok       bool
	}
	var cases []tc
	for _, prior := range []uint64{0, 1, 2} {
		cases = append(cases,
			tc{batpak.Any, prior, true},
			tc{batpak.NoStream, prior, prior == 0},
			tc{batpak.Exactly(0), prior, prior == 0},
			tc{batpak.StreamExists, prior, prior > 0},
			tc{batpak.Exactly(1), prior, prior == 1},
			tc{batpak.Exactly(2), prior, prior == 2},
			tc{batpak.Exactly(3), prior, false},
		)
	}
	for _, reopen := range []string{"none", "checkpoint", "scan"} {
		t.Run("reopen="+reopen, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "s")
			s := dtOpen(t, dir, eventstore.WithSyncMode(eventstore.SyncNone))
			name := func(i int, via string) string { return fmt.Sprintf("s%d-%s", i, via) }
			for i, c := range cases {
				for _, via := range []string{"append", "batch"} {
					if c.prior > 0 {
						dtAppend(t, s, name(i, via), dtEvents(fmt.Sprintf("prior%d%s", i, via), int(c.prior)))
					}
				}
			}
			switch reopen {
			case "checkpoint":
				dtClose(t, s)
				s = dtOpen(t, dir, eventstore.WithSyncMode(eventstore.SyncNone))
			case "scan":
				dtClose(t, s)
				if err := os.Remove(filepath.Join(dir, eventstore.CheckpointFileName)); err != nil {
					t.Fatal(err)
				}
				s = dtOpen(t, dir, eventstore.WithSyncMode(eventstore.SyncNone))
			}
			defer s.Close()
			for i, c := range cases {
				for _, via := range []string{"append", "batch"} {
					entity := name(i, via)
					if v := s.StreamVersion(dtCoord(entity)); v != c.prior {
						t.Fatalf("%s: StreamVersion %d, want %d", entity, v, c.prior)
					}
					before := s.LastSequence()
					var rs []batpak.Receipt
					var err error
					tag := "try-" + entity
					if via == "append" {
						rs, err = s.Append(context.Background(), dtCoord(entity), dtEvents(tag, 1), batpak.ExpectVersion(c.expected))
					} else {
						rs, err = s.AppendBatch(context.Background(), []batpak.BatchItem{
							{Coordinate: dtCoord("other-" + entity), Event: dtEvent(tag, 0, 2)},
							{Coordinate: dtCoord(entity), Event: dtEvent(tag, 1, 2), Expected: c.expected},
						})
					}
					if c.ok {
						if err != nil {
							t.Fatalf("%s: expected %s on version %d: %v", entity, c.expected, c.prior, err)
						}
						if got := rs[len(rs)-1].Version; got != c.prior+1 {
							t.Fatalf("%s: new version %d, want %d", entity, got, c.prior+1)
						}
						continue
					}
					if !errors.Is(err, batpak.ErrVersionConflict) {
						t.Fatalf("%s: expected %s on version %d: %v, want a version conflict", entity, c.expected, c.prior, err)
					}
					var vc *batpak.VersionConflictError
					if !errors.As(err, &vc) || vc.Actual != c.prior || vc.Expected != c.expected || vc.Stream != dtCoord(entity) {
						t.Fatalf("%s: conflict %#v, want actual %d expected %s", entity, vc, c.prior, c.expected)
					}
					if s.LastSequence() != before || s.StreamVersion(dtCoord(entity)) != c.prior || s.StreamVersion(dtCoord("other-"+entity)) != 0 {
						t.Fatalf("%s: a rejected append wrote something", entity)
					}
				}
			}
			dtCheck(t, s)
		})
	}
}

// TestEmptyStreamIsNotVersionOne: a stream with no events and a stream of
// exactly one event are never confused, in memory or after a reopen.
func TestEmptyStreamIsNotVersionOne(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	s := dtOpen(t, dir)
	check := func(s *eventstore.Store) {
		t.Helper()
		if v := s.StreamVersion(dtCoord("empty")); v != 0 {
			t.Fatalf("unknown stream at version %d", v)
		}
		if v := s.StreamVersion(dtCoord("one")); v != 1 {
			t.Fatalf("stream of one event at version %d", v)
		}
		for range s.ReadStream(context.Background(), dtCoord("empty"), 0) {
			t.Fatal("an unknown stream yielded an event")
		}
		n := 0
		for _, err := range s.ReadStream(context.Background(), dtCoord("one"), 0) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 1 {
			t.Fatalf("stream of one event yielded %d", n)
		}
		var vc *batpak.VersionConflictError
		_, err := s.Append(context.Background(), dtCoord("empty"), dtEvents("e", 1), batpak.ExpectVersion(batpak.Exactly(1)))
		if !errors.As(err, &vc) || vc.Actual != 0 {
			t.Fatalf("Exactly(1) on an empty stream: %v", err)
		}
		_, err = s.Append(context.Background(), dtCoord("one"), dtEvents("e", 1), batpak.ExpectVersion(batpak.NoStream))
		if !errors.As(err, &vc) || vc.Actual != 1 {
			t.Fatalf("NoStream on a stream of one event: %v", err)
		}
		_, err = s.Append(context.Background(), dtCoord("empty"), dtEvents("e", 1), batpak.ExpectVersion(batpak.StreamExists))
		if !errors.As(err, &vc) || vc.Actual != 0 {
			t.Fatalf("StreamExists on an empty stream: %v", err)
		}
	}
	rs := dtAppend(t, s, "one", dtEvents("one", 1), batpak.ExpectVersion(batpak.NoStream))
	if rs[0].Version != 1 {
		t.Fatalf("first event at version %d", rs[0].Version)
	}
	check(s)
	dtClose(t, s)
	s = dtOpen(t, dir)
	check(s)
	dtClose(t, s)
	os.Remove(filepath.Join(dir, eventstore.CheckpointFileName))
	s = dtOpen(t, dir)
	defer s.Close()
	check(s)
}

// TestIdempotencyKeysSurviveReopen: a retried Append or AppendBatch with a
// committed key returns the original receipts and writes nothing, in the
// same session and after reopening from a checkpoint, from segment footers
// (the keys' segment was sealed) and from a frame scan.
func TestIdempotencyKeysSurviveReopen(t *testing.T) {
	for _, how := range []string{"same-session", "checkpoint", "footer", "scan"} {
		t.Run(how, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "s")
			opts := []eventstore.Option{eventstore.WithSegmentMaxBytes(4 << 10)}
			s := dtOpen(t, dir, opts...)
			dtAppend(t, s, "a", dtEvents("before", 1))
			single := dtAppend(t, s, "a", dtEvents("k-single", 1), batpak.WithIdempotencyKey("k-single"))
			multi := dtAppend(t, s, "a", dtEvents("k-multi", 3), batpak.WithIdempotencyKey("k-multi"))
			batch := dtBatch(t, s, "k-batch", []string{"a", "b", "c"}, batpak.WithIdempotencyKey("k-batch"))
			if how == "footer" { // seal the keys' segment
				for i := 0; s.Stats().Segments < 3; i++ {
					dtAppend(t, s, "fill", dtEvents(fmt.Sprintf("fill%d", i), 1))
				}
			} else {
				dtAppend(t, s, "a", dtEvents("after", 1))
			}
			if how != "same-session" {
				dtClose(t, s)
				if how != "checkpoint" {
					if err := os.Remove(filepath.Join(dir, eventstore.CheckpointFileName)); err != nil {
						t.Fatal(err)
					}
				}
				s = dtOpen(t, dir, opts...)
			}
			defer s.Close()
			cs := s.Stats().ColdStart
			switch how {
			case "footer":
				if cs.SegmentsFromFooters == 0 {
					t.Fatalf("no footer used: %+v", cs)
				}
			case "scan":
				if cs.EventsScanned == 0 {
					t.Fatalf("nothing scanned: %+v", cs)
				}
			}
			last := s.LastSequence()
			hits := s.Stats().IdempotentHits
			retry := func(key string, want []batpak.Receipt, call func() ([]batpak.Receipt, error)) {
				t.Helper()
				got, err := call()
				if err != nil {
					t.Fatalf("retry of %s: %v", key, err)
				}
				if len(got) != len(want) {
					t.Fatalf("retry of %s: %d receipts, want %d", key, len(got), len(want))
				}
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("retry of %s: receipt %d is %+v, want %+v", key, i, got[i], want[i])
					}
				}
			}
			ctx := context.Background()
			retry("k-single", single, func() ([]batpak.Receipt, error) {
				return s.Append(ctx, dtCoord("a"), dtEvents("k-single", 1), batpak.WithIdempotencyKey("k-single"))
			})
			retry("k-multi", multi, func() ([]batpak.Receipt, error) {
				// Different content, same key: still the original receipts.
				return s.Append(ctx, dtCoord("zzz"), dtEvents("other", 1), batpak.WithIdempotencyKey("k-multi"))
			})
			retry("k-batch", batch, func() ([]batpak.Receipt, error) {
				items := []batpak.BatchItem{
					{Coordinate: dtCoord("a"), Event: dtEvent("k-batch", 0, 3)},
					{Coordinate: dtCoord("b"), Event: dtEvent("k-batch", 1, 3)},
					{Coordinate: dtCoord("c"), Event: dtEvent("k-batch", 2, 3)},
				}
				return s.AppendBatch(ctx, items, batpak.WithIdempotencyKey("k-batch"))
			})
			if s.LastSequence() != last {
				t.Fatalf("retries wrote events: last sequence %d, was %d", s.LastSequence(), last)
			}
			if got := s.Stats().IdempotentHits - hits; got != 3 {
				t.Fatalf("%d idempotent hits, want 3", got)
			}
			// A new key still appends.
			rs := dtAppend(t, s, "a", dtEvents("k-new", 1), batpak.WithIdempotencyKey("k-new"))
			if rs[0].Sequence != last+1 {
				t.Fatalf("new key appended at %d, want %d", rs[0].Sequence, last+1)
			}
			dtCheck(t, s)
		})
	}
}

// TestFailedBatchLeavesNothing: an AppendBatch whose second item expects
// the wrong version is rejected whole; nothing of it is written, and
// appends acknowledged after it (also concurrently, in the same group
// commits) are unaffected, also after a reopen.
func TestFailedBatchLeavesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	s := dtOpen(t, dir)
	dtAppend(t, s, "a", dtEvents("a1", 1))
	dtAppend(t, s, "b", dtEvents("b1", 2))
	before := s.LastSequence()
	bad := []batpak.BatchItem{
		{Coordinate: dtCoord("a"), Event: dtEvent("bad", 0, 3), Expected: batpak.Exactly(1)},
		{Coordinate: dtCoord("b"), Event: dtEvent("bad", 1, 3), Expected: batpak.Exactly(5)},
		{Coordinate: dtCoord("new"), Event: dtEvent("bad", 2, 3)},
	}
	_, err := s.AppendBatch(context.Background(), bad)
	var vc *batpak.VersionConflictError
	if !errors.As(err, &vc) || vc.Stream != dtCoord("b") || vc.Actual != 2 {
		t.Fatalf("batch with a wrong expected version: %v", err)
	}
	if s.LastSequence() != before || s.StreamVersion(dtCoord("a")) != 1 || s.StreamVersion(dtCoord("new")) != 0 {
		t.Fatal("rejected batch left events behind")
	}
	rs := dtAppend(t, s, "a", dtEvents("good", 1), batpak.ExpectVersion(batpak.Exactly(1)))
	if rs[0].Sequence != before+1 || rs[0].Version != 2 {
		t.Fatalf("append after the rejected batch: %+v", rs[0])
	}

	// Concurrently: good and bad batches land in the same group commits.
	const n = 40
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			tag := fmt.Sprintf("conc%d", i)
			var exp batpak.ExpectedVersion = batpak.Any
			if i%3 == 0 {
				exp = batpak.Exactly(1000) // never right
			}
			items := []batpak.BatchItem{
				{Coordinate: dtCoord(fmt.Sprintf("p%d", i%4)), Event: dtEvent(tag, 0, 2)},
				{Coordinate: dtCoord(fmt.Sprintf("q%d", i%5)), Event: dtEvent(tag, 1, 2), Expected: exp},
			}
			_, errs[i] = s.AppendBatch(context.Background(), items)
		})
	}
	wg.Wait()
	want := dtCheck(t, s)
	tags := dtTags(want)
	for i, err := range errs {
		tag := fmt.Sprintf("conc%d", i)
		shouldFail := i%3 == 0
		if shouldFail != errors.Is(err, batpak.ErrVersionConflict) || (!shouldFail && err != nil) {
			t.Fatalf("%s: %v", tag, err)
		}
		if tags[tag] == shouldFail {
			t.Fatalf("%s: rejected %v, present %v", tag, shouldFail, tags[tag])
		}
	}
	if tags["bad"] {
		t.Fatal("rejected batch is visible")
	}
	dtClose(t, s)
	s = dtOpen(t, dir)
	defer s.Close()
	dtSameEvents(t, dtCheck(t, s), want)
}

// TestNoReuseAfterCrashFollowingCheckpointedClose: close (checkpoint) ->
// reopen -> append more (across a rotation) -> crash (the directory is
// copied while the store is open) -> reopen the copy. The old checkpoint
// must not hide the later events, and new appends get fresh sequences and
// versions, also after a second crash.
func TestNoReuseAfterCrashFollowingCheckpointedClose(t *testing.T) {
	for _, rotate := range []bool{false, true} {
		t.Run(fmt.Sprintf("rotate=%v", rotate), func(t *testing.T) {
			opts := []eventstore.Option{eventstore.WithSegmentMaxBytes(8 << 10)}
			dir := filepath.Join(t.TempDir(), "s")
			s := dtOpen(t, dir, opts...)
			for i := range 10 {
				dtAppend(t, s, "acct", dtEvents(fmt.Sprintf("first%d", i), 1))
			}
			dtClose(t, s)
			s = dtOpen(t, dir, opts...)
			more := 8
			if rotate {
				more = 80
			}
			for i := range more {
				if i%4 == 3 {
					dtBatch(t, s, fmt.Sprintf("later%d", i), []string{"acct", "other"}, batpak.WithIdempotencyKey(fmt.Sprintf("later%d", i)))
				} else {
					dtAppend(t, s, "acct", dtEvents(fmt.Sprintf("later%d", i), 1))
				}
			}
			want := dtCheck(t, s)
			crash := filepath.Join(t.TempDir(), "crash")
			dtCopyDir(t, dir, crash) // the crash: the writer never closes
			dtClose(t, s)

			c := dtOpen(t, crash, opts...)
			cs := c.Stats().ColdStart
			if cs.Path != "checkpoint" || cs.EventsFromCheckpoint != 10 {
				t.Fatalf("old checkpoint not used: %+v", cs)
			}
			dtSameEvents(t, dtCheck(t, c), want)
			if rotate && cs.SegmentsFromFooters+cs.SegmentsScanned < 2 {
				t.Fatalf("expected the later segments to be recovered: %+v", cs)
			}
			ver := c.StreamVersion(dtCoord("acct"))
			rs := dtAppend(t, c, "acct", dtEvents("fresh", 1))
			if rs[0].Sequence != uint64(len(want)+1) || rs[0].Version != ver+1 {
				t.Fatalf("append after crash: sequence %d version %d, want %d and %d", rs[0].Sequence, rs[0].Version, len(want)+1, ver+1)
			}
			for _, r := range want {
				if r.ID == rs[0].EventID {
					t.Fatal("event id reused")
				}
			}
			want2 := dtCheck(t, c)
			// A second crash, with the old checkpoint still in place.
			crash2 := filepath.Join(t.TempDir(), "crash2")
			dtCopyDir(t, crash, crash2)
			dtClose(t, c)
			c2 := dtOpen(t, crash2, opts...)
			defer c2.Close()
			dtSameEvents(t, dtCheck(t, c2), want2)
			rs = dtAppend(t, c2, "acct", dtEvents("fresh2", 1))
			if rs[0].Sequence != uint64(len(want2)+1) || rs[0].Version != ver+2 {
				t.Fatalf("append after second crash: %+v", rs[0])
			}
		})
	}
}

func TestLockAndReadOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	s := dtOpen(t, dir)
	defer s.Close()
	dtAppend(t, s, "a", dtEvents("x", 2))
	if s2, err := eventstore.Open(dir); !errors.Is(err, eventstore.ErrLocked) {
		if err == nil {
			s2.Close()
		}
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	r, err := eventstore.OpenReadOnly(dir)
	if err != nil {
		t.Fatalf("OpenReadOnly next to a writer: %v", err)
	}
	defer r.Close()
	if got := dtCheck(t, r); len(got) != 2 {
		t.Fatalf("read-only store sees %d events", len(got))
	}
	if _, err := r.Append(context.Background(), dtCoord("a"), dtEvents("y", 1)); !errors.Is(err, batpak.ErrReadOnly) {
		t.Fatalf("append to a read-only store: %v", err)
	}
	// The writer keeps working while the read-only store is open.
	dtAppend(t, s, "a", dtEvents("z", 1))
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "store")
	s := dtOpen(t, dir, eventstore.WithSegmentMaxBytes(4<<10))
	for i := 0; s.Stats().Segments < 2; i++ {
		dtAppend(t, s, "a", dtEvents(fmt.Sprintf("e%d", i), 1))
	}
	dtClose(t, s)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", fi.Mode().Perm())
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, de := range des {
		info, err := de.Info()
		if err != nil {
			t.Fatal(err)
		}
		seen[de.Name()] = true
		if !info.Mode().IsRegular() || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want a regular file with 0600", de.Name(), info.Mode())
		}
	}
	for _, name := range []string{eventstore.LockFileName, eventstore.CheckpointFileName, "0000000001.seg", "0000000002.seg"} {
		if !seen[name] {
			t.Errorf("%s not found in %v", name, seen)
		}
	}
}

func TestAppendValidation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	s := dtOpen(t, dir, eventstore.WithMaxPayload(1024))
	defer s.Close()
	ctx := context.Background()
	ok := batpak.Event{Kind: dtKind, Payload: 1}
	bad := map[string]string{
		"empty":                "",
		"too long":             strings.Repeat("x", batpak.MaxCoordinateLen+1),
		"NUL":                  "a\x00b",
		"newline":              "a\nb",
		"DEL":                  "a\x7f",
		"C1 control":           "a\u0085b",
		"invalid UTF-8":        "a\xff\xfeb",
		"lone surrogate bytes": "\xed\xa0\x80",
	}
	for _, name := range dtSortedKeys(bad) {
		v := bad[name]
		for _, field := range []string{"entity", "scope"} {
			c := batpak.Coordinate{Entity: "fine", Scope: "fine"}
			if field == "entity" {
				c.Entity = v
			} else {
				c.Scope = v
			}
			_, err := s.Append(ctx, c, []batpak.Event{ok})
			var ce *batpak.CoordinateError
			if !errors.Is(err, batpak.ErrInvalidCoordinate) || !errors.As(err, &ce) || ce.Field != field {
				t.Errorf("Append with %s %s: %v", name, field, err)
			}
			_, err = s.AppendBatch(ctx, []batpak.BatchItem{{Coordinate: dtCoord("fine"), Event: ok}, {Coordinate: c, Event: ok}})
			if !errors.Is(err, batpak.ErrInvalidCoordinate) {
				t.Errorf("AppendBatch with %s %s: %v", name, field, err)
			}
			if _, err := batpak.NewCoordinate(c.Entity, c.Scope); !errors.Is(err, batpak.ErrInvalidCoordinate) {
				t.Errorf("NewCoordinate with %s %s: %v", name, field, err)
			}
		}
	}
	longest := batpak.Coordinate{Entity: strings.Repeat("é", batpak.MaxCoordinateLen/2), Scope: "s"}
	if _, err := s.Append(ctx, longest, []batpak.Event{ok}); err != nil {
		t.Errorf("coordinate of exactly %d bytes: %v", batpak.MaxCoordinateLen, err)
	}

	for _, k := range []kind.Kind{0, 1, 2, 0x0FFF} {
		_, err := s.Append(ctx, dtCoord("k"), []batpak.Event{{Kind: k, Payload: 1}})
		if !errors.Is(err, batpak.ErrReservedKind) {
			t.Errorf("Append of kind %v: %v, want ErrReservedKind", k, err)
		}
		_, err = s.AppendBatch(ctx, []batpak.BatchItem{{Coordinate: dtCoord("k"), Event: ok}, {Coordinate: dtCoord("k"), Event: batpak.Event{Kind: k}}})
		if !errors.Is(err, batpak.ErrReservedKind) {
			t.Errorf("AppendBatch of kind %v: %v, want ErrReservedKind", k, err)
		}
	}

	big := batpak.RawPayload(make([]byte, 1025))
	fits := batpak.RawPayload(make([]byte, 1024))
	_, err := s.Append(ctx, dtCoord("p"), []batpak.Event{{Kind: dtKind, Payload: big}})
	if !errors.Is(err, batpak.ErrPayloadTooLarge) {
		t.Errorf("payload of 1025 bytes with a 1024 limit: %v", err)
	}
	_, err = s.AppendBatch(ctx, []batpak.BatchItem{{Coordinate: dtCoord("p"), Event: ok}, {Coordinate: dtCoord("p"), Event: batpak.Event{Kind: dtKind, Payload: big}}})
	if !errors.Is(err, batpak.ErrPayloadTooLarge) {
		t.Errorf("batch with a payload of 1025 bytes: %v", err)
	}
	_, err = s.Append(ctx, dtCoord("p"), []batpak.Event{{Kind: dtKind, Payload: strings.Repeat("x", 2000)}})
	if !errors.Is(err, batpak.ErrPayloadTooLarge) {
		t.Errorf("encoded payload above the limit: %v", err)
	}
	if _, err := s.Append(ctx, dtCoord("p"), []batpak.Event{{Kind: dtKind, Payload: fits}}); err != nil {
		t.Errorf("payload of exactly the limit: %v", err)
	}
	// Only the two valid appends were written.
	if n := s.LastSequence(); n != 2 {
		t.Errorf("%d events written, want 2", n)
	}
	dtCheck(t, s)
}
