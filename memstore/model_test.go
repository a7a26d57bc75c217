package memstore_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/memstore"
)

var modelSeed = flag.Uint64("memstore.seed", 0, "run TestModel with this seed only (0: new seeds)")

// TestModel runs random lifetimes of appends, batches with expected
// versions, idempotent retries, refused requests and reads against the
// store and against a model of a few maps, and compares every answer. A
// failure prints its seed; -memstore.seed=N runs that lifetime again.
func TestModel(t *testing.T) {
	seeds, ops := 24, 500
	if testing.Short() {
		seeds = 4
	}
	first := *modelSeed
	if first != 0 {
		seeds = 1
	} else {
		first = uint64(time.Now().UnixNano())
	}
	for i := range seeds {
		seed := first + uint64(i)
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			t.Parallel()
			defer func() {
				if t.Failed() {
					t.Logf("seed %d; run it again with: go test ./memstore -run TestModel -memstore.seed=%d", seed, seed)
				}
			}()
			runModel(t, seed, ops)
		})
	}
}

// expect is an expected version as the model means it, kept apart from
// batpak's ExpectedVersion so the model does not judge with the code
// under test.
type expect struct {
	kind string // "", "any", "nostream", "exists", "exactly"
	n    uint64
}

func (e expect) version() batpak.ExpectedVersion {
	switch e.kind {
	case "any":
		return batpak.Any
	case "nostream":
		return batpak.NoStream
	case "exists":
		return batpak.StreamExists
	case "exactly":
		return batpak.Exactly(e.n)
	}
	return nil
}

func (e expect) accepts(current uint64) bool {
	switch e.kind {
	case "nostream":
		return current == 0
	case "exists":
		return current > 0
	case "exactly":
		return current == e.n
	}
	return true
}

// mEvent is an event as the model knows it.
type mEvent struct {
	coord           batpak.Coordinate
	kind            kind.Kind
	payload         int
	version         uint64
	id, corr, cause uuid.UUID // id from the receipt, the others predicted
	hash, prevHash  [32]byte  // hash from the receipt, prevHash predicted
}

// mItem is one event of a request to the model.
type mItem struct {
	coord       batpak.Coordinate
	kind        kind.Kind
	payload     int
	expected    expect
	correlation uuid.UUID
	causation   uuid.UUID
}

type model struct {
	events   []mEvent // events[i] has sequence i+1
	versions map[batpak.Coordinate]uint64
	hashes   map[batpak.Coordinate][32]byte
	keys     map[string][]batpak.Receipt // "scope\x00key"
	byID     map[uuid.UUID]uint64
}

var (
	modelScopes   = []string{"eu", "us"}
	modelEntities = []string{"acct:1", "acct:2", "user:1"}
	modelKinds    = []kind.Kind{kindA, kindB, kindC}
	modelKeys     = []string{"k1", "k2", "k3", "k4"}
	modelCorrs    = []uuid.UUID{uuid.MustParse("01900000-0000-7000-8000-0000000000c1"), uuid.MustParse("01900000-0000-7000-8000-0000000000c2")}
	unknownCause  = uuid.MustParse("01900000-0000-7000-8000-00000000dead")
)

// modelRun is one lifetime: the store, the model and the randomness.
type modelRun struct {
	t   *testing.T
	rnd *rand.Rand
	s   *memstore.Store
	m   model
	op  int // the operation under way, for messages
	pay int // the next payload
}

func runModel(t *testing.T, seed uint64, ops int) {
	r := &modelRun{
		t:   t,
		rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		s:   newStore(t),
		m: model{
			versions: make(map[batpak.Coordinate]uint64),
			hashes:   make(map[batpak.Coordinate][32]byte),
			keys:     make(map[string][]batpak.Receipt),
			byID:     make(map[uuid.UUID]uint64),
		},
	}
	follower := r.s.Cursor(batpak.Region{}, 0)
	var followed []batpak.Record
	sub, err := r.s.Subscribe(batpak.Region{}, 4*ops)
	if err != nil {
		t.Fatal(err)
	}
	for r.op = 0; r.op < ops && !t.Failed(); r.op++ {
		switch p := r.rnd.IntN(100); {
		case p < 35:
			r.append()
		case p < 60:
			r.batch()
		case p < 67:
			r.refused()
		default:
			r.read()
		}
		if r.rnd.IntN(10) == 0 {
			followed = append(followed, drain(t, follower)...)
		}
	}
	if t.Failed() {
		return
	}
	r.checkAll()
	followed = append(followed, drain(t, follower)...)
	r.checkRecords("the cursor that followed the run", followed, r.allSeqs())
	var pushed []batpak.Record
	for len(sub.Events()) > 0 {
		pushed = append(pushed, <-sub.Events())
	}
	if sub.Dropped() != 0 {
		t.Fatalf("a subscription with room for every event dropped %d", sub.Dropped())
	}
	r.checkRecords("the subscription", pushed, r.allSeqs())
}

