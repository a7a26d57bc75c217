package eventstore_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
)

// TestMetamorphic runs one random operation sequence per seed against
// several option sets and requires identical observations from all of
// them: every append's outcome (sequences, versions, error class), every
// read, cursor and query, and at regular points and at the end the whole
// store (ReadAll, every stream forwards and backwards, StreamVersion,
// Streams, LastSequence). The sequence mixes appends with and without
// expected versions and idempotency keys (new keys and retries), atomic
// batches, stream deletions, compactions with a retention policy on the
// payload, closes and reopens, and read-only reopens.
//
// What legitimately differs between option sets is normalised:
//   - event ids carry random bits, and the writer draws new ones when it
//     re-encodes a request for a new segment. Each run seeds crypto/rand
//     the same way (testing/cryptotest), so sets with the same segment size
//     must produce identical ids and hashes, which are compared raw. Across
//     segment sizes an id is compared as the sequence it names, and a hash
//     is checked within its run (it equals the receipt's, VerifyChain
//     recomputes it, each event links to the one before) while everything
//     it covers is compared;
//   - compaction only rewrites sealed segments, so which events a
//     retention policy removes depends on the segment size: an event a
//     policy may have removed is left out of every comparison (and of
//     idempotent retries and limited reads that could see the gap).
//
// BATPAK_METAMORPHIC_SEEDS sets the number of seeds (default 5),
// BATPAK_METAMORPHIC_STEPS the steps per seed (default 260),
// BATPAK_METAMORPHIC_SEED the first seed.
func TestMetamorphic(t *testing.T) {
	seeds := int(envIntLin("BATPAK_METAMORPHIC_SEEDS", 5))
	steps := int(envIntLin("BATPAK_METAMORPHIC_STEPS", 260))
	first := envIntLin("BATPAK_METAMORPHIC_SEED", time.Now().UnixNano()%1_000_000)
	sets := mmOptionSets()
	t.Logf("%d seeds from %d, %d steps each, %d option sets (BATPAK_METAMORPHIC_SEEDS, BATPAK_METAMORPHIC_STEPS, BATPAK_METAMORPHIC_SEED)",
		seeds, first, steps, len(sets))
	for i := range seeds {
		seed := uint64(first) + uint64(i)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			mmRunSeed(t, seed, steps, sets)
		})
	}
}

type mmOptionSet struct {
	name     string
	segBytes int64 // 0: the default
	opts     []eventstore.Option
	// readOnlyChecks: at every full check, also close, open read-only,
	// observe the same, and reopen.
	readOnlyChecks bool
}

func mmOptionSets() []mmOptionSet {
	return []mmOptionSet{
		{name: "tiny/every-commit/group1/ckpt1/prealloc", segBytes: 4 << 10, opts: []eventstore.Option{
			eventstore.WithSyncMode(eventstore.SyncEveryCommit), eventstore.WithGroupCommit(1),
			eventstore.WithCheckpointEvery(1), eventstore.WithPreallocation(true)}},
		{name: "tiny/none/ckpt0/no-prealloc/read-only-checks", segBytes: 4 << 10, readOnlyChecks: true, opts: []eventstore.Option{
			eventstore.WithSyncMode(eventstore.SyncNone), eventstore.WithCheckpointEvery(0), eventstore.WithPreallocation(false)}},
		{name: "tiny/interval/group1/ckpt16", segBytes: 4 << 10, opts: []eventstore.Option{
			eventstore.WithSyncMode(eventstore.SyncInterval(3, 2*time.Millisecond)), eventstore.WithGroupCommit(1),
			eventstore.WithCheckpointEvery(16), eventstore.WithPreallocation(false)}},
		{name: "64k/interval/ckpt16/prealloc", segBytes: 64 << 10, opts: []eventstore.Option{
			eventstore.WithSyncMode(eventstore.SyncInterval(0, time.Millisecond)), eventstore.WithCheckpointEvery(16),
			eventstore.WithPreallocation(true)}},
		{name: "64k/none/ckpt1/group1/read-only-checks", segBytes: 64 << 10, readOnlyChecks: true, opts: []eventstore.Option{
			eventstore.WithSyncMode(eventstore.SyncNone), eventstore.WithGroupCommit(1), eventstore.WithCheckpointEvery(1)}},
		{name: "default-64MiB/every-commit/ckpt0", opts: []eventstore.Option{
			eventstore.WithSyncMode(eventstore.SyncEveryCommit), eventstore.WithCheckpointEvery(0), eventstore.WithPreallocation(false)}},
	}
}

