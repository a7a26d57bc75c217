package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
)

// TestLinearizability records a history of concurrent operations on a live
// store and checks it with porcupine against a model of a versioned log:
//
//   - Append with ExpectVersion(Exactly(v)), NoStream, StreamExists or Any
//     succeeds iff the stream's length satisfies the expectation, and then
//     its events take the next versions and the next global sequences;
//     otherwise it fails with ErrVersionConflict carrying the length;
//   - ReadStream (whole stream) returns exactly the stream's current events;
//   - StreamVersion returns the stream's length;
//   - a cursor on one stream returns its k-th event on its k-th Next, or
//     nothing (TryNext, as a Next with an expired context) only while the stream has at
//     most k events; a cursor on every stream does the same for the global
//     log, so cursors must agree with the global commit order;
//   - LastSequence returns the length of the global log.
//
// The history is partitioned for tractability: one partition per stream
// (appends, reads, versions, stream cursors) and one for the global log
// (appends with their sequences, global cursors, LastSequence). Each append
// appears in its stream's partition and in the global one.
//
// BATPAK_LIN_OPS sets the total number of operations (default 10,400:
// 8 clients × 1,300), BATPAK_LIN_SEED the seed.
func TestLinearizability(t *testing.T) {
	const clients = 8
	total := int(envIntLin("BATPAK_LIN_OPS", 10_400))
	if testing.Short() {
		total = 2_000
	}
	perClient := (total + clients - 1) / clients
	seed := envIntLin("BATPAK_LIN_SEED", time.Now().UnixNano())
	t.Logf("%d clients × %d operations, seed %d (BATPAK_LIN_OPS, BATPAK_LIN_SEED)", clients, perClient, seed)

	dir := filepath.Join(dtFastTempDir(t), "lin")
	s, err := eventstore.Open(dir,
		eventstore.WithSyncMode(eventstore.SyncNone), // linearizability does not depend on fsync
		eventstore.WithSegmentMaxBytes(32<<10),       // rotations and sealed (mapped) segments under load
		eventstore.WithCheckpointEvery(500))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	base := time.Now()
	now := func() int64 { return int64(time.Since(base)) } // monotonic
	histories := make([][]porcupine.Operation, clients)
	var wg sync.WaitGroup
	var failMu sync.Mutex
	var failure error
	for c := range clients {
		wg.Go(func() {
			h, err := linClient(s, c, perClient, uint64(seed), now)
			histories[c] = h
			if err != nil {
				failMu.Lock()
				failure = errors.Join(failure, err)
				failMu.Unlock()
			}
		})
	}
	wg.Wait()
	if failure != nil {
		t.Fatal(failure)
	}
	var history []porcupine.Operation
	counts := map[linOp]int{}
	okAppends, conflicts, cursorMisses := 0, 0, 0
	for _, h := range histories {
		history = append(history, h...)
		for _, op := range h {
			in, out := op.Input.(linInput), op.Output.(linOutput)
			counts[in.op]++
			switch {
			case in.op == linAppend && out.ok:
				okAppends++
			case in.op == linAppend:
				conflicts++
			case (in.op == linCursor || in.op == linGlobalCursor) && !out.ok:
				cursorMisses++
			}
		}
	}
	if !testing.Short() && len(history) < 10_000 && os.Getenv("BATPAK_LIN_OPS") == "" {
		t.Fatalf("only %d operations recorded", len(history))
	}
	t.Logf("%d operations: %d appends (%d succeeded, %d version conflicts), %d stream reads, %d StreamVersion, %d stream cursor Next, %d global cursor Next (%d found nothing), %d LastSequence; %d events in the store",
		len(history), counts[linAppend], okAppends, conflicts, counts[linRead], counts[linVersion], counts[linCursor], counts[linGlobalCursor],
		cursorMisses, counts[linLast], s.LastSequence())
	if okAppends == 0 || conflicts == 0 {
		t.Fatalf("history exercises too little: %d successful appends, %d conflicts", okAppends, conflicts)
	}

	for i := range linStreams {
		if err := s.VerifyChain(context.Background(), batpak.Coordinate{Entity: linStream(i), Scope: "lin"}); err != nil {
			t.Fatal(err)
		}
	}

	start := time.Now()
	model := linModel()
	res, info := porcupine.CheckOperationsVerbose(model, history, 60*time.Second)
	took := time.Since(start).Round(time.Millisecond)
	switch res {
	case porcupine.Ok:
		t.Logf("linearizable: %d operations in %d partitions checked in %s", len(history), len(model.Partition(history)), took)
	case porcupine.Unknown:
		t.Skipf("porcupine timed out after %s on %d operations (seed %d): linearizability unknown for this run", took, len(history), seed)
	default:
		path := filepath.Join(os.TempDir(), fmt.Sprintf("batpak-linearizability-%d.html", seed))
		if err := porcupine.VisualizePath(model, info, path); err == nil {
			t.Logf("visualization of the history: %s", path)
		}
		single := model
		single.Partition = nil // each part is checked on its own
		for i, p := range model.Partition(history) {
			if porcupine.CheckOperations(single, p) {
				continue
			}
			name := "global log"
			if v := p[0].Input.(linView); !v.global {
				name = "stream " + linStream(v.in.stream)
			}
			t.Errorf("partition %d (%s, %d operations) is not linearizable", i, name, len(p))
			linExplain(t, single, p)
		}
		t.Fatalf("history of %d operations is not linearizable (seed %d)", len(history), seed)
	}

}