func (r *modelRun) fatalf(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("operation %d: %s", r.op, fmt.Sprintf(format, args...))
}

func pick[T any](rnd *rand.Rand, xs []T) T { return xs[rnd.IntN(len(xs))] }

func (r *modelRun) coord() batpak.Coordinate {
	return co(pick(r.rnd, modelScopes), pick(r.rnd, modelEntities))
}

// expectation returns a random expected version for the stream c, as
// likely to hold as not.
func (r *modelRun) expectation(c batpak.Coordinate) expect {
	v := r.m.versions[c]
	switch r.rnd.IntN(8) {
	case 0:
		return expect{}
	case 1:
		return expect{kind: "any"}
	case 2:
		return expect{kind: "nostream"}
	case 3:
		return expect{kind: "exists"}
	case 4:
		if v > 0 {
			return expect{kind: "exactly", n: v - 1}
		}
		return expect{kind: "exactly", n: 1}
	case 5:
		return expect{kind: "exactly", n: v + 1}
	}
	return expect{kind: "exactly", n: v}
}

// cause returns a random causation id: none, a known event or an unknown id.
func (r *modelRun) cause() uuid.UUID {
	switch n := r.rnd.IntN(10); {
	case n < 6 || len(r.m.events) == 0:
		return uuid.Nil
	case n < 9:
		return pick(r.rnd, r.m.events).id
	}
	return unknownCause
}

func (r *modelRun) correlation() uuid.UUID {
	if r.rnd.IntN(8) == 0 {
		return pick(r.rnd, modelCorrs)
	}
	return uuid.Nil
}

func (r *modelRun) key() string {
	if r.rnd.IntN(3) == 0 {
		return pick(r.rnd, modelKeys)
	}
	return ""
}

func (r *modelRun) item(c batpak.Coordinate) mItem {
	r.pay++
	return mItem{coord: c, kind: pick(r.rnd, modelKinds), payload: r.pay}
}

// append makes a random Append and checks it against the model.
func (r *modelRun) append() {
	c := r.coord()
	n := 1 + r.rnd.IntN(3)
	exp, key, corr, cause := r.expectation(c), r.key(), r.correlation(), r.cause()
	items := make([]mItem, n)
	events := make([]batpak.Event, n)
	for i := range items {
		items[i] = r.item(c)
		items[i].correlation, items[i].causation = corr, cause
		events[i] = batpak.Event{Kind: items[i].kind, Payload: items[i].payload}
	}
	items[0].expected = exp
	opts := []batpak.AppendOption{batpak.ExpectVersion(exp.version())}
	if key != "" {
		opts = append(opts, batpak.WithIdempotencyKey(key))
	}
	if corr != uuid.Nil {
		opts = append(opts, batpak.WithCorrelation(corr))
	}
	if cause != uuid.Nil {
		opts = append(opts, batpak.WithCausation(cause))
	}
	rs, err := r.s.Append(bg, c, events, opts...)
	r.commit(c.Scope, key, items, rs, err)
}