var (
	mmKindA = kind.Custom(3, 1)
	mmKindB = kind.Custom(3, 2)
)

// mmPayload is every metamorphic event's payload; Class drives retention.
type mmPayload struct {
	Tag   string `msgpack:"t"`
	Class int    `msgpack:"c"`
	Pad   []byte `msgpack:"p"`
}

const mmClasses = 6

var mmEntities = []string{"acct:0", "acct:1", "acct:2", "acct:3", "acct:4", "tmp:0", "tmp:1", "tmp:2"}

func mmScope(entity string) string {
	if strings.HasPrefix(entity, "tmp:") {
		return "mm:tmp"
	}
	return "mm:acct"
}

type mmKind int

const (
	mmAppend mmKind = iota
	mmBatch
	mmDelete
	mmCompact
	mmReopen
	mmReadOnly
	mmReadStream
	mmQuery
	mmCursor
	mmCheck
)

type mmEvent struct {
	entity   string
	kind     kind.Kind
	payload  mmPayload
	meta     map[string]string
	expected batpak.ExpectedVersion
}

type mmOp struct {
	kind     mmKind
	entity   string
	events   []mmEvent // append: all on entity; batch: one per item
	expected batpak.ExpectedVersion
	key      string
	class    int // compact: events of this class are not retained
	from     uint64
	backward bool
	limit    int
	region   batpak.Region
}

func (o *mmOp) String() string {
	switch o.kind {
	case mmAppend:
		return fmt.Sprintf("append %s ×%d expect %s key %q", o.entity, len(o.events), o.expected, o.key)
	case mmBatch:
		var es []string
		for _, e := range o.events {
			es = append(es, fmt.Sprintf("%s(%s)", e.entity, e.expected))
		}
		return fmt.Sprintf("batch %s key %q", strings.Join(es, " "), o.key)
	case mmDelete:
		return "delete " + o.entity
	case mmCompact:
		return fmt.Sprintf("compact dropping class %d", o.class)
	case mmReopen:
		return "close and reopen"
	case mmReadOnly:
		return "close, read-only open, reopen"
	case mmReadStream:
		return fmt.Sprintf("read %s from %d backward %v limit %d", o.entity, o.from, o.backward, o.limit)
	case mmQuery:
		return fmt.Sprintf("query %+v", o.region)
	case mmCursor:
		return fmt.Sprintf("cursor %+v from %d", o.region, o.from)
	case mmCheck:
		return "full check"
	}
	return "?"
}

// mmObs is what one step showed: lines compared across every option set
// and raw lines (ids, hashes) compared across sets of one segment size.
type mmObs struct {
	lines []string
	raw   []string
}

// mmGen generates operations from what the reference run has seen so far.
type mmGen struct {
	rng     *rand.Rand
	step    int
	keys    []string            // every idempotency key acknowledged
	keySeqs map[string][]uint64 // the sequences a key's request wrote
}

// mmRunner executes operations on one option set's store.
type mmRunner struct {
	t        *testing.T
	set      mmOptionSet
	dir      string
	opts     []eventstore.Option
	s        *eventstore.Store
	clock    *atomic.Int64 // unix µs
	receipts map[uint64]batpak.Receipt
	idSeq    map[[16]byte]uint64
	entityOf map[uint64]string // of every receipted sequence
	classOf  map[uint64]int
	// mayRemoved: sequences a retention policy may have removed.
	mayRemoved map[uint64]bool
	ctx        context.Context
}

var mmBase = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func newMMRunner(t *testing.T, set mmOptionSet, dir string) *mmRunner {
	r := &mmRunner{t: t, set: set, dir: dir, clock: new(atomic.Int64), receipts: make(map[uint64]batpak.Receipt),
		idSeq: make(map[[16]byte]uint64), entityOf: make(map[uint64]string), classOf: make(map[uint64]int),
		mayRemoved: make(map[uint64]bool), ctx: context.Background()}
	r.clock.Store(mmBase.UnixMicro())
	r.opts = append(slices.Clone(set.opts), eventstore.WithClock(func() time.Time { return time.UnixMicro(r.clock.Load()) }))
	if set.segBytes > 0 {
		r.opts = append(r.opts, eventstore.WithSegmentMaxBytes(set.segBytes))
	}
	r.open()
	return r
}

