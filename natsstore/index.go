package natsstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

// entry is the in-memory index record of one event. Everything but the
// body is immutable once published; the body (payload and metadata) is a
// cache that eviction clears.
type entry struct {
	entity  string
	scope   string
	id      uuid.UUID
	corr    uuid.UUID
	cause   uuid.UUID
	ts      int64
	version uint64
	kind    uint16
	parts   uint32 // on a request's first event: the request's events; 0 on the others
	prev    [32]byte
	hash    [32]byte
	body    atomic.Pointer[body]
}

type body struct {
	meta    map[string]string
	payload []byte
}

func (b *body) size() int64 {
	n := int64(len(b.payload)) + 64
	for k, v := range b.meta {
		n += int64(len(k) + len(v) + 16)
	}
	return n
}

const entryChunkBits = 12

const entryChunk = 1 << entryChunkBits

// entryLog is the append-only array of entries in fixed-size chunks, so it
// grows without copying (and without copying the atomic body pointers). A
// copy of the struct is a consistent snapshot: published entries are never
// modified, and appends only write past every snapshot's length.
type entryLog struct {
	chunks []*[entryChunk]entry
	n      uint64
}

func (l entryLog) len() uint64 { return l.n }

// at returns the entry of sequence seq (1 ≤ seq ≤ len()).
func (l entryLog) at(seq uint64) *entry {
	i := seq - 1
	return &l.chunks[i>>entryChunkBits][i&(entryChunk-1)]
}

// slot returns the unpublished entry len()+1+k, growing the log as needed.
func (l *entryLog) slot(k uint64) *entry {
	i := l.n + k
	for i>>entryChunkBits >= uint64(len(l.chunks)) {
		l.chunks = append(l.chunks, new([entryChunk]entry))
	}
	return &l.chunks[i>>entryChunkBits][i&(entryChunk-1)]
}

// streamState is one stream: one coordinate (scope and entity).
type streamState struct {
	coord    batpak.Coordinate
	version  uint64
	lastHash [32]byte
	seqs     []uint64 // version v is seqs[v-1]; the last is the subject's last stream sequence
}

func (st *streamState) lastSeq() uint64 {
	if len(st.seqs) == 0 {
		return 0
	}
	return st.seqs[len(st.seqs)-1]
}

type keyRef struct {
	first uint64
	n     int
}

// keyAt is an idempotency key and the first sequence of its request.
type keyAt struct {
	seq uint64
	key string
}

// index is the client-side index of the stream, fed in stream order by
// one ordered consumer. It maps sequences to entries, streams (whole
// coordinates) to their sequences, ids, correlation and causation ids and
// idempotency keys (scoped: codec.ScopedKey) to sequences. A request of
// several events is published at once, when its last event arrives, so
// readers never see part of it.
type index struct {
	mu       sync.RWMutex
	log      entryLog
	streams  map[batpak.Coordinate]*streamState
	order    []*streamState            // in the order the streams began
	byEntity map[string][]*streamState // an entity's streams in every scope, in order
	scopes   map[string]string         // interned scope strings
	byID     map[uuid.UUID]uint64
	corr     map[uuid.UUID][]uint64 // correlation id → members other than the root
	cause    map[uuid.UUID][]uint64 // causation id → direct effects
	keys     map[string]keyRef      // scoped idempotency key → its request
	keyLog   []keyAt                // the keys of keys in stream order, for checkpoints; append-only
	notify   chan struct{}          // closed and replaced on every publish
	failed   error                  // the first invalid message; nothing after it is indexed

	// Messages that are not events (see foreign.go): how many were
	// skipped, the skips not yet logged, and for each stream the sequence
	// of the last skipped message on its subject.
	skippedN uint64
	skips    []skipNote
	subjLast map[batpak.Coordinate]uint64

	pending []event            // the request the consumer is delivering
	acked   map[uint64][]event // this client's acknowledged requests by first sequence, not yet published

	budget    int64 // cache budget in bytes; < 0: unlimited
	cached    int64
	evictNext uint64 // every sequence below it has no cached body

	// fresh is a time (on this process's monotonic clock) before which
	// every message the stream stored is indexed: the time a STREAM.INFO
	// request was sent whose last sequence the index has since reached, or
	// the time a publish of this client was sent whose acknowledged
	// sequence it has reached. Keyed appends use it to skip the catch-up.
	fresh time.Time

	// ckMark wakes the checkpoint writer (ckWake) once the index reaches
	// it; 0: the writer is not waiting.
	ckMark uint64
	ckWake chan struct{}
}