const linStreams = 4

func linStream(i int) string { return "lin:" + strconv.Itoa(i) }

var linKind = kind.Custom(2, 9)

type linOp int

const (
	linAppend linOp = iota
	linRead
	linVersion
	linCursor       // Next on a cursor over one stream
	linGlobalCursor // Next on a cursor over every stream
	linLast         // LastSequence
)

func (o linOp) String() string {
	return [...]string{"append", "read", "version", "cursor", "global-cursor", "last"}[o]
}

type linInput struct {
	op       linOp
	stream   int
	expected batpak.ExpectedVersion
	exp      int64    // the model's view of expected: linAny, linNoStream, linExists or a version
	ids      []uint64 // append: one payload id per event (unique in the run)
	k        int      // cursor: how many events this cursor returned before
}

type linOutput struct {
	ok       bool   // append succeeded; cursor returned an event
	actual   uint64 // conflict: the stream's version in the error
	version  uint64 // append: last version; StreamVersion; cursor: the record's version
	seq      uint64 // append: first sequence; cursor: the record's sequence; LastSequence
	n        int    // read: number of events
	h        uint64 // read: hash of the payload ids in order
	id       uint64 // cursor: the record's payload id
	firstVer uint64 // append: first version
}

// linView is an operation as one partition sees it.
type linView struct {
	global bool
	in     linInput
}

// linNode is a persistent log: a state is its newest node, n its length,
// h a hash of its ids in order. States with the same n and h are equal.
type linNode struct {
	prev *linNode
	id   uint64
	n    int
	h    uint64
}