func (r *mmRunner) open() {
	r.t.Helper()
	s, err := eventstore.Open(r.dir, r.opts...)
	if err != nil {
		r.t.Fatalf("%s: open: %v", r.set.name, err)
	}
	r.s = s
}

func (r *mmRunner) close() {
	r.t.Helper()
	if err := r.s.Close(); err != nil {
		r.t.Fatalf("%s: close: %v", r.set.name, err)
	}
}

func mmErrClass(err error) string {
	var vc *batpak.VersionConflictError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &vc):
		return fmt.Sprintf("conflict(actual=%d)", vc.Actual)
	case errors.Is(err, batpak.ErrStreamDeleted):
		return "stream-deleted"
	case errors.Is(err, batpak.ErrNotFound):
		return "not-found"
	case errors.Is(err, batpak.ErrReadOnly):
		return "read-only"
	case errors.Is(err, batpak.ErrPayloadTooLarge):
		return "too-large"
	case errors.Is(err, batpak.ErrEmptyAppend):
		return "empty"
	}
	return "unexpected: " + err.Error()
}

func (r *mmRunner) event(e mmEvent) batpak.Event {
	return batpak.Event{Kind: e.kind, Payload: e.payload, Metadata: e.meta}
}

// exec runs op at step and returns what it showed.
func (r *mmRunner) exec(step int, op *mmOp) (mmObs, []batpak.Receipt, error) {
	r.t.Helper()
	r.clock.Store(mmBase.Add(time.Duration(step) * time.Millisecond).UnixMicro())
	var obs mmObs
	add := func(format string, args ...any) { obs.lines = append(obs.lines, fmt.Sprintf(format, args...)) }
	var opts []batpak.AppendOption
	if op.key != "" {
		opts = append(opts, batpak.WithIdempotencyKey(op.key))
	}
	switch op.kind {
	case mmAppend, mmBatch:
		var rs []batpak.Receipt
		var err error
		if op.kind == mmAppend {
			evs := make([]batpak.Event, len(op.events))
			for i, e := range op.events {
				evs[i] = r.event(e)
			}
			opts = append(opts, batpak.ExpectVersion(op.expected))
			rs, err = r.s.Append(r.ctx, batpak.Coordinate{Entity: op.entity, Scope: mmScope(op.entity)}, evs, opts...)
		} else {
			items := make([]batpak.BatchItem, len(op.events))
			for i, e := range op.events {
				items[i] = batpak.BatchItem{Coordinate: batpak.Coordinate{Entity: e.entity, Scope: mmScope(e.entity)},
					Event: r.event(e), Expected: e.expected}
			}
			rs, err = r.s.AppendBatch(r.ctx, items, opts...)
		}
		add("%s", mmErrClass(err))
		if err == nil && len(rs) != len(op.events) && op.key == "" {
			r.t.Fatalf("%s step %d: %d receipts for %d events", r.set.name, step, len(rs), len(op.events))
		}
		for i, rc := range rs {
			add("receipt seq=%d v=%d", rc.Sequence, rc.Version)
			obs.raw = append(obs.raw, fmt.Sprintf("receipt seq=%d id=%s hash=%x", rc.Sequence, rc.EventID, rc.Hash[:8]))
			if old, ok := r.receipts[rc.Sequence]; ok {
				if old.EventID != rc.EventID || old.Hash != rc.Hash || old.Version != rc.Version {
					r.t.Fatalf("%s step %d: sequence %d receipted twice differently: %+v and %+v", r.set.name, step, rc.Sequence, old, rc)
				}
				continue
			}
			if i >= len(op.events) {
				r.t.Fatalf("%s step %d: new sequence %d beyond the request's %d events", r.set.name, step, rc.Sequence, len(op.events))
			}
			r.receipts[rc.Sequence] = rc
			r.idSeq[rc.EventID] = rc.Sequence
			r.classOf[rc.Sequence] = op.events[i].payload.Class
			if op.kind == mmAppend {
				r.entityOf[rc.Sequence] = op.entity
			} else {
				r.entityOf[rc.Sequence] = op.events[i].entity
			}
		}
		return obs, rs, err
	case mmDelete:
		err := r.s.DeleteStream(r.ctx, batpak.Coordinate{Entity: op.entity, Scope: mmScope(op.entity)})
		add("%s", mmErrClass(err))
		return obs, nil, err
	case mmCompact:
		lastSeq := r.s.LastSequence()
		class := op.class
		_, err := r.s.Compact(r.ctx, eventstore.RetainIf(func(rec *batpak.Record) bool {
			var p mmPayload
			if err := rec.Decode(&p); err != nil {
				return true
			}
			return p.Class != class
		}))
		add("%s", mmErrClass(err))
		for seq := uint64(1); seq <= lastSeq; seq++ {
			if c, ok := r.classOf[seq]; ok && c == class {
				r.mayRemoved[seq] = true // if its segment was sealed
			}
		}
		return obs, nil, err
	case mmReopen:
		r.close()
		r.open()
		add("reopened last=%d", r.s.LastSequence())
		return obs, nil, nil
	case mmReadOnly:
		r.close()
		ro, err := eventstore.OpenReadOnly(r.dir, r.opts...)
		if err != nil {
			r.t.Fatalf("%s step %d: read-only open: %v", r.set.name, step, err)
		}
		r.s = ro
		o := r.state(step)
		obs.lines, obs.raw = append(obs.lines, o.lines...), append(obs.raw, o.raw...)
		_, err = ro.Append(r.ctx, batpak.Coordinate{Entity: "acct:0", Scope: "mm:acct"}, []batpak.Event{{Kind: mmKindA}})
		add("read-only append: %s", mmErrClass(err))
		r.close()
		r.open()
		return obs, nil, nil
	case mmReadStream:
		var ro []batpak.ReadOption
		if op.backward {
			ro = append(ro, batpak.Backward())
		}
		if op.limit > 0 {
			ro = append(ro, batpak.Limit(op.limit))
		}
		r.records(step, &obs, r.s.ReadStream(context.Background(), batpak.Coordinate{Entity: op.entity, Scope: mmScope(op.entity)}, op.from, ro...))
		return obs, nil, nil
	case mmQuery:
		r.records(step, &obs, r.s.Query(context.Background(), op.region))
		return obs, nil, nil
	case mmCursor:
		c := r.s.Cursor(op.region, op.from)
		expired, cancel := context.WithCancel(r.ctx)
		cancel()
		var recs []batpak.Record
		for {
			rec, err := linNext(c, expired, expired)
			if errors.Is(err, context.Canceled) || errors.Is(err, batpak.ErrEndOfRegion) {
				add("cursor end: %v position %d", err, c.Position())
				break
			}
			if err != nil {
				r.t.Fatalf("%s step %d: cursor: %v", r.set.name, step, err)
			}
			recs = append(recs, rec)
		}
		r.recordList(step, &obs, recs)
		return obs, nil, nil
	case mmCheck:
		o := r.state(step)
		if r.set.readOnlyChecks {
			r.close()
			ro, err := eventstore.OpenReadOnly(r.dir, r.opts...)
			if err != nil {
				r.t.Fatalf("%s step %d: read-only open: %v", r.set.name, step, err)
			}
			r.s = ro
			o2 := r.state(step)
			r.close()
			r.open()
			if d := mmDiff(o.lines, o2.lines); d != "" {
				r.t.Fatalf("%s step %d: a read-only open sees another store than the writer did: %s", r.set.name, step, d)
			}
			if d := mmDiff(o.raw, o2.raw); d != "" {
				r.t.Fatalf("%s step %d: a read-only open sees other ids or hashes than the writer did: %s", r.set.name, step, d)
			}
		}
		return o, nil, nil
	}
	r.t.Fatalf("unknown op %v", op.kind)
	return obs, nil, nil
}