// batch makes a random AppendBatch and checks it against the model.
func (r *modelRun) batch() {
	n := 1 + r.rnd.IntN(4)
	key, corr, cause := r.key(), r.correlation(), r.cause()
	items := make([]mItem, n)
	bis := make([]batpak.BatchItem, n)
	for i := range items {
		c := r.coord()
		items[i] = r.item(c)
		items[i].expected = r.expectation(c)
		items[i].correlation, items[i].causation = r.correlation(), r.cause()
		bis[i] = batpak.BatchItem{Coordinate: c, Event: batpak.Event{Kind: items[i].kind, Payload: items[i].payload},
			Expected: items[i].expected.version(), CorrelationID: items[i].correlation, CausationID: items[i].causation}
		// The batch's options are the defaults of items without their own.
		if items[i].correlation == uuid.Nil {
			items[i].correlation = corr
		}
		if items[i].causation == uuid.Nil {
			items[i].causation = cause
		}
	}
	var opts []batpak.AppendOption
	if key != "" {
		opts = append(opts, batpak.WithIdempotencyKey(key))
	}
	if corr != uuid.Nil {
		opts = append(opts, batpak.WithCorrelation(corr))
	}
	if cause != uuid.Nil {
		opts = append(opts, batpak.WithCausation(cause))
	}
	rs, err := r.s.AppendBatch(bg, bis, opts...)
	r.commit(items[0].coord.Scope, key, items, rs, err)
}

// commit checks the store's answer rs, err to a request of items with key
// in scope against the model's, and applies the request to the model.
func (r *modelRun) commit(scope, key string, items []mItem, rs []batpak.Receipt, err error) {
	r.t.Helper()
	m := &r.m
	if key != "" {
		if orig, ok := m.keys[scope+"\x00"+key]; ok {
			if err != nil || !slices.Equal(rs, orig) {
				r.fatalf("retry of key %q in scope %s: %v %v, want the original receipts %v", key, scope, rs, err, orig)
			}
			return
		}
	}
	versions := make(map[batpak.Coordinate]uint64)
	for _, it := range items {
		cur, ok := versions[it.coord]
		if !ok {
			cur = m.versions[it.coord]
		}
		if !it.expected.accepts(cur) {
			var vc *batpak.VersionConflictError
			if !errors.As(err, &vc) || vc.Stream != it.coord || vc.Expected != it.expected.version() || vc.Actual != cur {
				r.fatalf("append of %d items: %v %v, want a conflict on %v, expected %v, actual %d", len(items), rs, err, it.coord, it.expected.version(), cur)
			}
			return
		}
		versions[it.coord] = cur + 1
	}
	if err != nil || len(rs) != len(items) {
		r.fatalf("append of %d items: %v %v, want success", len(items), rs, err)
	}
	root := rs[0].EventID
	for i, it := range items {
		seq := uint64(len(m.events)) + 1
		v := m.versions[it.coord] + 1
		if rs[i].Sequence != seq || rs[i].Version != v {
			r.fatalf("item %d: receipt %+v, want sequence %d version %d", i, rs[i], seq, v)
		}
		corr := it.correlation
		if corr == uuid.Nil {
			corr = root
			if s, ok := m.byID[it.causation]; ok && it.causation != uuid.Nil {
				corr = m.events[s-1].corr
			}
		}
		m.events = append(m.events, mEvent{
			coord: it.coord, kind: it.kind, payload: it.payload, version: v,
			id: rs[i].EventID, corr: corr, cause: it.causation,
			hash: rs[i].Hash, prevHash: m.hashes[it.coord],
		})
		m.versions[it.coord] = v
		m.hashes[it.coord] = rs[i].Hash
		m.byID[rs[i].EventID] = seq
	}
	if key != "" {
		m.keys[scope+"\x00"+key] = rs
	}
}

// refused makes a request the store must refuse and checks that it wrote
// nothing.
func (r *modelRun) refused() {
	c := r.coord()
	good := batpak.Event{Kind: kindA, Payload: 0}
	canceled, cancel := context.WithCancel(bg)
	cancel()
	var err error
	var want error
	switch r.rnd.IntN(5) {
	case 0:
		want = batpak.ErrReservedKind
		_, err = r.s.Append(bg, c, []batpak.Event{good, {Kind: kind.Kind(0x0002)}}, batpak.WithIdempotencyKey(pick(r.rnd, modelKeys)))
	case 1:
		want = batpak.ErrInvalidCoordinate
		_, err = r.s.AppendBatch(bg, []batpak.BatchItem{{Coordinate: c, Event: good}, {Coordinate: co(c.Scope, ""), Event: good}})
	case 2:
		want = context.Canceled
		_, err = r.s.Append(canceled, c, []batpak.Event{good}, batpak.WithIdempotencyKey(pick(r.rnd, modelKeys)))
	case 3:
		want = batpak.ErrInvalidExpectedVersion
		_, err = r.s.AppendBatch(bg, []batpak.BatchItem{{Coordinate: c, Event: good, Expected: batpak.Exactly(math.MaxUint64)}})
	case 4:
		want = batpak.ErrInvalidMetadata
		_, err = r.s.Append(bg, c, []batpak.Event{{Kind: kindA, Metadata: map[string]string{"k": "\xff"}}})
	}
	if !errors.Is(err, want) {
		r.fatalf("refused request: error %v, want %v", err, want)
	}
	if got := r.s.LastSequence(); got != uint64(len(r.m.events)) {
		r.fatalf("a refused request wrote: LastSequence %d, want %d", got, len(r.m.events))
	}
}