func linMix(h, id uint64) uint64 {
	x := h ^ (id + 0x9e3779b97f4a7c15)
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func linHash(ids []uint64) uint64 {
	var h uint64
	for _, id := range ids {
		h = linMix(h, id)
	}
	return h
}

func (l *linNode) extend(ids []uint64) *linNode {
	for _, id := range ids {
		l = &linNode{prev: l, id: id, n: l.n + 1, h: linMix(l.h, id)}
	}
	return l
}

// at returns the id of the k-th element (0-based); k < l.n.
func (l *linNode) at(k int) uint64 {
	for l.n > k+1 {
		l = l.prev
	}
	return l.id
}

const (
	linAny int64 = -1 - iota
	linNoStream
	linExists
)

// linNext takes the next event visible now (TryNext) and otherwise waits
// for one with c.Next(ctx); with the expired context it does not wait,
// answering "nothing" as an expired Next would. A read given an ended
// context fails at once, so the visible event is taken first.
func linNext(c batpak.Cursor, ctx, expired context.Context) (batpak.Record, error) {
	rec, ok, err := c.TryNext(context.Background())
	switch {
	case err != nil || ok:
		return rec, err
	case ctx == expired:
		return rec, context.Canceled
	}
	return c.Next(ctx)
}

func linAccepts(e int64, cur uint64) bool {
	switch {
	case e == linAny:
		return true
	case e == linNoStream:
		return cur == 0
	case e == linExists:
		return cur > 0
	}
	return uint64(e) == cur
}

func linModel() porcupine.Model {
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			parts := make([][]porcupine.Operation, linStreams+1)
			for _, op := range history {
				in := op.Input.(linInput)
				if in.op == linAppend || in.op == linRead || in.op == linVersion || in.op == linCursor {
					v := op
					v.Input = linView{in: in}
					parts[in.stream] = append(parts[in.stream], v)
				}
				if in.op == linAppend || in.op == linGlobalCursor || in.op == linLast {
					v := op
					v.Input = linView{global: true, in: in}
					parts[linStreams] = append(parts[linStreams], v)
				}
			}
			out := parts[:0]
			for _, p := range parts {
				if len(p) > 0 {
					out = append(out, p)
				}
			}
			return out
		},
		Init: func() any { return &linNode{} },
		Step: func(state, input, output any) (bool, any) {
			l, v, out := state.(*linNode), input.(linView), output.(linOutput)
			in := v.in
			if v.global {
				switch in.op {
				case linAppend:
					if !out.ok {
						return true, l // a conflict changes nothing
					}
					if out.seq != uint64(l.n)+1 {
						return false, l
					}
					return true, l.extend(in.ids)
				case linGlobalCursor:
					if !out.ok {
						return l.n <= in.k, l
					}
					return l.n > in.k && out.seq == uint64(in.k)+1 && l.at(in.k) == out.id, l
				case linLast:
					return out.seq == uint64(l.n), l
				}
				return false, l
			}
			cur := uint64(l.n)
			switch in.op {
			case linAppend:
				if !out.ok {
					return !linAccepts(in.exp, cur) && out.actual == cur, l
				}
				if !linAccepts(in.exp, cur) || out.firstVer != cur+1 || out.version != cur+uint64(len(in.ids)) {
					return false, l
				}
				return true, l.extend(in.ids)
			case linRead:
				return out.n == l.n && out.h == l.h, l
			case linVersion:
				return out.version == cur, l
			case linCursor:
				if !out.ok {
					return l.n <= in.k, l
				}
				return l.n > in.k && out.version == uint64(in.k)+1 && l.at(in.k) == out.id, l
			}
			return false, l
		},
		Equal: func(a, b any) bool {
			x, y := a.(*linNode), b.(*linNode)
			return x.n == y.n && x.h == y.h
		},
		Hash: func(s any) uint64 {
			l := s.(*linNode)
			return l.h ^ uint64(l.n)*0x9e3779b97f4a7c15
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(linView).in, output.(linOutput)
			switch in.op {
			case linAppend:
				if out.ok {
					return fmt.Sprintf("append(%s, %s, %v) -> v%d seq %d", linStream(in.stream), in.expected, in.ids, out.version, out.seq)
				}
				return fmt.Sprintf("append(%s, %s, %v) -> conflict at %d", linStream(in.stream), in.expected, in.ids, out.actual)
			case linRead:
				return fmt.Sprintf("read(%s) -> %d events", linStream(in.stream), out.n)
			case linVersion:
				return fmt.Sprintf("version(%s) -> %d", linStream(in.stream), out.version)
			case linCursor, linGlobalCursor:
				name := "all"
				if in.op == linCursor {
					name = linStream(in.stream)
				}
				if !out.ok {
					return fmt.Sprintf("cursor(%s)#%d -> nothing", name, in.k)
				}
				return fmt.Sprintf("cursor(%s)#%d -> id %d v%d seq %d", name, in.k, out.id, out.version, out.seq)
			case linLast:
				return fmt.Sprintf("last() -> %d", out.seq)
			}
			return "?"
		},
		DescribeState: func(s any) string { return fmt.Sprintf("%d events", s.(*linNode).n) },
	}
}