func (r *mmRunner) records(step int, obs *mmObs, seq func(func(batpak.Record, error) bool)) {
	r.t.Helper()
	var recs []batpak.Record
	for rec, err := range seq {
		if err != nil {
			r.t.Fatalf("%s step %d: read: %v", r.set.name, step, err)
		}
		recs = append(recs, rec)
	}
	r.recordList(step, obs, recs)
}

// recordList adds recs to obs, leaving out events a retention policy may
// have removed, and checks each against its receipt.
func (r *mmRunner) recordList(step int, obs *mmObs, recs []batpak.Record) {
	r.t.Helper()
	for i := range recs {
		rec := &recs[i]
		rc, ok := r.receipts[rec.Sequence]
		if !ok {
			r.t.Fatalf("%s step %d: read sequence %d, which no receipt named", r.set.name, step, rec.Sequence)
		}
		if rc.EventID != rec.ID || rc.Hash != rec.Hash || rc.Version != rec.Version {
			r.t.Fatalf("%s step %d: sequence %d reads as id %s v%d hash %x, receipted as id %s v%d hash %x",
				r.set.name, step, rec.Sequence, rec.ID, rec.Version, rec.Hash[:8], rc.EventID, rc.Version, rc.Hash[:8])
		}
		if r.mayRemoved[rec.Sequence] {
			continue
		}
		corr := "?"
		if seq, ok := r.idSeq[rec.CorrelationID]; ok {
			corr = fmt.Sprint(seq)
		}
		var p mmPayload
		if err := rec.Decode(&p); err != nil {
			r.t.Fatalf("%s step %d: decode sequence %d: %v", r.set.name, step, rec.Sequence, err)
		}
		obs.lines = append(obs.lines, fmt.Sprintf("#%d %s/%s v%d %s ts=%d corr=#%s cause=%s meta=%v payload=%s",
			rec.Sequence, rec.Coordinate.Scope, rec.Coordinate.Entity, rec.Version, rec.Kind, rec.Timestamp.UnixMicro(),
			corr, rec.CausationID, rec.Metadata, hex.EncodeToString(rec.Payload)))
		obs.raw = append(obs.raw, fmt.Sprintf("#%d id=%s corr=%s prev=%x hash=%x", rec.Sequence, rec.ID, rec.CorrelationID, rec.PrevHash[:8], rec.Hash[:8]))
	}
}