func newIndex(budget int64) *index {
	return &index{
		streams:   make(map[batpak.Coordinate]*streamState),
		byEntity:  make(map[string][]*streamState),
		scopes:    make(map[string]string),
		byID:      make(map[uuid.UUID]uint64),
		corr:      make(map[uuid.UUID][]uint64),
		cause:     make(map[uuid.UUID][]uint64),
		keys:      make(map[string]keyRef),
		acked:     make(map[uint64][]event),
		subjLast:  make(map[batpak.Coordinate]uint64),
		notify:    make(chan struct{}),
		ckWake:    make(chan struct{}, 1),
		budget:    budget,
		evictNext: 1,
	}
}

// add takes one message delivered by the index consumer, in stream order.
// It returns the events it publishes (none while a request is incomplete,
// or when the request was already published from its acknowledgement) or
// the error that stops the index.
func (ix *index) add(e event) ([]event, error) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.failed != nil {
		return nil, ix.failed
	}
	if e.seq <= ix.log.len() {
		// Published from this client's acknowledgement: the same event.
		if got := ix.log.at(e.seq).id; got != e.id {
			return nil, ix.fail(e.seq, fmt.Sprintf("event %s, acknowledged as %s", e.id, got))
		}
		ix.pending = nil
		return nil, nil
	}
	if want := ix.log.len() + uint64(len(ix.pending)) + 1; e.seq != want {
		return nil, ix.fail(e.seq, fmt.Sprintf("expected sequence %d: messages were removed from the stream", want))
	}
	// A message that is not an event, or that breaks the request being
	// delivered, is skipped with that request (see foreign.go).
	if n := len(ix.pending); n > 0 {
		p := ix.pending[n-1]
		if e.invalid != "" || e.parts != p.parts || e.part != p.part+1 {
			ix.skip(ix.pending, fmt.Sprintf("request of %d events cut short at part %d", p.parts, p.part))
			ix.pending = nil
		}
	}
	if e.invalid != "" || len(ix.pending) == 0 && e.part != 1 {
		ix.skip([]event{e}, fmt.Sprintf("part %d/%d without the start of its request", e.part, e.parts))
		return ix.drain(nil)
	}
	ix.pending = append(ix.pending, e)
	if e.part < e.parts {
		return nil, nil
	}
	evs := ix.pending
	ix.pending = nil
	delete(ix.acked, evs[0].seq)
	if _, reason := ix.check(evs); reason != "" {
		ix.skip(evs, reason)
		return ix.drain(nil)
	}
	if err := ix.apply(evs); err != nil {
		return nil, err
	}
	return ix.drain(evs)
}

// offer takes the events of a request this client published, with their
// sequences from the server's acknowledgement. They are published at once
// if they follow the index's last event (the usual case: no need to wait
// for the consumer to deliver them back), otherwise when the events before
// them have arrived.
func (ix *index) offer(evs []event) ([]event, error) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.failed != nil {
		return nil, ix.failed
	}
	if evs[0].seq <= ix.log.len() {
		return nil, nil // the consumer was faster
	}
	ix.acked[evs[0].seq] = evs
	return ix.drain(nil)
}

// drain publishes the acknowledged requests that follow the last event.
// Caller holds mu.
func (ix *index) drain(published []event) ([]event, error) {
	for {
		evs, ok := ix.acked[ix.log.len()+1]
		if !ok {
			return published, nil
		}
		delete(ix.acked, evs[0].seq)
		if err := ix.apply(evs); err != nil {
			return nil, err
		}
		// A request the consumer had begun to deliver is now complete.
		ix.pending = nil
		published = append(published, evs...)
	}
}

// fail stops the index. Caller holds mu.
func (ix *index) fail(seq uint64, reason string) error {
	ix.failed = fmt.Errorf("%w: sequence %d: %s", ErrInvalidMessage, seq, reason)
	close(ix.notify)
	ix.notify = make(chan struct{})
	return ix.failed
}

// apply checks one whole request, whose first event follows the last
// published one, and publishes it. Caller holds mu.
func (ix *index) apply(evs []event) error {
	if seq, reason := ix.check(evs); reason != "" {
		return ix.fail(seq, reason)
	}
	for i := range evs {
		ix.publish(&evs[i], uint64(i))
	}
	ix.log.slot(0).parts = uint32(len(evs))
	first := evs[0]
	ix.log.n += uint64(len(evs))
	if key, ok := keyOfMsgID(first.msgID); ok {
		ix.addKey(key, first.seq, len(evs))
	}
	ix.evict()
	close(ix.notify)
	ix.notify = make(chan struct{})
	if ix.ckMark != 0 && ix.log.len() >= ix.ckMark {
		ix.ckMark = 0
		select {
		case ix.ckWake <- struct{}{}:
		default:
		}
	}
	return nil
}