// linClient runs one client's operations and returns its history.
func linClient(s *eventstore.Store, c, n int, seed uint64, now func() int64) ([]porcupine.Operation, error) {
	rng := rand.New(rand.NewPCG(seed, uint64(c)))
	known := make([]uint64, linStreams) // the versions this client last saw
	cursors := make([]batpak.Cursor, linStreams)
	seen := make([]int, linStreams)
	for i := range cursors {
		cursors[i] = s.Cursor(batpak.Region{Entity: linStream(i)}, 0)
	}
	global := s.Cursor(batpak.Region{EntityPrefix: "lin:"}, 0)
	globalSeen := 0
	nextID := uint64(c+1) << 40
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	ctx := context.Background()
	var hist []porcupine.Operation
	record := func(in linInput, call int64, out linOutput) {
		hist = append(hist, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: now()})
	}
	decode := func(r *batpak.Record) (uint64, error) {
		var id uint64
		if err := r.Decode(&id); err != nil {
			return 0, fmt.Errorf("client %d: decode payload of sequence %d: %w", c, r.Sequence, err)
		}
		return id, nil
	}
	for range n {
		st := rng.IntN(linStreams)
		in := linInput{stream: st}
		switch p := rng.IntN(100); {
		case p < 38:
			in.op = linAppend
			switch q := rng.IntN(100); {
			case q < 45:
				in.expected, in.exp = batpak.Exactly(known[st]), int64(known[st])
			case q < 55:
				in.expected, in.exp = batpak.NoStream, linNoStream
			case q < 62:
				in.expected, in.exp = batpak.StreamExists, linExists
			default:
				in.expected, in.exp = batpak.Any, linAny
			}
			events := 1
			if rng.IntN(5) == 0 {
				events = 2
			}
			evs := make([]batpak.Event, events)
			for i := range evs {
				nextID++
				in.ids = append(in.ids, nextID)
				evs[i] = batpak.Event{Kind: linKind, Payload: nextID}
			}
			call := now()
			rs, err := s.Append(ctx, batpak.Coordinate{Entity: linStream(st), Scope: "lin"}, evs, batpak.ExpectVersion(in.expected))
			ret := now()
			var out linOutput
			var vc *batpak.VersionConflictError
			switch {
			case err == nil:
				out = linOutput{ok: true, firstVer: rs[0].Version, version: rs[len(rs)-1].Version, seq: rs[0].Sequence}
				for i := 1; i < len(rs); i++ {
					if rs[i].Sequence != rs[i-1].Sequence+1 || rs[i].Version != rs[i-1].Version+1 {
						return hist, fmt.Errorf("client %d: receipts of one append are not consecutive: %+v", c, rs)
					}
				}
				known[st] = out.version
			case errors.As(err, &vc):
				out = linOutput{actual: vc.Actual}
				known[st] = vc.Actual
			default:
				return hist, fmt.Errorf("client %d: append: %w", c, err)
			}
			hist = append(hist, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret})
		case p < 58:
			in.op = linRead
			call := now()
			var ids []uint64
			for r, err := range s.ReadStream(context.Background(), batpak.Coordinate{Entity: linStream(st), Scope: "lin"}, 0) {
				if err != nil {
					return hist, fmt.Errorf("client %d: read stream: %w", c, err)
				}
				if r.Version != uint64(len(ids)+1) {
					return hist, fmt.Errorf("client %d: ReadStream(%s) yielded version %d at position %d", c, linStream(st), r.Version, len(ids))
				}
				id, err := decode(&r)
				if err != nil {
					return hist, err
				}
				ids = append(ids, id)
			}
			record(in, call, linOutput{n: len(ids), h: linHash(ids)})
			known[st] = uint64(len(ids))
		case p < 72:
			in.op = linVersion
			call := now()
			v := s.StreamVersion(batpak.Coordinate{Entity: linStream(st), Scope: "lin"})
			record(in, call, linOutput{version: v})
			known[st] = v
		case p < 92:
			in.op, in.k = linCursor, seen[st]
			cctx, stop := expired, func() {}
			if rng.IntN(4) == 0 { // sometimes wait briefly for the next event
				cctx, stop = context.WithTimeout(ctx, time.Millisecond)
			}
			call := now()
			r, err := linNext(cursors[st], cctx, expired)
			ret := now()
			stop()
			var out linOutput
			switch {
			case err == nil:
				id, derr := decode(&r)
				if derr != nil {
					return hist, derr
				}
				out = linOutput{ok: true, version: r.Version, seq: r.Sequence, id: id}
				seen[st]++
			case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
			default:
				return hist, fmt.Errorf("client %d: cursor: %w", c, err)
			}
			hist = append(hist, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret})
		case p < 97:
			in.op, in.k = linGlobalCursor, globalSeen
			call := now()
			r, err := linNext(global, expired, expired)
			ret := now()
			var out linOutput
			switch {
			case err == nil:
				id, derr := decode(&r)
				if derr != nil {
					return hist, derr
				}
				out = linOutput{ok: true, version: r.Version, seq: r.Sequence, id: id}
				globalSeen++
			case errors.Is(err, context.Canceled):
			default:
				return hist, fmt.Errorf("client %d: global cursor: %w", c, err)
			}
			hist = append(hist, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret})
		default:
			in.op = linLast
			call := now()
			record(in, call, linOutput{seq: s.LastSequence()})
		}
	}
	return hist, nil
}

func envIntLin(name string, def int64) int64 {
	if v, err := strconv.ParseInt(os.Getenv(name), 10, 64); err == nil && v > 0 {
		return v
	}
	return def
}