// state observes the whole store.
func (r *mmRunner) state(step int) mmObs {
	r.t.Helper()
	s := r.s
	var obs mmObs
	add := func(format string, args ...any) { obs.lines = append(obs.lines, fmt.Sprintf(format, args...)) }
	add("last=%d", s.LastSequence())
	add("ReadAll:")
	r.records(step, &obs, s.ReadAll(context.Background(), 0))
	for _, e := range mmEntities {
		add("stream %s version %d:", e, s.StreamVersion(batpak.Coordinate{Entity: e, Scope: mmScope(e)}))
		var prev *batpak.Record
		for rec, err := range s.ReadStream(context.Background(), batpak.Coordinate{Entity: e, Scope: mmScope(e)}, 0) {
			if err != nil {
				r.t.Fatalf("%s step %d: ReadStream(%s): %v", r.set.name, step, e, err)
			}
			if prev != nil && rec.Version == prev.Version+1 && rec.PrevHash != prev.Hash {
				r.t.Fatalf("%s step %d: %s v%d does not link to v%d", r.set.name, step, e, rec.Version, prev.Version)
			}
			if !r.mayRemoved[rec.Sequence] {
				add("  #%d v%d", rec.Sequence, rec.Version)
			}
			prev = &rec
		}
		add("  backward:")
		for rec, err := range s.ReadStream(context.Background(), batpak.Coordinate{Entity: e, Scope: mmScope(e)}, 0, batpak.Backward()) {
			if err != nil {
				r.t.Fatalf("%s step %d: ReadStream(%s, Backward): %v", r.set.name, step, e, err)
			}
			if !r.mayRemoved[rec.Sequence] {
				add("  #%d v%d", rec.Sequence, rec.Version)
			}
		}
		if err := s.VerifyChain(context.Background(), batpak.Coordinate{Entity: e, Scope: mmScope(e)}); err != nil {
			r.t.Fatalf("%s step %d: VerifyChain(%s): %v", r.set.name, step, e, err)
		}
	}
	for info := range s.Streams() {
		add("Streams: %s v%d last #%d", info.Coordinate.Entity, info.Version, info.LastSequence)
	}
	return obs
}

// mmDiff describes the first difference between two line lists.
func mmDiff(a, b []string) string {
	for i := range max(len(a), len(b)) {
		var x, y string
		if i < len(a) {
			x = a[i]
		} else {
			x = "<none>"
		}
		if i < len(b) {
			y = b[i]
		} else {
			y = "<none>"
		}
		if x != y {
			return fmt.Sprintf("line %d: %q, want %q (%d and %d lines)", i, y, x, len(b), len(a))
		}
	}
	return ""
}

