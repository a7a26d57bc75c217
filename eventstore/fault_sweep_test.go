package eventstore_test

// Fault-injection sweeps over vfs/faultfs (issue 8, "Reliability
// battery"). Each scenario is first run without faults to count its file
// system calls (N); then, for every k in 1..N, the same pre-state is built,
// call k fails (the error suits the call: EIO on a sync, a short write,
// ENOSPC, a failed rename or open, ...) or the machine crashes there, the
// scenario runs on, the power is cut (faultfs.PowerLoss: every byte and
// directory entry not synced is dropped) and the store is reopened with the
// real file system: every acknowledged event must be there, intact, and
// nothing of a request that failed. Every package-level name here starts
// with "sweep".

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
	"github.com/batpak-go/batpak/vfs/faultfs"
)

var sweepKind = kind.Custom(1, 11)

// sweepPayload tags every event: the request, the event's index in it and
// the request's size, plus padding to fill segments.
type sweepPayload struct {
	Tag string `msgpack:"t"`
	I   int    `msgpack:"i"`
	N   int    `msgpack:"n"`
	Pad []byte `msgpack:"p,omitempty"`
}

// sweepReq is one request a sweep made: an append (entities, one per
// event) or a stream deletion (del), and what the store answered.
type sweepReq struct {
	tag      string
	entities []string
	del      string
	receipts []batpak.Receipt
	err      error
}

// sweepLog is every request made to a store, in order. closed is set
// when Close of a store that had not failed returned nil: its checkpoint
// must then survive a power loss.
type sweepLog struct {
	reqs   []*sweepReq
	closed bool
}

func (l *sweepLog) clone() *sweepLog { return &sweepLog{reqs: slices.Clone(l.reqs)} }

func sweepCoord(entity string) batpak.Coordinate {
	return batpak.Coordinate{Entity: entity, Scope: "sweep"}
}

func sweepEvent(tag string, i, n, pad int) batpak.Event {
	var p []byte
	if pad > 0 {
		p = make([]byte, pad)
		for j := range p {
			p[j] = byte('a' + (i+j)%26)
		}
	}
	return batpak.Event{Kind: sweepKind, Payload: sweepPayload{Tag: tag, I: i, N: n, Pad: p}}
}

// append appends n events (atomically when n > 1) to entity.
func (l *sweepLog) append(s *eventstore.Store, tag, entity string, n, pad int) error {
	evs := make([]batpak.Event, n)
	q := &sweepReq{tag: tag}
	for i := range evs {
		evs[i] = sweepEvent(tag, i, n, pad)
		q.entities = append(q.entities, entity)
	}
	q.receipts, q.err = s.Append(context.Background(), sweepCoord(entity), evs)
	l.reqs = append(l.reqs, q)
	return q.err
}

// batch appends one event to each entity with AppendBatch.
func (l *sweepLog) batch(s *eventstore.Store, tag string, entities []string, pad int) error {
	items := make([]batpak.BatchItem, len(entities))
	for i, e := range entities {
		items[i] = batpak.BatchItem{Coordinate: sweepCoord(e), Event: sweepEvent(tag, i, len(entities), pad)}
	}
	q := &sweepReq{tag: tag, entities: slices.Clone(entities)}
	q.receipts, q.err = s.AppendBatch(context.Background(), items)
	l.reqs = append(l.reqs, q)
	return q.err
}

func (l *sweepLog) delete(s *eventstore.Store, entity string) error {
	q := &sweepReq{tag: "delete " + entity, del: entity}
	q.err = s.DeleteStream(context.Background(), sweepCoord(entity))
	l.reqs = append(l.reqs, q)
	return q.err
}

func (l *sweepLog) acked() int {
	n := 0
	for _, q := range l.reqs {
		if q.err == nil && q.del == "" {
			n++
		}
	}
	return n
}