// addKey records the idempotency key of the request of n events from
// sequence first, unless an earlier request holds it. Caller holds mu.
func (ix *index) addKey(key string, first uint64, n int) {
	if _, dup := ix.keys[key]; !dup {
		ix.keys[key] = keyRef{first: first, n: n}
		ix.keyLog = append(ix.keyLog, keyAt{seq: first, key: key})
	}
}

// stream returns the stream c, creating it. Caller holds mu.
func (ix *index) stream(c batpak.Coordinate) *streamState {
	st := ix.streams[c]
	if st == nil {
		c.Scope = ix.intern(c.Scope)
		st = &streamState{coord: c}
		ix.streams[c] = st
		ix.order = append(ix.order, st)
		ix.byEntity[c.Entity] = append(ix.byEntity[c.Entity], st)
	}
	return st
}

// intern returns the index's copy of scope: there are few scopes and
// many entries. Caller holds mu.
func (ix *index) intern(scope string) string {
	if s, ok := ix.scopes[scope]; ok {
		return s
	}
	ix.scopes[scope] = scope
	return scope
}

// publish writes ev into slot k past the published end. Caller holds mu.
func (ix *index) publish(ev *event, k uint64) {
	st := ix.stream(ev.coord())
	en := ix.log.slot(k)
	en.entity, en.scope = st.coord.Entity, st.coord.Scope
	en.id, en.corr, en.cause = ev.id, ev.corr, ev.cause
	en.ts, en.version, en.kind, en.parts = ev.ts, ev.version, ev.kind, 0
	en.prev, en.hash = ev.prev, ev.hash
	en.body.Store(nil)
	if ix.budget != 0 {
		b := &body{meta: ev.meta, payload: ev.payload}
		en.body.Store(b)
		ix.cached += b.size()
	}
	st.version, st.lastHash = ev.version, ev.hash
	st.seqs = append(st.seqs, ev.seq)
	if _, dup := ix.byID[ev.id]; !dup {
		ix.byID[ev.id] = ev.seq
	}
	if ev.corr != ev.id {
		ix.corr[ev.corr] = append(ix.corr[ev.corr], ev.seq)
	}
	if ev.cause != uuid.Nil {
		ix.cause[ev.cause] = append(ix.cause[ev.cause], ev.seq)
	}
}

// evict drops the oldest cached bodies until the cache fits its budget.
// Caller holds mu.
func (ix *index) evict() {
	if ix.budget == 0 {
		ix.evictNext = ix.log.len() + 1
		return
	}
	for ix.budget > 0 && ix.cached > ix.budget && ix.evictNext <= ix.log.len() {
		en := ix.log.at(ix.evictNext)
		if b := en.body.Swap(nil); b != nil {
			ix.cached -= b.size()
		}
		ix.evictNext++
	}
}

// snapshot returns the published entries.
func (ix *index) snapshot() entryLog {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.log
}

func (ix *index) lastSeq() uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.log.len()
}

// changed returns a channel closed at the next publish (or failure).
func (ix *index) changed() <-chan struct{} {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.notify
}

func (ix *index) failure() error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.failed
}

// wait blocks until sequence seq is published, ctx ends or done is closed.
func (ix *index) wait(ctx context.Context, seq uint64, done <-chan struct{}) error {
	for {
		ix.mu.RLock()
		n, ch, failed := ix.log.len(), ix.notify, ix.failed
		ix.mu.RUnlock()
		if n >= seq {
			return nil
		}
		if failed != nil {
			return failed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
			return batpak.ErrClosed
		}
	}
}

// waitReporting is wait, calling report with the index's last sequence
// every interval while it waits.
func (ix *index) waitReporting(ctx context.Context, seq uint64, done <-chan struct{}, interval time.Duration, report func(uint64)) error {
	if report == nil {
		return ix.wait(ctx, seq, done)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := make(chan error, 1)
	go func() { res <- ix.wait(wctx, seq, done) }()
	for {
		select {
		case err := <-res:
			return err
		case <-t.C:
			report(ix.lastSeq())
		}
	}
}

// markFresh records that every message the stream stored before t is
// indexed.
func (ix *index) markFresh(t time.Time) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if t.After(ix.fresh) {
		ix.fresh = t
	}
}

// freshWithin reports whether every message the stream stored more than
// d ago is indexed.
func (ix *index) freshWithin(d time.Duration) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return d > 0 && !ix.fresh.IsZero() && time.Since(ix.fresh) <= d
}