// next returns the next operation, from the reference run's knowledge.
func (g *mmGen) next(ref *mmRunner) *mmOp {
	g.step++
	rng := g.rng
	s := ref.s
	entity := mmEntities[rng.IntN(len(mmEntities))]
	if rng.IntN(3) > 0 { // mostly the accounts, which are never deleted
		entity = mmEntities[rng.IntN(5)]
	}
	expect := func(e string) batpak.ExpectedVersion {
		v := s.StreamVersion(batpak.Coordinate{Entity: e, Scope: mmScope(e)})
		switch p := rng.IntN(100); {
		case p < 35:
			return batpak.Any
		case p < 60:
			return batpak.Exactly(v)
		case p < 70:
			return batpak.Exactly(v + 1) // wrong
		case p < 78 && v > 0:
			return batpak.Exactly(v - 1) // wrong
		case p < 88:
			return batpak.NoStream
		default:
			return batpak.StreamExists
		}
	}
	newEvent := func(e string) mmEvent {
		ev := mmEvent{entity: e, kind: mmKindA, payload: mmPayload{Tag: fmt.Sprintf("s%d", g.step), Class: rng.IntN(mmClasses)}}
		if rng.IntN(3) == 0 {
			ev.kind = mmKindB
		}
		if n := rng.IntN(5); n > 0 {
			ev.payload.Pad = make([]byte, rng.IntN(600))
			for i := range ev.payload.Pad {
				ev.payload.Pad[i] = byte(rng.IntN(256))
			}
		}
		if rng.IntN(4) == 0 {
			ev.meta = map[string]string{"step": fmt.Sprint(g.step), "by": "metamorphic"}
		}
		return ev
	}
	key := func() string {
		switch p := rng.IntN(100); {
		case p < 25:
			return fmt.Sprintf("k%d", g.step)
		case p < 35 && len(g.keys) > 0:
			k := g.keys[rng.IntN(len(g.keys))]
			for _, seq := range g.keySeqs[k] {
				if ref.mayRemoved[seq] {
					return "" // its retry's outcome depends on the segment size
				}
			}
			return k
		}
		return ""
	}
	op := &mmOp{}
	switch p := rng.IntN(1000); {
	case p < 380:
		op.kind, op.entity, op.expected, op.key = mmAppend, entity, expect(entity), key()
		for range 1 + rng.IntN(3) {
			op.events = append(op.events, newEvent(entity))
		}
	case p < 520:
		op.kind, op.key = mmBatch, key()
		for range 2 + rng.IntN(3) {
			e := mmEntities[rng.IntN(len(mmEntities))]
			ev := newEvent(e)
			if rng.IntN(3) == 0 {
				ev.expected = expect(e)
			}
			op.events = append(op.events, ev)
		}
	case p < 545:
		op.kind, op.entity = mmDelete, mmEntities[rng.IntN(len(mmEntities))]
		if rng.IntN(4) > 0 {
			op.entity = mmEntities[5+rng.IntN(3)] // mostly the tmp streams
		}
	case p < 570:
		op.kind, op.class = mmCompact, rng.IntN(mmClasses)
	case p < 590:
		op.kind = mmReopen
	case p < 600:
		op.kind = mmReadOnly
	case p < 720:
		op.kind, op.entity = mmReadStream, entity
		v := s.StreamVersion(batpak.Coordinate{Entity: entity, Scope: mmScope(entity)})
		op.from = uint64(rng.IntN(int(v) + 2))
		op.backward = rng.IntN(3) == 0
		if rng.IntN(3) == 0 && !mmStreamHasGaps(ref, entity) {
			op.limit = 1 + rng.IntN(5)
		}
	case p < 820:
		op.kind = mmQuery
		op.region = mmRegion(rng, s.LastSequence())
	case p < 920:
		op.kind = mmCursor
		op.region = mmRegion(rng, s.LastSequence())
		op.from = uint64(rng.IntN(int(s.LastSequence()) + 2))
	default:
		op.kind = mmCheck
	}
	return op
}

// mmStreamHasGaps reports whether a retention policy may have removed
// events of entity (a limited read would then see different events).
func mmStreamHasGaps(ref *mmRunner, entity string) bool {
	for seq := range ref.mayRemoved {
		if ref.entityOf[seq] == entity {
			return true
		}
	}
	return false
}