// sweepMust fails the test on a request error (for building pre-states).
func sweepMust(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sweepTempDir returns a fresh directory, on a RAM file system when there
// is one: the sweeps create thousands of small files.
func sweepTempDir(t testing.TB) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "batpak-sweep-"); err == nil {
			t.Cleanup(func() { _ = os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}

// sweepCopyDir copies the regular files of src, but the lock, into dst.
func sweepCopyDir(t testing.TB, src, dst string) {
	t.Helper()
	sweepMust(t, os.MkdirAll(dst, 0o700))
	des, err := os.ReadDir(src)
	sweepMust(t, err)
	for _, de := range des {
		if !de.Type().IsRegular() || de.Name() == eventstore.LockFileName {
			continue
		}
		in, err := os.Open(filepath.Join(src, de.Name()))
		sweepMust(t, err)
		out, err := os.OpenFile(filepath.Join(dst, de.Name()), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		sweepMust(t, err)
		_, err = io.Copy(out, in)
		sweepMust(t, err)
		sweepMust(t, in.Close())
		sweepMust(t, out.Close())
	}
}

// sweepCheck checks the store in dir after a power loss, with the real
// file system: Verify finds no damage; it opens; every acknowledged event
// is there with its receipt's sequence, version and hash (by Get and by
// ReadAll) unless its stream was deleted by an acknowledged deletion;
// nothing of a failed request is there; every request there is whole;
// sequences are dense; every chain verifies; appends go on at the next
// sequence; and after a clean close Verify is still happy.
func sweepCheck(t testing.TB, where, dir string, l *sweepLog, opts ...eventstore.Option) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s: %s", where, fmt.Sprintf(format, args...))
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) && l.acked() == 0 {
		// The power went before the store's directory was durable.
	} else if vr, err := eventstore.Verify(dir); err != nil || !vr.OK() {
		fail("verify after power loss: %v %v", err, vr)
	}
	s, err := eventstore.Open(dir, opts...)
	if err != nil {
		fail("reopen: %v", err)
	}
	defer func() { _ = s.Close() }()
	if cs := s.Stats().ColdStart; l.closed && l.acked() > 0 && cs.Path != "checkpoint" {
		fail("Close succeeded but its checkpoint was not used after the power loss: %+v", cs)
	}
	deleted := map[string]bool{}
	for _, q := range l.reqs {
		if q.del != "" && q.err == nil {
			deleted[q.del] = true
		}
	}
	byTag := map[string][]batpak.Record{}
	var visible uint64
	for rec, err := range s.ReadAll(context.Background(), 0) {
		if err != nil {
			fail("ReadAll: %v", err)
		}
		visible++
		if deleted[rec.Coordinate.Entity] {
			fail("event %s of a deleted stream is visible", rec)
		}
		var p sweepPayload
		if err := rec.Decode(&p); err != nil || rec.Kind != sweepKind {
			fail("event %s is not one the test wrote: %v", rec, err)
		}
		byTag[p.Tag] = append(byTag[p.Tag], rec)
	}
	var want uint64
	entities := map[string]uint64{}
	for _, q := range l.reqs {
		if q.del != "" {
			continue
		}
		got := byTag[q.tag]
		delete(byTag, q.tag)
		if q.err != nil {
			if len(got) > 0 {
				fail("request %s failed (%v) but %d of its events are there", q.tag, q.err, len(got))
			}
			continue
		}
		want += uint64(len(q.receipts))
		if len(q.receipts) != len(q.entities) {
			fail("request %s: %d receipts for %d events", q.tag, len(q.receipts), len(q.entities))
		}
		live := 0
		for _, e := range q.entities {
			if !deleted[e] {
				live++
			}
		}
		if len(got) != live {
			fail("acknowledged request %s: %d of its %d events (in streams not deleted) are there", q.tag, len(got), live)
		}
		for i, r := range q.receipts {
			e := q.entities[i]
			entities[e] = max(entities[e], r.Version)
			if deleted[e] {
				if _, err := s.GetSequence(context.Background(), r.Sequence); !errors.Is(err, batpak.ErrNotFound) {
					fail("event %d of deleted stream %s: %v", r.Sequence, e, err)
				}
				continue
			}
			g := got[0]
			got = got[1:]
			var p sweepPayload
			_ = g.Decode(&p)
			if g.ID != r.EventID || g.Sequence != r.Sequence || g.Version != r.Version || g.Hash != r.Hash || g.Coordinate.Entity != e || p.I != i || p.N != len(q.entities) {
				fail("request %s event %d is %s (id %s, payload %d/%d), receipt says seq %d v%d id %s", q.tag, i, g, g.ID, p.I, p.N, r.Sequence, r.Version, r.EventID)
			}
			if rec, err := s.Get(context.Background(), r.EventID); err != nil || rec.Sequence != r.Sequence || rec.Hash != r.Hash || rec.Version != r.Version {
				fail("Get(%s) of request %s: %v %v", r.EventID, q.tag, rec, err)
			}
		}
	}
	for tag, recs := range byTag {
		fail("%d events of request %s, which was never made", len(recs), tag)
	}
	if last := s.LastSequence(); last != want {
		fail("last sequence %d, %d events were acknowledged", last, want)
	}
	for seq := uint64(1); seq <= want; seq++ { // dense: every sequence is an event or a deleted one
		if _, err := s.GetSequence(context.Background(), seq); err != nil && !errors.Is(err, batpak.ErrNotFound) {
			fail("GetSequence(%d): %v", seq, err)
		}
	}
	for e, v := range entities {
		if got := s.StreamVersion(batpak.Coordinate{Entity: e, Scope: "sweep"}); got != v {
			fail("stream %s at version %d, want %d", e, got, v)
		}
		if deleted[e] {
			if _, err := s.Append(context.Background(), sweepCoord(e), []batpak.Event{sweepEvent("x", 0, 1, 0)}); !errors.Is(err, batpak.ErrStreamDeleted) {
				fail("append to deleted stream %s: %v", e, err)
			}
			continue
		}
		if err := s.VerifyChain(context.Background(), batpak.Coordinate{Entity: e, Scope: "sweep"}); err != nil {
			fail("VerifyChain(%s): %v", e, err)
		}
	}
	rs, err := s.Append(context.Background(), sweepCoord("after"), []batpak.Event{sweepEvent("after", 0, 1, 0)})
	if err != nil || rs[0].Sequence != want+1 {
		fail("append after reopen: %v %v, want sequence %d", rs, err, want+1)
	}
	if err := s.Close(); err != nil {
		fail("close after reopen: %v", err)
	}
	if vr, err := eventstore.Verify(dir); err != nil || !vr.OK() || vr.Checkpoint != "valid" {
		fail("verify after reopen and close: %v %+v", err, vr)
	}
}

// sweepScenario is one operation swept over every file system call.
type sweepScenario struct {
	name string
	opts []eventstore.Option
	// build makes the pre-state with the real file system; the store is
	// closed after it.
	build func(t testing.TB, s *eventstore.Store, l *sweepLog)
	// warm runs on the reopened store before faults are armed.
	warm func(t testing.TB, s *eventstore.Store, l *sweepLog)
	// run is the operation under test.
	run    func(s *eventstore.Store, l *sweepLog) error
	closes bool // run closes the store
	opens  bool // the operation is Open itself (run and warm are not used)
	// tamper changes the pre-state's files after build closed the store.
	tamper func(t testing.TB, dir string)
	// dry checks the fault-free run's calls (that a rotation happened, ...).
	dry func(t testing.TB, calls []faultfs.Call)
}

// sweepVariant is one way to fail a call.
type sweepVariant struct {
	fault faultfs.Fault
	desc  string
}

// sweepFaults lists the faults to try at call k of a run whose fault-free
// calls are dry: every error that kind of call can really return (a short
// write, ENOSPC, EIO, a failed open or rename, ...), a sync that fails for
// good (every later sync too: the fsyncgate case), and a crash.
func sweepFaults(dry []faultfs.Call, k int) []sweepVariant {
	c := dry[k-1]
	nthOfKind := 0 // call k is the nthOfKind-th call of its kind
	for _, d := range dry[:k] {
		if d.Op == c.Op {
			nthOfKind++
		}
	}
	one := func(err syscall.Errno) sweepVariant {
		return sweepVariant{faultfs.Fault{Nth: k, Err: err}, err.Error()}
	}
	var out []sweepVariant
	switch c.Op {
	case faultfs.OpWrite:
		out = []sweepVariant{
			{faultfs.Fault{Nth: k, Err: syscall.EIO, Short: -1}, "short write (half), EIO"},
			{faultfs.Fault{Nth: k, Err: syscall.ENOSPC, Short: -1}, "short write (half), ENOSPC"},
			one(syscall.ENOSPC),
			{faultfs.Fault{Op: faultfs.OpWrite, Nth: nthOfKind, Err: syscall.EIO, Repeat: true}, "EIO on this and every later write"},
		}
	case faultfs.OpSync:
		out = []sweepVariant{
			one(syscall.EIO),
			{faultfs.Fault{Op: faultfs.OpSync, Nth: nthOfKind, Err: syscall.EIO, Repeat: true}, "EIO on this and every later sync"},
		}
	case faultfs.OpPreallocate:
		out = []sweepVariant{one(syscall.ENOSPC), one(syscall.EIO)}
	case faultfs.OpOpen:
		out = []sweepVariant{one(syscall.EACCES), one(syscall.EMFILE)}
		if c.Flag&os.O_CREATE != 0 {
			out = append(out, one(syscall.ENOSPC))
		}
	case faultfs.OpRename:
		out = []sweepVariant{one(syscall.EIO), one(syscall.EXDEV)}
	case faultfs.OpRemove:
		out = []sweepVariant{one(syscall.EIO), one(syscall.EBUSY)}
	case faultfs.OpMkdir:
		out = []sweepVariant{one(syscall.EACCES), one(syscall.ENOSPC)}
	default: // read, readdir, truncate, syncdir
		out = []sweepVariant{one(syscall.EIO)}
	}
	return append(out, sweepVariant{faultfs.Fault{Nth: k, Crash: true}, "crash"})
}

// sweepOutcome counts what the runs of a sweep saw.
type sweepOutcome struct {
	points, runs, faults, ok, failed, storeFailed int
	byOp                                          map[faultfs.Op]int
	ignored                                       []string // faults the operation succeeded despite
}

// sweepRun runs sc once on a copy of template, with no fault (v == nil)
// or with v at call k, and returns the scenario's calls.
func sweepRun(t *testing.T, sc *sweepScenario, template string, tl *sweepLog, k int, v *sweepVariant, keep bool, dry []faultfs.Call, out *sweepOutcome) []faultfs.Call {
	t.Helper()
	dir := filepath.Join(sweepTempDir(t), "s")
	sweepCopyDir(t, template, dir)
	fsys := faultfs.New(vfs.OSFS{})
	fsOpts := append(slices.Clone(sc.opts), eventstore.WithFS(fsys))
	var s *eventstore.Store
	l := tl.clone()
	if !sc.opens {
		var err error
		if s, err = eventstore.Open(dir, fsOpts...); err != nil {
			t.Fatalf("open the pre-state: %v", err)
		}
		if sc.warm != nil {
			sc.warm(t, s, l)
		}
	}
	start := fsys.Calls()
	what := "no fault"
	var injected error
	if v != nil {
		fsys.Inject(v.fault)
		what, injected = fmt.Sprintf("%s at call %d (%v)", v.desc, k, dry[k-1]), v.fault.Err
		if v.fault.Crash {
			injected = faultfs.ErrCrashed
		}
		out.faults++
	}
	var runErr error
	if sc.opens {
		s, runErr = eventstore.Open(dir, fsOpts...)
	} else {
		runErr = sc.run(s, l)
	}
	log := fsys.Log()
	var calls []faultfs.Call
	for _, c := range log {
		if c.N > start {
			calls = append(calls, c)
		}
	}
	if v != nil {
		// The run must have reached call k as the dry run did: the sweep
		// relies on the store's calls being deterministic.
		if len(calls) < k || calls[k-1].Op != dry[k-1].Op || filepath.Base(calls[k-1].Path) != filepath.Base(dry[k-1].Path) || !calls[k-1].Fault {
			t.Fatalf("%s: %s: the run's calls differ from the dry run's: %v", sc.name, what, calls)
		}
	}
	switch {
	case runErr == nil:
		out.ok++
		if v != nil && !keep {
			out.ignored = append(out.ignored, what)
		}
	case errors.Is(runErr, injected):
		out.failed++
		if errors.Is(runErr, batpak.ErrStoreFailed) {
			out.storeFailed++
		}
	default:
		t.Fatalf("%s: %s: the operation failed with an error that does not carry the fault: %v", sc.name, what, runErr)
	}
	if s != nil && !sc.closes && v != nil && !v.fault.Crash {
		// Whatever failed, reads of what was acknowledged keep working.
		sweepCheckLive(t, fmt.Sprintf("%s: %s (operation returned %v)", sc.name, what, runErr), s, l)
	}
	if s != nil && !sc.closes {
		// The store either refuses clearly or goes on correctly.
		err := l.append(s, "follow-up", "a", 1, 0)
		if err != nil && !errors.Is(err, batpak.ErrStoreFailed) && (injected == nil || !errors.Is(err, injected)) {
			t.Fatalf("%s: %s: append after the operation (which returned %v): %v", sc.name, what, runErr, err)
		}
		if err == nil && runErr != nil && errors.Is(runErr, batpak.ErrStoreFailed) {
			t.Fatalf("%s: %s: append succeeded on a failed store", sc.name, what)
		}
	}
	fsys.Crash()
	if s != nil && !sc.closes {
		_ = s.Close()
	}
	if err := sweepPowerLoss(fsys, keep); err != nil {
		t.Fatalf("power loss: %v", err)
	}
	if keep {
		what += ", power loss keeping directory entries"
	}
	out.runs++
	sweepCheck(t, fmt.Sprintf("%s: %s (operation returned %v)", sc.name, what, runErr), dir, l, sc.opts...)
	return calls
}

// sweepPowerLoss cuts the power: the pessimistic outcome (every directory
// operation not followed by a directory sync is undone) or, with keep, the
// one where they all persisted. File data persist up to the last sync in
// both.
func sweepPowerLoss(fsys *faultfs.FS, keep bool) error {
	if keep {
		return fsys.PowerLossKeepingEntries()
	}
	return fsys.PowerLoss()
}

// sweep runs one scenario over every call with every fault for it, each
// followed by both power-loss outcomes.
func sweep(t *testing.T, sc *sweepScenario) {
	base := sweepTempDir(t)
	template := filepath.Join(base, "template")
	s, err := eventstore.Open(template, sc.opts...)
	if err != nil {
		t.Fatal(err)
	}
	tl := &sweepLog{}
	sc.build(t, s, tl)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if sc.tamper != nil {
		sc.tamper(t, template)
	}
	out := &sweepOutcome{byOp: map[faultfs.Op]int{}}
	dry := sweepRun(t, sc, template, tl, 0, nil, false, nil, out)
	sweepRun(t, sc, template, tl, 0, nil, true, nil, out)
	if len(dry) == 0 {
		t.Fatal("the scenario makes no file system call")
	}
	if sc.dry != nil {
		sc.dry(t, dry)
	}
	out.points = len(dry)
	out.ok, out.failed, out.storeFailed = 0, 0, 0
	for k := 1; k <= len(dry); k++ {
		out.byOp[dry[k-1].Op]++
		for _, v := range sweepFaults(dry, k) {
			for _, keep := range []bool{false, true} {
				sweepRun(t, sc, template, tl, k, &v, keep, dry, out)
			}
		}
	}
	var ops []string
	for _, op := range faultfs.Ops() {
		if n := out.byOp[op]; n > 0 {
			ops = append(ops, fmt.Sprintf("%s %d", op, n))
		}
	}
	t.Logf("%s: swept %d injection points (%s), %d faults (crashes included) × 2 power-loss outcomes = %d runs with power loss and reopen; the operation succeeded %d times, failed with the fault's error %d times (%d of them turned the store read-only); every reopen held exactly the acknowledged events",
		sc.name, out.points, strings.Join(ops, ", "), out.faults/2, out.runs, out.ok, out.failed, out.storeFailed)
	for _, w := range out.ignored {
		t.Logf("%s: succeeded despite %s", sc.name, w)
	}
}

// sweepBasePreState: a few mixed requests on three streams.
func sweepBasePreState(t testing.TB, s *eventstore.Store, l *sweepLog) {
	sweepMust(t, l.append(s, "p0", "a", 1, 0))
	sweepMust(t, l.append(s, "p1", "b", 2, 0))
	sweepMust(t, l.batch(s, "p2", []string{"a", "c"}, 0))
	sweepMust(t, l.append(s, "p3", "c", 1, 0))
}

func sweepCreated(id uint32) func(testing.TB, []faultfs.Call) {
	return func(t testing.TB, calls []faultfs.Call) {
		for _, c := range calls {
			if c.Op == faultfs.OpOpen && c.Flag&os.O_CREATE != 0 && filepath.Base(c.Path) == segment.FileName(id) {
				return
			}
		}
		t.Fatalf("the scenario did not create segment %d: %v", id, calls)
	}
}

func TestSweepFaults(t *testing.T) {
	small := []eventstore.Option{eventstore.WithSegmentMaxBytes(64 << 10)}
	tiny := []eventstore.Option{eventstore.WithSegmentMaxBytes(4 << 10)}
	scenarios := []*sweepScenario{
		{
			name: "append", opts: small, build: sweepBasePreState,
			run: func(s *eventstore.Store, l *sweepLog) error { return l.append(s, "x", "a", 1, 0) },
		},
		{
			name: "append-3-events", opts: small, build: sweepBasePreState,
			run: func(s *eventstore.Store, l *sweepLog) error { return l.append(s, "x", "b", 3, 0) },
		},
		{
			name: "append-batch", opts: small, build: sweepBasePreState,
			run: func(s *eventstore.Store, l *sweepLog) error { return l.batch(s, "x", []string{"a", "b", "d"}, 0) },
		},
		{
			name: "delete-stream", opts: small, build: sweepBasePreState,
			run: func(s *eventstore.Store, l *sweepLog) error { return l.delete(s, "c") },
		},
		{
			// The pre-state fills most of the active segment; the append
			// does not fit, so the writer seals segment 1 (footer, sync)
			// and creates segment 2 (preallocate, header, sync, directory
			// sync) before writing it.
			name: "append-rotation", opts: tiny,
			build: func(t testing.TB, s *eventstore.Store, l *sweepLog) {
				for i := range 4 {
					sweepMust(t, l.append(s, fmt.Sprintf("p%d", i), []string{"a", "b"}[i%2], 1, 400))
				}
			},
			run: func(s *eventstore.Store, l *sweepLog) error { return l.append(s, "x", "a", 1, 2000) },
			dry: sweepCreated(2),
		},
		{
			name: "append-rotation-no-prealloc", opts: []eventstore.Option{eventstore.WithSegmentMaxBytes(4 << 10), eventstore.WithPreallocation(false)},
			build: func(t testing.TB, s *eventstore.Store, l *sweepLog) {
				for i := range 4 {
					sweepMust(t, l.append(s, fmt.Sprintf("p%d", i), []string{"a", "b"}[i%2], 1, 400))
				}
			},
			run: func(s *eventstore.Store, l *sweepLog) error { return l.append(s, "x", "a", 1, 2000) },
			dry: sweepCreated(2),
		},
		{
			// The first append to a new store creates segment 1.
			name: "first-append", opts: small,
			build: func(testing.TB, *eventstore.Store, *sweepLog) {},
			run:   func(s *eventstore.Store, l *sweepLog) error { return l.batch(s, "x", []string{"a", "b"}, 0) },
			dry:   sweepCreated(1),
		},
		{
			// Open recovers a pre-state left by a crash: a torn tail after
			// the checkpoint's watermark (cut and re-preallocated), a
			// leftover checkpoint.tmp and a leftover compaction file
			// (both removed).
			name: "open-torn-tail", opts: small, build: sweepBasePreState, opens: true,
			tamper: func(t testing.TB, dir string) {
				frames, end, _ := dtScan(t, dtSegPath(dir, 1), 1)
				if len(frames) == 0 {
					t.Fatal("no frames")
				}
				last := frames[len(frames)-1]
				data := dtReadFile(t, dtSegPath(dir, 1))
				dtPatch(t, dtSegPath(dir, 1), end, data[last.Off:last.Off+last.Size/2]) // half a frame
				sweepMust(t, os.WriteFile(filepath.Join(dir, eventstore.CheckpointFileName+".tmp"), []byte("partial"), 0o600))
				sweepMust(t, os.WriteFile(filepath.Join(dir, segment.FileName(1)+".compact"), []byte("partial"), 0o600))
			},
		},
		{
			// Open finds a blank last segment (created, header never
			// synced): it removes it and syncs the directory; the next
			// append creates it again.
			name: "open-blank-segment", opts: tiny, opens: true,
			build: func(t testing.TB, s *eventstore.Store, l *sweepLog) {
				for i := range 8 {
					sweepMust(t, l.append(s, fmt.Sprintf("p%d", i), "a", 1, 400))
				}
			},
			tamper: func(t testing.TB, dir string) {
				ids := dtSegments(t, dir)
				sweepMust(t, os.WriteFile(dtSegPath(dir, ids[len(ids)-1]+1), make([]byte, 4096), 0o600))
			},
		},
		{
			// Close syncs and writes the checkpoint: temp file, write,
			// sync, rename, directory sync.
			name: "close-checkpoint", opts: small, build: sweepBasePreState,
			warm: func(t testing.TB, s *eventstore.Store, l *sweepLog) {
				sweepMust(t, l.append(s, "w0", "a", 1, 0))
				sweepMust(t, l.batch(s, "w1", []string{"b", "c"}, 0))
			},
			run: func(s *eventstore.Store, l *sweepLog) error {
				err := s.Close()
				l.closed = err == nil
				return err
			},
			closes: true,
		},
		{
			// Compaction after a deletion rewrites every sealed segment:
			// read, write .compact, sync, rename, directory sync.
			name: "compact", opts: tiny,
			build: func(t testing.TB, s *eventstore.Store, l *sweepLog) {
				for i := range 40 {
					sweepMust(t, l.append(s, fmt.Sprintf("p%d", i), []string{"keep", "drop"}[i%2], 1, 300))
				}
				sweepMust(t, l.delete(s, "drop"))
			},
			run: func(s *eventstore.Store, _ *sweepLog) error {
				rep, err := s.Compact(context.Background())
				if err == nil && rep.SegmentsRewritten == 0 {
					return errors.New("compaction rewrote nothing")
				}
				return err
			},
		},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { sweep(t, sc) })
	}
}