// read makes a random read and compares it with the model.
func (r *modelRun) read() {
	m := &r.m
	s := r.s
	n := uint64(len(m.events))
	switch r.rnd.IntN(6) {
	case 0: // ReadStream
		c := r.coord()
		from := uint64(r.rnd.IntN(int(m.versions[c]) + 3))
		backward, limit := r.rnd.IntN(2) == 0, r.rnd.IntN(4)
		var opts []batpak.ReadOption
		if backward {
			opts = append(opts, batpak.Backward())
		}
		if limit > 0 {
			opts = append(opts, batpak.Limit(limit))
		}
		var want []uint64
		for _, seq := range r.streamSeqs(c, from, backward) {
			if limit > 0 && len(want) == limit {
				break
			}
			want = append(want, seq)
		}
		r.checkRecords(fmt.Sprintf("ReadStream(%v, %d, backward %v, limit %d)", c, from, backward, limit), collect(r.t, s.ReadStream(bg, c, from, opts...)), want)
	case 1: // Query
		reg := r.region()
		r.checkRecords(fmt.Sprintf("Query(%+v)", reg), collect(r.t, s.Query(bg, reg)), r.query(reg, 1))
	case 2: // a cursor from a random place
		reg := r.region()
		from := uint64(r.rnd.IntN(int(n) + 2))
		r.checkRecords(fmt.Sprintf("Cursor(%+v, %d)", reg, from), drain(r.t, s.Cursor(reg, from)), r.query(reg, from))
	case 3: // Get and GetSequence
		seq := uint64(r.rnd.IntN(int(n) + 2))
		rec, err := s.GetSequence(bg, seq)
		if seq == 0 || seq > n {
			if !errors.Is(err, batpak.ErrNotFound) {
				r.fatalf("GetSequence(%d) of %d: %v, want ErrNotFound", seq, n, err)
			}
			return
		}
		if err != nil {
			r.fatalf("GetSequence(%d): %v", seq, err)
		}
		r.checkRecords("GetSequence", []batpak.Record{rec}, []uint64{seq})
		rec, err = s.Get(bg, m.events[seq-1].id)
		if err != nil {
			r.fatalf("Get: %v", err)
		}
		r.checkRecords("Get", []batpak.Record{rec}, []uint64{seq})
	case 4: // versions
		for _, sc := range modelScopes {
			for _, e := range modelEntities {
				if got, want := s.StreamVersion(co(sc, e)), m.versions[co(sc, e)]; got != want {
					r.fatalf("StreamVersion(%s/%s) = %d, want %d", sc, e, got, want)
				}
			}
		}
		if s.LastSequence() != n {
			r.fatalf("LastSequence = %d, want %d", s.LastSequence(), n)
		}
	case 5:
		r.checkAll()
	}
}

// region returns a random region (without times: the clock is real).
func (r *modelRun) region() batpak.Region {
	var reg batpak.Region
	n := len(r.m.events)
	if r.rnd.IntN(3) == 0 {
		reg.Scope = pick(r.rnd, modelScopes)
	}
	switch r.rnd.IntN(4) {
	case 0:
		reg.Entity = pick(r.rnd, modelEntities)
	case 1:
		reg.EntityPrefix = pick(r.rnd, []string{"acct:", "user", "a", "nobody"})
	}
	if r.rnd.IntN(3) == 0 {
		reg.Kinds = []kind.Kind{pick(r.rnd, modelKinds), pick(r.rnd, modelKinds)}
	}
	if r.rnd.IntN(3) == 0 {
		reg.FromSequence = uint64(r.rnd.IntN(n + 2))
	}
	if r.rnd.IntN(3) == 0 {
		reg.ToSequence = uint64(r.rnd.IntN(n + 2))
	}
	return reg
}