func mmRegion(rng *rand.Rand, last uint64) batpak.Region {
	var r batpak.Region
	if rng.IntN(3) == 0 {
		r.EntityPrefix = []string{"acct:", "tmp:", "acct:1"}[rng.IntN(3)]
	} else if rng.IntN(3) == 0 {
		r.Entity = mmEntities[rng.IntN(len(mmEntities))]
	}
	if rng.IntN(3) == 0 {
		r.Scope = []string{"mm:acct", "mm:tmp"}[rng.IntN(2)]
	}
	if rng.IntN(3) == 0 {
		r.Kinds = []kind.Kind{[]kind.Kind{mmKindA, mmKindB}[rng.IntN(2)]}
	}
	if rng.IntN(3) == 0 {
		r.FromSequence = uint64(rng.IntN(int(last) + 2))
	}
	if rng.IntN(4) == 0 {
		r.ToSequence = r.FromSequence + uint64(rng.IntN(40))
	}
	return r
}

func mmRunSeed(t *testing.T, seed uint64, steps int, sets []mmOptionSet) {
	base := dtFastTempDir(t)
	type refStep struct {
		op  *mmOp
		obs mmObs
	}
	var trace []refStep
	raws := make(map[int64][][]string) // segment size → the first such set's raw lines per step
	rawOwner := make(map[int64]string)
	stats := map[mmKind]int{}
	results := map[string]int{}
	for si, set := range sets {
		cryptotest.SetGlobalRandom(t, seed) // the same ids in sets of one segment size
		start := time.Now()
		dir := filepath.Join(base, fmt.Sprint(si))
		r := newMMRunner(t, set, dir)
		var raw [][]string
		if si == 0 {
			g := &mmGen{rng: rand.New(rand.NewPCG(seed, 0x6d6d)), keySeqs: make(map[string][]uint64)}
			for i := range steps + 1 {
				op := g.next(r)
				if i == steps {
					op = &mmOp{kind: mmCheck}
				}
				obs, rs, err := r.exec(i, op)
				if op.key != "" && err == nil {
					// Keys belong to a scope, so one key may name a request
					// in each scope: keep the events of all of them.
					if _, ok := g.keySeqs[op.key]; !ok {
						g.keys = append(g.keys, op.key)
					}
					for _, rc := range rs {
						g.keySeqs[op.key] = append(g.keySeqs[op.key], rc.Sequence)
					}
				}
				if op.kind == mmAppend || op.kind == mmBatch || op.kind == mmDelete {
					results[obs.lines[0]]++
				}
				stats[op.kind]++
				trace = append(trace, refStep{op: op, obs: obs})
				raw = append(raw, obs.raw)
			}
		} else {
			for i, st := range trace {
				obs, _, _ := r.exec(i, st.op)
				if d := mmDiff(st.obs.lines, obs.lines); d != "" {
					t.Fatalf("seed %d step %d (%s): %q differs from %q: %s", seed, i, st.op, set.name, sets[0].name, d)
				}
				raw = append(raw, obs.raw)
			}
		}
		if want, ok := raws[set.segBytes]; ok {
			for i := range want {
				if d := mmDiff(want[i], raw[i]); d != "" {
					t.Fatalf("seed %d step %d (%s): ids or hashes of %q differ from %q (same segment size, same random source): %s",
						seed, i, trace[i].op, set.name, rawOwner[set.segBytes], d)
				}
			}
		} else {
			raws[set.segBytes], rawOwner[set.segBytes] = raw, set.name
		}
		removed := len(r.mayRemoved)
		visible := 0
		for range r.s.ReadAll(context.Background(), 0) {
			visible++
		}
		last := r.s.LastSequence()
		r.close()
		rep, err := eventstore.Verify(dir)
		if err != nil || !rep.OK() {
			t.Fatalf("%s: Verify after the run: %v %v", set.name, err, rep.Problems)
		}
		t.Logf("%-48s %4d events (%d visible, %d removable by retention), %d segments, %s",
			set.name, last, visible, removed, rep.Segments, time.Since(start).Round(time.Millisecond))
	}
	var kinds []string
	for k, n := range stats {
		kinds = append(kinds, fmt.Sprintf("%s=%d", [...]string{"append", "batch", "delete", "compact", "reopen", "read-only-reopen",
			"read-stream", "query", "cursor", "full-check"}[k], n))
	}
	slices.Sort(kinds)
	var res []string
	for k, n := range results {
		res = append(res, fmt.Sprintf("%s=%d", k, n))
	}
	slices.Sort(res)
	t.Logf("%d steps: %s; write outcomes: %s", len(trace), strings.Join(kinds, " "), strings.Join(res, " "))
}