// TestSweepPowerLoss cuts the power at every file system call of a store's
// life, without any fault: creating its directory, a sequence of appends
// with SyncEveryCommit (with rotations) and the closing checkpoint. Each
// cut just after an acknowledgement is the next call; after every cut the
// store must hold exactly the acknowledged requests.
func TestSweepPowerLoss(t *testing.T) {
	opts := []eventstore.Option{eventstore.WithSegmentMaxBytes(4 << 10)}
	life := func(fsys *faultfs.FS, dir string, l *sweepLog) (acks []int) {
		s, err := eventstore.Open(dir, append(slices.Clone(opts), eventstore.WithFS(fsys))...)
		if err != nil {
			if !errors.Is(err, faultfs.ErrCrashed) {
				t.Fatalf("open: %v", err)
			}
			return nil
		}
		for i := range 12 {
			tag := fmt.Sprintf("r%d", i)
			var err error
			switch i % 3 {
			case 0:
				err = l.append(s, tag, "a", 1, 500)
			case 1:
				err = l.append(s, tag, "b", 2, 300)
			default:
				err = l.batch(s, tag, []string{"a", "c"}, 200)
			}
			if err == nil {
				acks = append(acks, fsys.Calls())
			} else if !errors.Is(err, faultfs.ErrCrashed) {
				t.Fatalf("request %s: %v", tag, err)
			}
		}
		healthy := s.Stats().Failed == nil // a failed store closes without a checkpoint
		err = s.Close()
		if err != nil && !errors.Is(err, faultfs.ErrCrashed) {
			t.Fatalf("close: %v", err)
		}
		l.closed = err == nil && healthy
		return acks
	}
	// Dry run: count the calls.
	base := sweepTempDir(t)
	fsys := faultfs.New(vfs.OSFS{})
	l := &sweepLog{}
	acks := life(fsys, filepath.Join(base, "dry", "store"), l)
	n := fsys.Calls()
	sweepMust(t, fsys.PowerLoss())
	sweepCheck(t, "power loss after close", filepath.Join(base, "dry", "store"), l, opts...)
	afterAck := 0
	for k := 1; k <= n; k++ {
		if slices.Contains(acks, k-1) {
			afterAck++
		}
		for _, keep := range []bool{false, true} {
			dir := filepath.Join(sweepTempDir(t), "store")
			fsys := faultfs.New(vfs.OSFS{})
			fsys.CrashAt(k)
			l := &sweepLog{}
			life(fsys, dir, l)
			sweepMust(t, sweepPowerLoss(fsys, keep))
			sweepCheck(t, fmt.Sprintf("power cut at call %d of %d (keeping directory entries: %v)", k, n, keep), dir, l, opts...)
		}
	}
	t.Logf("power loss: cut at each of %d calls (directory creation, %d acknowledged requests, %d segments, close), each with both power-loss outcomes: %d runs; %d cuts fell right after an acknowledgement; every acknowledged request survived, nothing else",
		n, len(acks), len(sweepSegmentFiles(filepath.Join(base, "dry", "store"))), 2*n, afterAck)
}