// query returns the model's sequences in reg from sequence from on.
func (r *modelRun) query(reg batpak.Region, from uint64) []uint64 {
	var out []uint64
	for i, ev := range r.m.events {
		seq := uint64(i + 1)
		switch {
		case seq < from || seq < reg.FromSequence || reg.ToSequence != 0 && seq > reg.ToSequence:
		case reg.Scope != "" && ev.coord.Scope != reg.Scope:
		case reg.Entity != "" && ev.coord.Entity != reg.Entity:
		case !strings.HasPrefix(ev.coord.Entity, reg.EntityPrefix):
		case len(reg.Kinds) > 0 && !slices.Contains(reg.Kinds, ev.kind):
		default:
			out = append(out, seq)
		}
	}
	return out
}

// streamSeqs returns the model's sequences of the stream c that a read
// from version from visits, forward or backward.
func (r *modelRun) streamSeqs(c batpak.Coordinate, from uint64, backward bool) []uint64 {
	var stream []uint64 // stream[v-1] is version v
	for i, ev := range r.m.events {
		if ev.coord == c {
			stream = append(stream, uint64(i+1))
		}
	}
	n := uint64(len(stream))
	if !backward {
		return stream[min(max(from, 1)-1, n):]
	}
	top := n
	if from > 0 && from < n {
		top = from
	}
	out := slices.Clone(stream[:top])
	slices.Reverse(out)
	return out
}

func (r *modelRun) allSeqs() []uint64 { return span(1, uint64(len(r.m.events))) }

// checkRecords compares records read with the model's events at seqs.
func (r *modelRun) checkRecords(what string, got []batpak.Record, seqs []uint64) {
	r.t.Helper()
	if !slices.Equal(seqsOf(got), seqs) {
		r.fatalf("%s: sequences %v, want %v", what, seqsOf(got), seqs)
	}
	for i := range got {
		rec, ev := &got[i], &r.m.events[seqs[i]-1]
		var payload int
		if err := rec.Decode(&payload); err != nil {
			r.fatalf("%s: decode sequence %d: %v", what, rec.Sequence, err)
		}
		if rec.Coordinate != ev.coord || rec.Kind != ev.kind || payload != ev.payload || rec.Version != ev.version ||
			rec.ID != ev.id || rec.Hash != ev.hash || rec.PrevHash != ev.prevHash ||
			rec.CorrelationID != ev.corr || rec.CausationID != ev.cause {
			r.fatalf("%s: sequence %d is\n%+v\nwant %+v", what, rec.Sequence, *rec, *ev)
		}
	}
}

// checkAll compares the whole log, every chain and the causal indexes.
func (r *modelRun) checkAll() {
	r.t.Helper()
	r.checkRecords("ReadAll", collect(r.t, r.s.ReadAll(bg, 0)), r.allSeqs())
	for c := range r.m.versions {
		if err := r.s.VerifyChain(bg, c); err != nil {
			r.fatalf("%v", err)
		}
	}
	correlated := make(map[uuid.UUID][]uint64)
	caused := make(map[uuid.UUID][]uint64)
	for i, ev := range r.m.events {
		if ev.corr != ev.id {
			correlated[ev.corr] = append(correlated[ev.corr], uint64(i+1))
		}
		if ev.cause != uuid.Nil {
			caused[ev.cause] = append(caused[ev.cause], uint64(i+1))
		}
	}
	ids := append(slices.Clone(modelCorrs), unknownCause)
	for _, ev := range r.m.events {
		ids = append(ids, ev.id)
	}
	for _, id := range ids {
		if got := r.s.Correlated(id); !slices.Equal(got, correlated[id]) {
			r.fatalf("Correlated(%s) = %v, want %v", id, got, correlated[id])
		}
		if got := r.s.CausedBy(id); !slices.Equal(got, caused[id]) {
			r.fatalf("CausedBy(%s) = %v, want %v", id, got, caused[id])
		}
	}
}