// keyHorizon is how fresh the index must be for a keyed append to skip
// the catch-up: half the stream's duplicate window. A key missing from an
// index that holds everything stored before time F was stored after F, so
// within the window of a publish the server receives less than half a
// window after F: the server deduplicates it. The other half is the
// publish's time in flight. Each retry of an append catches up first, so
// only the first publish relies on it.
func (s *Store) keyHorizon() time.Duration {
	return s.stream.CachedInfo().Config.Duplicates / 2
}

// tip is a stream's state for an append.
type tip struct {
	version uint64
	hash    [32]byte
	lastSeq uint64 // the subject's last stream sequence, 0 for a new stream
}

// tipOf returns the tip of stream c. Caller holds mu for reading.
func (ix *index) tipOf(c batpak.Coordinate) tip {
	// A skipped message on the stream's subject counts for the server.
	t := tip{lastSeq: ix.subjLast[c]}
	if st := ix.streams[c]; st != nil {
		t.version, t.hash, t.lastSeq = st.version, st.lastHash, max(t.lastSeq, st.lastSeq())
	}
	return t
}

func (ix *index) streamVersion(c batpak.Coordinate) uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if st := ix.streams[c]; st != nil {
		return st.version
	}
	return 0
}

// streamSeqs returns the sequences of stream c (nil if unknown); the
// slice must not be modified.
func (ix *index) streamSeqs(c batpak.Coordinate) []uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if st := ix.streams[c]; st != nil {
		return st.seqs
	}
	return nil
}

// entitySeqs returns the sequences of entity's events in scope, or with
// scope "" in every scope, ascending; the slice must not be modified.
func (ix *index) entitySeqs(entity, scope string) []uint64 {
	if scope != "" {
		return ix.streamSeqs(batpak.Coordinate{Entity: entity, Scope: scope})
	}
	ix.mu.RLock()
	streams := ix.byEntity[entity]
	lists := make([][]uint64, len(streams))
	for i, st := range streams {
		lists[i] = st.seqs
	}
	ix.mu.RUnlock()
	switch len(lists) {
	case 0:
		return nil
	case 1:
		return lists[0]
	}
	var all []uint64
	for _, l := range lists {
		all = append(all, l...)
	}
	slices.Sort(all)
	return all
}

func (ix *index) lookupID(id uuid.UUID) uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.byID[id]
}

func (ix *index) lookupKey(key string) (keyRef, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	r, ok := ix.keys[key]
	return r, ok
}

func (ix *index) related(m map[uuid.UUID][]uint64, id uuid.UUID) []uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return slices.Clone(m[id])
}

// receipts returns the receipts of the n events from sequence first.
func (ix *index) receipts(first uint64, n int) []batpak.Receipt {
	log := ix.snapshot()
	out := make([]batpak.Receipt, n)
	for i := range out {
		e := log.at(first + uint64(i))
		out[i] = batpak.Receipt{EventID: e.id, Sequence: first + uint64(i), Version: e.version, Hash: e.hash}
	}
	return out
}

// record builds the Record of e at seq from its cached body, or reports
// that the body must be fetched.
func (e *entry) record(seq uint64) (batpak.Record, bool) {
	b := e.body.Load()
	if b == nil {
		return batpak.Record{}, false
	}
	return e.recordWith(seq, b.meta, b.payload), true
}

func (e *entry) recordWith(seq uint64, meta map[string]string, payload []byte) batpak.Record {
	return batpak.Record{
		Coordinate:    batpak.Coordinate{Entity: e.entity, Scope: e.scope},
		ID:            e.id,
		CorrelationID: e.corr,
		CausationID:   e.cause,
		Kind:          kind.Kind(e.kind),
		Timestamp:     timeOf(e.ts),
		Sequence:      seq,
		Version:       e.version,
		Metadata:      maps.Clone(meta),
		Payload:       payload,
		PrevHash:      e.prev,
		Hash:          e.hash,
	}
}

// recordOf builds the Record of a decoded event.
func recordOf(ev *event) batpak.Record {
	return batpak.Record{
		Coordinate:    batpak.Coordinate{Entity: ev.entity, Scope: ev.scope},
		ID:            ev.id,
		CorrelationID: ev.corr,
		CausationID:   ev.cause,
		Kind:          kind.Kind(ev.kind),
		Timestamp:     timeOf(ev.ts),
		Sequence:      ev.seq,
		Version:       ev.version,
		Metadata:      maps.Clone(ev.meta),
		Payload:       ev.payload,
		PrevHash:      ev.prev,
		Hash:          ev.hash,
	}
}

func kindOf(e *entry) kind.Kind { return kind.Kind(e.kind) }