func sweepSegmentFiles(dir string) []string {
	des, _ := os.ReadDir(dir)
	var out []string
	for _, de := range des {
		if _, ok := segment.ParseFileName(de.Name()); ok {
			out = append(out, de.Name())
		}
	}
	return out
}

// sweepCheckLive checks, on the open store, that every acknowledged event
// of a stream not deleted reads back (Get and ReadAll) and nothing else is
// there.
func sweepCheckLive(t testing.TB, where string, s *eventstore.Store, l *sweepLog) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s: reads after the fault: %s", where, fmt.Sprintf(format, args...))
	}
	deleted := map[string]bool{}
	for _, q := range l.reqs {
		if q.del != "" && q.err == nil {
			deleted[q.del] = true
		}
	}
	want := map[uint64]batpak.Receipt{}
	for _, q := range l.reqs {
		for i, r := range q.receipts {
			if deleted[q.entities[i]] {
				continue
			}
			want[r.Sequence] = r
			rec, err := s.Get(context.Background(), r.EventID)
			if err != nil || rec.Sequence != r.Sequence || rec.Hash != r.Hash {
				fail("Get(%s) of request %s: %v %v", r.EventID, q.tag, rec, err)
			}
		}
	}
	n := 0
	for rec, err := range s.ReadAll(context.Background(), 0) {
		if err != nil {
			fail("ReadAll: %v", err)
		}
		if r, ok := want[rec.Sequence]; !ok || r.EventID != rec.ID {
			fail("ReadAll yields %s, which was not acknowledged", rec)
		}
		n++
	}
	if n != len(want) {
		fail("ReadAll yields %d events, %d were acknowledged", n, len(want))
	}
}