// linExplain logs where the longest linearization of part gets stuck: its
// last operations, the state they lead to and the operations that could
// not follow.
func linExplain(t *testing.T, model porcupine.Model, part []porcupine.Operation) {
	t.Helper()
	_, info := porcupine.CheckOperationsVerbose(model, part, 10*time.Second)
	var best []int
	for _, lins := range info.PartialLinearizations() {
		for _, l := range lins {
			if len(l) > len(best) {
				best = l
			}
		}
	}
	state := model.Init()
	done := make(map[int]bool, len(best))
	for _, i := range best {
		_, state = model.Step(state, part[i].Input, part[i].Output)
		done[i] = true
	}
	t.Logf("longest linearization: %d of %d operations, ending in state %s; its last operations:", len(best), len(part), model.DescribeState(state))
	for _, i := range best[max(len(best)-8, 0):] {
		op := part[i]
		t.Logf("  client %d [%d, %d] %s", op.ClientId, op.Call, op.Return, model.DescribeOperation(op.Input, op.Output))
	}
	var minReturn int64 = 1<<63 - 1
	for i, op := range part {
		if !done[i] && op.Return < minReturn {
			minReturn = op.Return
		}
	}
	t.Logf("operations not linearized that were called before %d (the earliest such return):", minReturn)
	for i, op := range part {
		if !done[i] && op.Call <= minReturn {
			ok, _ := model.Step(state, op.Input, op.Output)
			t.Logf("  client %d [%d, %d] %s (legal next: %v)", op.ClientId, op.Call, op.Return, model.DescribeOperation(op.Input, op.Output), ok)
		}
	}
}

// TestConflictAnsweredAfterCommit is the regression test for a
// linearizability bug TestLinearizability found: a request rejected because
// of an event staged before it in the same group commit was answered at
// once, while that event was still being written and synced. The caller
// learned of a version that was neither durable nor visible (StreamVersion
// still returned the old one, and the version would never exist if the
// sync failed). The rejection must be answered with the chunk.
func TestConflictAnsweredAfterCommit(t *testing.T) {
	fsys := &dtFS{noSync: true}
	s := dtOpen(t, filepath.Join(t.TempDir(), "s"), eventstore.WithFS(fsys))
	defer s.Close()
	dtAppend(t, s, "y", dtEvents("warm", 1)) // the segment exists: later syncs are the appends'
	entered := make(chan struct{}, 8)
	gates := make(chan chan struct{}, 8) // one gate per sync to hold
	first, second := make(chan struct{}), make(chan struct{})
	gates <- first
	gates <- second
	fsys.SetFailSync(func(string, int) error {
		select {
		case g := <-gates:
			entered <- struct{}{}
			<-g
		default:
		}
		return nil
	})
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(second) }) }
	defer releaseAll() // a failing test must not leave the writer blocked

	type outcome struct {
		rs  []batpak.Receipt
		err error
	}
	results := make(chan outcome, 3)
	appendX := func(tag string) {
		rs, err := s.Append(context.Background(), dtCoord("x"), dtEvents(tag, 1), batpak.ExpectVersion(batpak.NoStream))
		results <- outcome{rs, err}
	}
	go func() { // holds the writer in its sync while x's appends queue up
		rs, err := s.Append(context.Background(), dtCoord("y"), dtEvents("hold", 1))
		results <- outcome{rs, err}
	}()
	<-entered
	go appendX("a")
	go appendX("b")
	time.Sleep(100 * time.Millisecond) // both queued: one group takes them
	close(first)
	if o := <-results; o.err != nil {
		t.Fatalf("append to y: %v", o.err)
	}
	select {
	case <-entered: // the group with x's appends is being synced
	case o := <-results:
		t.Fatalf("an append to x was answered before any sync of x's group: %v", o.err)
	case <-time.After(dtHangTimeout(t)):
		t.Fatal("no sync of x's group")
	}
	select {
	case o := <-results:
		t.Fatalf("an append to x was answered (%v, receipts %v) while its group was still being synced; StreamVersion(x) = %d",
			o.err, o.rs, s.StreamVersion(dtCoord("x")))
	case <-time.After(100 * time.Millisecond):
	}
	if v := s.StreamVersion(dtCoord("x")); v != 0 {
		t.Fatalf("StreamVersion(x) = %d before the sync completed", v)
	}
	releaseAll()
	conflicts := 0
	for range 2 {
		o := <-results
		var vc *batpak.VersionConflictError
		switch {
		case o.err == nil:
		case errors.As(o.err, &vc) && vc.Actual == 1:
			conflicts++
			if v := s.StreamVersion(dtCoord("x")); v != 1 {
				t.Fatalf("conflict at version 1 answered while StreamVersion(x) = %d", v)
			}
		default:
			t.Fatalf("append to x: %v", o.err)
		}
	}
	if conflicts != 1 {
		t.Fatalf("%d conflicts, want 1", conflicts)
	}
}