// TestCompactedFooterNamesLaterDeletedStream is the regression test for a
// bug TestMetamorphic found: a compacted segment's footer lists every
// stream deleted at the time, also one whose events begin in a later
// segment. Opening without a checkpoint loaded that footer's events,
// failed on the unknown stream's tombstone, fell back to scanning the
// segment on top of the events already loaded, and refused to open a
// store that Verify found healthy (and Repair would have quarantined it
// all).
func TestCompactedFooterNamesLaterDeletedStream(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	s := dtOpen(t, dir, eventstore.WithSegmentMaxBytes(4<<10), eventstore.WithSyncMode(eventstore.SyncNone))
	ctx := context.Background()
	pad := make([]byte, 700)
	appendTo := func(entity string, class int) {
		t.Helper()
		_, err := s.Append(ctx, batpak.Coordinate{Entity: entity, Scope: "x"},
			[]batpak.Event{{Kind: mmKindA, Payload: mmPayload{Tag: entity, Class: class, Pad: pad}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 6 { // segment 1: stream "early" only
		appendTo("early", i%2)
	}
	for range 12 { // later segments: stream "late" begins here
		appendTo("late", 0)
		appendTo("early", 0)
	}
	if err := s.DeleteStream(ctx, batpak.Coordinate{Entity: "late", Scope: "x"}); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Compact(ctx, eventstore.RetainIf(func(r *batpak.Record) bool {
		var p mmPayload
		return r.Decode(&p) != nil || p.Class != 1
	}))
	if err != nil {
		t.Fatal(err)
	}
	if rep.SegmentsRewritten == 0 {
		t.Fatal("nothing was compacted")
	}
	want := dtReadAll(t, s)
	dtClose(t, s)
	if err := os.Remove(filepath.Join(dir, eventstore.CheckpointFileName)); err != nil {
		t.Fatal(err)
	}
	vr, err := eventstore.Verify(dir)
	if err != nil || !vr.OK() {
		t.Fatalf("Verify: %v %v", err, vr.Problems)
	}
	for _, readOnly := range []bool{true, false} {
		open := eventstore.Open
		if readOnly {
			open = eventstore.OpenReadOnly
		}
		s, err := open(dir)
		if err != nil {
			t.Fatalf("open (read-only %v) without a checkpoint after compaction: %v", readOnly, err)
		}
		dtSameEvents(t, dtReadAll(t, s), want)
		if v := s.StreamVersion(batpak.Coordinate{Entity: "late", Scope: "x"}); v != 12 {
			t.Fatalf("StreamVersion(late) = %d, want 12", v)
		}
		if _, err := s.Append(ctx, batpak.Coordinate{Entity: "late", Scope: "x"}, []batpak.Event{{Kind: mmKindA}}); !readOnly && !errors.Is(err, batpak.ErrStreamDeleted) {
			t.Fatalf("append to the deleted stream after reopen: %v", err)
		}
		dtClose(t, s)
	}
}

// TestCloseRewritesCheckpointAfterCompaction: Compact removes the
// checkpoint and the next Close writes it again, also when nothing was
// appended since an open that loaded the checkpoint (TestMetamorphic found
// that Close skipped it then).
func TestCloseRewritesCheckpointAfterCompaction(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	s := dtOpen(t, dir, eventstore.WithSegmentMaxBytes(4<<10), eventstore.WithSyncMode(eventstore.SyncNone))
	for i := range 20 {
		dtAppend(t, s, fmt.Sprintf("e%d", i%3), []batpak.Event{{Kind: mmKindA, Payload: mmPayload{Class: i % 2, Pad: make([]byte, 500)}}})
	}
	dtClose(t, s)
	s = dtOpen(t, dir, eventstore.WithSegmentMaxBytes(4<<10), eventstore.WithSyncMode(eventstore.SyncNone))
	if p := s.Stats().ColdStart.Path; p != "checkpoint" {
		t.Fatalf("cold start path %q, want checkpoint", p)
	}
	if _, err := s.Compact(context.Background(), eventstore.RetainIf(func(r *batpak.Record) bool {
		var p mmPayload
		return r.Decode(&p) != nil || p.Class == 0
	})); err != nil {
		t.Fatal(err)
	}
	dtClose(t, s)
	if _, err := os.Stat(filepath.Join(dir, eventstore.CheckpointFileName)); err != nil {
		t.Fatalf("no checkpoint after compacting and closing: %v", err)
	}
	s = dtOpen(t, dir)
	defer s.Close()
	if p := s.Stats().ColdStart.Path; p != "checkpoint" {
		t.Fatalf("cold start path %q after the close, want checkpoint", p)
	}
}