// sweepPowerCycle abandons s (crash, close, power loss) and checks the store
// left on disk with the real file system.
func sweepPowerCycle(t testing.TB, where string, fsys *faultfs.FS, s *eventstore.Store, dir string, l *sweepLog, opts ...eventstore.Option) {
	t.Helper()
	fsys.Crash()
	if s != nil {
		_ = s.Close()
	}
	sweepMust(t, fsys.PowerLoss())
	sweepCheck(t, where, dir, l, opts...)
}

// TestSweepDiskFullPreallocated: with preallocation (the default) the
// active segment's space is reserved when it is created, so appends go on
// into it while the disk is full. The rotation at its end needs new space:
// sealing the segment (its footer) fails with ENOSPC and the store turns
// read-only (ErrStoreFailed wrapping ENOSPC); reads keep working. Freeing
// space does not revive the open store. Open fails with ENOSPC while the
// disk is still full (the active segment's space cannot be reserved again);
// OpenReadOnly works; once space is back, Open recovers everything.
func TestSweepDiskFullPreallocated(t *testing.T) {
	dir := filepath.Join(sweepTempDir(t), "s")
	opts := []eventstore.Option{eventstore.WithSegmentMaxBytes(8 << 10)}
	fsys := faultfs.New(vfs.OSFS{})
	fsOpts := append(slices.Clone(opts), eventstore.WithFS(fsys))
	s, err := eventstore.Open(dir, fsOpts...)
	sweepMust(t, err)
	l := &sweepLog{}
	for i := range 3 {
		sweepMust(t, l.append(s, fmt.Sprintf("pre%d", i), "a", 1, 200))
	}
	fsys.SetFull(true)
	var fullErr error
	okWhileFull := 0
	for i := 0; i < 100 && fullErr == nil; i++ {
		if fullErr = l.append(s, fmt.Sprintf("full%d", i), []string{"a", "b"}[i%2], 1, 200); fullErr == nil {
			okWhileFull++
		}
	}
	if okWhileFull == 0 || fullErr == nil {
		t.Fatalf("%d appends succeeded while full, then %v", okWhileFull, fullErr)
	}
	if !errors.Is(fullErr, syscall.ENOSPC) || !errors.Is(fullErr, batpak.ErrStoreFailed) {
		t.Fatalf("append that needed a rotation while full: %v, want ErrStoreFailed wrapping ENOSPC", fullErr)
	}
	if st := s.Stats(); !errors.Is(st.Failed, syscall.ENOSPC) || st.Segments != 1 {
		t.Fatalf("Stats after the failed rotation: failed %v, %d segments", st.Failed, st.Segments)
	}
	sweepCheckLive(t, "disk full", s, l) // reads keep working
	fsys.SetFull(false)
	if err := l.append(s, "after-space", "a", 1, 0); !errors.Is(err, batpak.ErrStoreFailed) {
		t.Fatalf("append once space is back, before reopening: %v, want ErrStoreFailed", err)
	}
	sweepCheckLive(t, "disk full", s, l)
	sweepMust(t, s.Close()) // a failed store closes without a checkpoint

	fsys.SetFull(true)
	if _, err := eventstore.Open(dir, fsOpts...); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Open while the disk is full: %v, want an error wrapping ENOSPC", err)
	}
	ro, err := eventstore.OpenReadOnly(dir, fsOpts...)
	sweepMust(t, err)
	sweepCheckLive(t, "disk full", ro, l)
	sweepMust(t, ro.Close())
	fsys.SetFull(false)
	s, err = eventstore.Open(dir, fsOpts...)
	sweepMust(t, err)
	sweepCheckLive(t, "disk full", s, l)
	for i := range 20 { // rotates
		sweepMust(t, l.append(s, fmt.Sprintf("later%d", i), "b", 1, 200))
	}
	if st := s.Stats(); st.Segments < 2 {
		t.Fatalf("no rotation after space came back: %d segments", st.Segments)
	}
	t.Logf("preallocated: %d appends succeeded while full, then: %v", okWhileFull, fullErr)
	sweepPowerCycle(t, "disk full, preallocated", fsys, s, dir, l, opts...)
}

// TestSweepDiskFullNoPreallocation: without preallocation every append
// needs new space: while the disk is full each fails with an error wrapping
// ENOSPC (not ErrStoreFailed), the partial bytes are cut, reads keep
// working and the store stays writable: once space is back appends succeed
// at the next sequence without a reopen.
func TestSweepDiskFullNoPreallocation(t *testing.T) {
	dir := filepath.Join(sweepTempDir(t), "s")
	opts := []eventstore.Option{eventstore.WithSegmentMaxBytes(64 << 10), eventstore.WithPreallocation(false)}
	fsys := faultfs.New(vfs.OSFS{})
	s, err := eventstore.Open(dir, append(slices.Clone(opts), eventstore.WithFS(fsys))...)
	sweepMust(t, err)
	l := &sweepLog{}
	sweepBasePreState(t, s, l)
	fsys.SetFull(true)
	for i, err := range []error{
		l.append(s, "full0", "a", 1, 0),
		l.append(s, "full1", "b", 3, 100),
		l.batch(s, "full2", []string{"a", "c"}, 0),
		l.delete(s, "c"),
	} {
		if !errors.Is(err, syscall.ENOSPC) || errors.Is(err, batpak.ErrStoreFailed) {
			t.Fatalf("request %d while full: %v, want ENOSPC without ErrStoreFailed", i, err)
		}
	}
	if st := s.Stats(); st.Failed != nil {
		t.Fatalf("store failed: %v", st.Failed)
	}
	sweepCheckLive(t, "disk full", s, l)
	fsys.SetFull(false)
	sweepMust(t, l.append(s, "after", "a", 1, 0))
	last := l.reqs[len(l.reqs)-1].receipts[0]
	if last.Sequence != 7 || last.Version != 3 {
		t.Fatalf("append after space came back: sequence %d version %d, want 7 and 3", last.Sequence, last.Version)
	}
	sweepMust(t, l.delete(s, "c"))
	sweepCheckLive(t, "disk full", s, l)
	sweepPowerCycle(t, "disk full, no preallocation", fsys, s, dir, l, opts...)
}

// TestSweepDiskFullRotation: ENOSPC at the rotation. Disk full makes the
// seal (footer) fail; ENOSPC on the new segment's preallocation alone makes
// its creation fail after the old segment was sealed. Either way the store
// turns read-only with ErrStoreFailed wrapping ENOSPC, leaves no new
// segment file behind, and a reopen continues.
func TestSweepDiskFullRotation(t *testing.T) {
	for _, c := range []struct {
		name   string
		inject func(fsys *faultfs.FS)
		sealed bool // segment 1 has its footer afterwards
	}{
		{"full", func(fsys *faultfs.FS) { fsys.SetFull(true) }, false},
		{"prealloc-new-segment", func(fsys *faultfs.FS) {
			fsys.Inject(faultfs.Fault{Op: faultfs.OpPreallocate, Err: syscall.ENOSPC,
				Match: func(c faultfs.Call) bool { return filepath.Base(c.Path) == segment.FileName(2) }})
		}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(sweepTempDir(t), "s")
			opts := []eventstore.Option{eventstore.WithSegmentMaxBytes(4 << 10)}
			fsys := faultfs.New(vfs.OSFS{})
			s, err := eventstore.Open(dir, append(slices.Clone(opts), eventstore.WithFS(fsys))...)
			sweepMust(t, err)
			l := &sweepLog{}
			for i := range 4 {
				sweepMust(t, l.append(s, fmt.Sprintf("p%d", i), "a", 1, 400))
			}
			c.inject(fsys)
			err = l.append(s, "rotate", "a", 1, 2000)
			if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, batpak.ErrStoreFailed) {
				t.Fatalf("append that needed a rotation: %v, want ErrStoreFailed wrapping ENOSPC", err)
			}
			sweepCheckLive(t, "disk full", s, l)
			if ids := dtSegments(t, dir); len(ids) != 1 {
				t.Fatalf("segments after the failed rotation: %v", ids)
			}
			fsys.SetFull(false)
			fsys.ClearFaults()
			sweepMust(t, s.Close())
			vr, err := eventstore.Verify(dir)
			if err != nil || !vr.OK() || (vr.Footers == 1) != c.sealed {
				t.Fatalf("verify: %v %+v", err, vr)
			}
			s, err = eventstore.Open(dir, append(slices.Clone(opts), eventstore.WithFS(fsys))...)
			sweepMust(t, err)
			sweepMust(t, l.append(s, "rotate-again", "a", 1, 2000))
			sweepPowerCycle(t, "ENOSPC at rotation", fsys, s, dir, l, opts...)
		})
	}
}

// TestSweepDiskFullCheckpoint: the disk fills up before Close. The data
// sync needs no new space, the checkpoint does: Close returns an error
// wrapping ENOSPC and leaves no checkpoint.tmp; the previous checkpoint (if
// any) stays and is still valid, and a reopen (after a power loss too)
// holds every event.
func TestSweepDiskFullCheckpoint(t *testing.T) {
	for _, previous := range []bool{false, true} {
		t.Run(fmt.Sprintf("previous-checkpoint=%v", previous), func(t *testing.T) {
			dir := filepath.Join(sweepTempDir(t), "s")
			opts := []eventstore.Option{eventstore.WithSegmentMaxBytes(64 << 10)}
			fsys := faultfs.New(vfs.OSFS{})
			fsOpts := append(slices.Clone(opts), eventstore.WithFS(fsys))
			s, err := eventstore.Open(dir, fsOpts...)
			sweepMust(t, err)
			l := &sweepLog{}
			sweepBasePreState(t, s, l)
			if previous {
				sweepMust(t, s.Close())
				s, err = eventstore.Open(dir, fsOpts...)
				sweepMust(t, err)
				sweepMust(t, l.append(s, "more", "b", 2, 0))
			}
			fsys.SetFull(true)
			if err := s.Close(); !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Close while full: %v, want an error wrapping ENOSPC", err)
			}
			if _, err := os.Stat(filepath.Join(dir, eventstore.CheckpointFileName+".tmp")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("checkpoint.tmp left behind: %v", err)
			}
			vr, err := eventstore.Verify(dir)
			if err != nil || !vr.OK() {
				t.Fatalf("verify: %v %+v", err, vr)
			}
			if want := map[bool]string{false: "absent", true: "valid"}[previous]; vr.Checkpoint != want {
				t.Fatalf("checkpoint %q, want %q", vr.Checkpoint, want)
			}
			fsys.SetFull(false)
			sweepPowerCycle(t, "disk full at close", fsys, nil, dir, l, opts...)
		})
	}
}
