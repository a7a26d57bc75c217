package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/internal/codec"
)

// request is one Append or AppendBatch.
type request struct {
	items []item
	key   string // the idempotency key in its scope (codec.ScopedKey), or ""
}

type item struct {
	coord       batpak.Coordinate
	kind        uint16
	payload     []byte
	meta        map[string]string
	expected    batpak.ExpectedVersion
	correlation uuid.UUID
	causation   uuid.UUID
}

// Append appends events to the stream coord, atomically: all of them or
// none (a request of several events is one JetStream atomic batch).
// Options set the expected version (checked against the stream before the
// first event), an idempotency key (which belongs to coord's scope) and
// correlation and causation ids. It
// returns once the server has acknowledged the events and this client's
// index holds them, with one receipt per event. ctx bounds the wait for the
// stream's lock in this client; once the first publish is sent the call
// returns its outcome, within the store's timeout (see [WithTimeout]).
func (s *Store) Append(ctx context.Context, coord batpak.Coordinate, events []batpak.Event, opts ...batpak.AppendOption) ([]batpak.Receipt, error) {
	o, err := batpak.ResolveAppendOptions(opts...)
	if err != nil {
		return nil, err
	}
	if err := coord.Validate(); err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, batpak.ErrEmptyAppend
	}
	r := &request{key: codec.ScopedKey(coord.Scope, o.IdempotencyKey), items: make([]item, len(events))}
	for i, ev := range events {
		it, err := s.prepare(ctx, coord.Scope, ev)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		it.coord, it.correlation, it.causation, it.expected = coord, o.Correlation, o.Causation, batpak.Any
		r.items[i] = it
	}
	r.items[0].expected = o.Expected
	if err := s.recordTypes(ctx, events); err != nil {
		return nil, err
	}
	return s.submit(ctx, r)
}

// AppendBatch appends events to several streams atomically, as one
// JetStream atomic batch: the server commits every item or none. Each
// item's expected version is checked in order. The only options that apply
// are the idempotency key (which belongs to the first item's scope) and, as
// a default for items without their own, correlation and causation.
func (s *Store) AppendBatch(ctx context.Context, items []batpak.BatchItem, opts ...batpak.AppendOption) ([]batpak.Receipt, error) {
	o, err := batpak.ResolveAppendOptions(opts...)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, batpak.ErrEmptyAppend
	}
	r := &request{key: codec.ScopedKey(items[0].Coordinate.Scope, o.IdempotencyKey), items: make([]item, len(items))}
	events := make([]batpak.Event, len(items))
	for i, bi := range items {
		bi, err := bi.Resolve(o)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		it, err := s.prepare(ctx, bi.Coordinate.Scope, bi.Event)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		it.coord, it.expected, it.correlation, it.causation = bi.Coordinate, bi.Expected, bi.CorrelationID, bi.CausationID
		r.items[i] = it
		events[i] = bi.Event
	}
	if err := s.recordTypes(ctx, events); err != nil {
		return nil, err
	}
	return s.submit(ctx, r)
}

// prepare checks and encodes an event exactly as the embedded store does,
// sealing the payload of an event with a subject.
func (s *Store) prepare(ctx context.Context, scope string, ev batpak.Event) (item, error) {
	payload, meta, err := codec.Encode(ev, s.maxPay)
	if err != nil {
		return item{}, err
	}
	if ev.Subject != "" {
		if s.cfg.readOnly {
			return item{}, batpak.ErrReadOnly
		}
		if payload, meta, err = s.keyring.Seal(ctx, scope, ev.Subject, ev.Kind, payload, meta, s.maxPay); err != nil {
			return item{}, err
		}
	}
	return item{kind: uint16(ev.Kind), payload: payload, meta: meta}, nil
}

// streams returns the streams r appends to, sorted and distinct.
func (r *request) streams() []batpak.Coordinate {
	out := make([]batpak.Coordinate, 0, 1)
	for i := range r.items {
		out = append(out, r.items[i].coord)
	}
	slices.SortFunc(out, compareCoords)
	return slices.Compact(out)
}

func compareCoords(a, b batpak.Coordinate) int {
	if c := strings.Compare(a.Scope, b.Scope); c != 0 {
		return c
	}
	return strings.Compare(a.Entity, b.Entity)
}

func (s *Store) submit(ctx context.Context, r *request) ([]batpak.Receipt, error) {
	if s.cfg.readOnly {
		return nil, batpak.ErrReadOnly
	}
	if len(r.items) > 1 && !s.atomic {
		return nil, ErrBatchUnsupported
	}
	if len(r.items) > s.cfg.maxBatch {
		return nil, fmt.Errorf("%w: %d events in one request, limit %d", batpak.ErrPayloadTooLarge, len(r.items), s.cfg.maxBatch)
	}
	s.sendMu.RLock()
	if s.closed.Load() {
		s.sendMu.RUnlock()
		return nil, batpak.ErrClosed
	}
	s.inflight.Add(1)
	s.sendMu.RUnlock()
	defer s.inflight.Done()
	s.appending.Add(1)
	defer s.appending.Add(-1)
	if err := s.ix.failure(); err != nil {
		return nil, fmt.Errorf("%w: %w", batpak.ErrStoreFailed, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.key != "" {
		if rs, ok := s.keyReceipts(r.key); ok {
			return rs, nil
		}
	}
	unlock, err := s.locks.lock(ctx, r.streams())
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.commit(ctx, r)
}

func (s *Store) keyReceipts(key string) ([]batpak.Receipt, bool) {
	ref, ok := s.ix.lookupKey(key)
	if !ok {
		return nil, false
	}
	return s.ix.receipts(ref.first, ref.n), true
}

// catchUp brings the index to the stream's last sequence. Each request
// for the stream's state waits at most the ack wait; it is repeated while
// the cluster elects a leader, until ctx ends.
func (s *Store) catchUp(ctx context.Context) error {
	wait := 10 * time.Millisecond
	for {
		if s.closed.Load() {
			return batpak.ErrClosed
		}
		ictx, cancel := context.WithTimeout(ctx, s.cfg.ackWait)
		sentAt := time.Now()
		info, err := s.stream.Info(ictx)
		cancel()
		if err == nil {
			if err := s.ix.wait(ctx, info.State.LastSeq, s.done); err != nil {
				return err
			}
			s.ix.markFresh(sentAt)
			return nil
		}
		if ctx.Err() != nil || !retryable(err) {
			return err
		}
		sleep(ctx, &wait)
	}
}

// commit publishes r and waits for its outcome. The caller holds the
// locks of r's streams in this client.
//
// Every publish of r carries the same Nats-Msg-Id, so the server stores r
// at most once however often it is sent. An answer that leaves the outcome
// open (no acknowledgement, a lost connection, a leader election, a
// duplicate id still being replicated) is settled by bringing the index to
// the stream's tip and looking r up (see [Store.landed]): found, the call
// returns its receipts; not found, r is sent again, until the store's
// timeout, and then the call fails with [ErrUnavailable]. A plain error
// (one that is not ErrUnavailable) therefore always means that nothing was
// written.
func (s *Store) commit(ctx context.Context, r *request) (_ []batpak.Receipt, err error) {
	sent := false // a publish of r has left this client
	defer func() {
		// The store closing or its index stopping ends the wait for an
		// outcome, not the request: once sent, it may have been stored.
		if err != nil && sent && !errors.Is(err, ErrUnavailable) &&
			(errors.Is(err, batpak.ErrClosed) || errors.Is(err, ErrInvalidMessage)) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}()
	// From here on the request runs to its outcome within the store's
	// timeout, whatever happens to ctx: a publish that may have reached the
	// server is never abandoned half way.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.timeout)
	defer cancel()
	if r.key != "" && !s.ix.freshWithin(s.keyHorizon()) {
		// A key committed by another client may not be indexed here yet;
		// the server's duplicate window covers only the last minutes. An
		// index fresh within half the window needs no catch-up (see
		// keyHorizon).
		if err := s.catchUp(actx); err != nil {
			return nil, s.unavailable(err)
		}
		if rs, ok := s.keyReceipts(r.key); ok {
			return rs, nil
		}
	}
	if s.unknownCause(r) {
		// The cause may be another client's event, not indexed here yet.
		if err := s.catchUp(actx); err != nil {
			return nil, s.unavailable(err)
		}
	}
	now := s.cfg.clock()
	ids := make([]uuid.UUID, len(r.items))
	for i := range ids {
		ids[i] = s.ids.next(now)
	}
	msgID := eventMsgID(ids[0])
	if r.key != "" {
		msgID = keyMsgID(r.key)
	}
	ts := now.UnixMicro()
	// subjectSeq is a subject's last sequence, from the server's refusal;
	// conflicts counts the refusals.
	var subjectSeq uint64
	conflicts := 0
	fresh := false   // the index was brought to the stream's tip since the last plan
	unclear := false // an earlier publish of r may have been stored
	wait := 10 * time.Millisecond
	for {
		msgs, evs, err := s.plan(r, ids, ts, msgID)
		if err != nil {
			var vc *batpak.VersionConflictError
			if errors.As(err, &vc) && !fresh {
				// The index may lag another client: check the stream's tip.
				if err := s.catchUp(actx); err != nil {
					return nil, s.unavailable(err)
				}
				fresh = true
				continue
			}
			if unclear {
				// An earlier publish may have been stored after all.
				return s.refused(actx, r, ids[0], unclear, err)
			}
			return nil, err
		}
		fresh = false
		sent = true
		sentAt := time.Now()
		last, dup, err := s.publish(actx, msgs)
		code := apiCode(err)
		switch {
		case err == nil && !dup:
			rs, err := s.finish(actx, last, evs)
			if err == nil {
				s.ix.markFresh(sentAt) // what the stream stored before r is indexed
			}
			return rs, err
		case dup, code == 10201: // the server has stored this Nats-Msg-Id
			if r.key == "" {
				s.stats.recovered.Add(1)
			}
			return s.resolveDuplicate(actx, r, ids[0])
		case code == 10158:
			// Another publish with this Nats-Msg-Id is being replicated: an
			// earlier attempt of r, or another client's request with the
			// same key. Its outcome decides r's: wait for it, then look.
			s.stats.inProcess.Add(1)
			unclear = true
			sleep(actx, &wait)
		case code == 10071 || code == 10164:
			// The subject moved on (another client, or an earlier attempt of
			// this append that did land), or another publish to it is in
			// flight on a replicated stream.
			s.stats.serverConflicts.Add(1)
			subjectSeq = wrongLastSeq(err)
			if conflicts++; code == 10164 || conflicts > 1 {
				// In flight, or refused again from a caught-up index: back
				// off rather than spin until the timeout.
				sleep(actx, &wait)
			}
		case code == 10054 || code == 10097 || code == 10199 || errors.Is(err, nats.ErrMaxPayload):
			return s.refused(actx, r, ids[0], unclear, fmt.Errorf("%w: %w", batpak.ErrPayloadTooLarge, err))
		case code == 10174:
			return s.refused(actx, r, ids[0], unclear, fmt.Errorf("%w: %w", ErrBatchUnsupported, err))
		case code != 0 && !retryable(err):
			// The server refused this publish and stored nothing for it.
			return s.refused(actx, r, ids[0], unclear, fmt.Errorf("natsstore: append refused by the server: %w", err))
		default:
			// No answer, a lost connection, an election, too many batches:
			// the publish may or may not have been stored.
			unclear = true
			if actx.Err() != nil || !retryable(err) {
				return s.settleOrUnavailable(actx, r, ids[0], err)
			}
			sleep(actx, &wait)
			s.stats.retries.Add(1)
		}
		if actx.Err() != nil {
			return s.settleOrUnavailable(actx, r, ids[0], err)
		}
		// If an attempt landed, say so; otherwise plan again from the
		// stream's tip and send again (the Nats-Msg-Id makes the server
		// drop a copy it already has).
		rs, ok, serr := s.settle(actx, r, ids[0])
		switch {
		case ok:
			s.stats.recovered.Add(1)
			return rs, nil
		case serr == nil:
			fresh = true
			s.ix.noteSubjectSeq(subjectSeq)
		case errors.Is(serr, batpak.ErrClosed) || errors.Is(serr, ErrInvalidMessage):
			return nil, serr
		}
	}
}

// settle brings the index to the stream's tip and reports the receipts of
// r if it is there: its first event, or for a keyed request any request
// with its key (another client's included, which is then the original).
func (s *Store) settle(ctx context.Context, r *request, first uuid.UUID) ([]batpak.Receipt, bool, error) {
	if err := s.catchUp(ctx); err != nil {
		return nil, false, err
	}
	rs, ok := s.landed(r, first)
	return rs, ok, nil
}

// landed returns the receipts of r if the index holds it.
func (s *Store) landed(r *request, first uuid.UUID) ([]batpak.Receipt, bool) {
	if r.key != "" {
		if rs, ok := s.keyReceipts(r.key); ok {
			return rs, true
		}
	}
	if seq := s.ix.lookupID(first); seq != 0 {
		return s.ix.receipts(seq, len(r.items)), true
	}
	return nil, false
}

// settleOrUnavailable ends an append whose outcome is open: with r's
// receipts if it landed, otherwise with ErrUnavailable wrapping cause.
// It gives the stream one more ack wait to answer, past the store's
// timeout if needed.
func (s *Store) settleOrUnavailable(ctx context.Context, r *request, first uuid.UUID, cause error) ([]batpak.Receipt, error) {
	if rs, ok := s.landed(r, first); ok {
		s.stats.recovered.Add(1)
		return rs, nil
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ackWait)
	defer cancel()
	if rs, ok, err := s.settle(sctx, r, first); ok {
		s.stats.recovered.Add(1)
		return rs, nil
	} else if errors.Is(err, batpak.ErrClosed) {
		return nil, err
	}
	return nil, s.unavailable(cause)
}

// refused ends an append whose last publish the server refused. If an
// earlier publish of r may have been stored, a refusal says nothing about
// it: r's receipts if it landed, ErrUnavailable if the stream cannot tell.
func (s *Store) refused(ctx context.Context, r *request, first uuid.UUID, unclear bool, err error) ([]batpak.Receipt, error) {
	if !unclear {
		return nil, err
	}
	if rs, ok, serr := s.settle(ctx, r, first); ok {
		s.stats.recovered.Add(1)
		return rs, nil
	} else if errors.Is(serr, batpak.ErrClosed) {
		return nil, serr
	}
	// The stream at its tip does not hold r and the server no longer stages
	// its Nats-Msg-Id (it refused instead of answering 10158), but a leader
	// election can still commit an earlier publish later: the outcome stays
	// open. The refusal is the cause, not the outcome, so it is not wrapped.
	return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
}

func sleep(ctx context.Context, d *time.Duration) {
	t := time.NewTimer(*d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	*d = min(*d*2, 500*time.Millisecond)
}

func (s *Store) unavailable(err error) error {
	if errors.Is(err, batpak.ErrClosed) || errors.Is(err, ErrInvalidMessage) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// unknownCause reports whether an item names a cause the index lacks.
func (s *Store) unknownCause(r *request) bool {
	s.ix.mu.RLock()
	defer s.ix.mu.RUnlock()
	for i := range r.items {
		if c := r.items[i].causation; c != uuid.Nil && r.items[i].correlation == uuid.Nil {
			if _, ok := s.ix.byID[c]; !ok {
				return true
			}
		}
	}
	return false
}

// finish publishes the acknowledged events evs, the last of which has
// sequence last, to the index and returns their receipts.
func (s *Store) finish(ctx context.Context, last uint64, evs []event) ([]batpak.Receipt, error) {
	first := last - uint64(len(evs)) + 1
	for i := range evs {
		evs[i].seq = first + uint64(i)
	}
	s.applyMu.Lock()
	published, err := s.ix.offer(evs)
	if err == nil && len(published) > 0 {
		s.fanOut(published)
	}
	s.applyMu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := s.ix.wait(ctx, last, s.done); err != nil {
		return nil, s.unavailable(err)
	}
	if got := s.ix.snapshot().at(first).id; got != evs[0].id {
		return nil, fmt.Errorf("%w: sequence %d holds event %s, the server acknowledged %s there", ErrInvalidMessage, first, got, evs[0].id)
	}
	return s.ix.receipts(first, len(evs)), nil
}

// resolveDuplicate answers a request the server reported as a duplicate:
// its key (or, without one, its first event) was committed before.
func (s *Store) resolveDuplicate(ctx context.Context, r *request, first uuid.UUID) ([]batpak.Receipt, error) {
	if err := s.catchUp(ctx); err != nil {
		return nil, s.unavailable(err)
	}
	if r.key != "" {
		if rs, ok := s.keyReceipts(r.key); ok {
			return rs, nil
		}
	} else if seq := s.ix.lookupID(first); seq != 0 {
		return s.ix.receipts(seq, len(r.items)), nil
	}
	return nil, fmt.Errorf("%w: the server reported a duplicate that the stream does not hold", ErrInvalidMessage)
}

// plan computes the versions, links and hashes of r's events from the
// index and returns their messages: the first message of each stream
// carries the expected last subject sequence the index knows, the first of
// the request the Nats-Msg-Id.
func (s *Store) plan(r *request, ids []uuid.UUID, ts int64, msgID string) ([]*nats.Msg, []event, error) {
	s.ix.mu.RLock()
	defer s.ix.mu.RUnlock()
	local := make(map[batpak.Coordinate]tip, 2)
	msgs := make([]*nats.Msg, len(r.items))
	evs := make([]event, len(r.items))
	for i := range r.items {
		it := &r.items[i]
		c := it.coord
		t, seen := local[c]
		if !seen {
			t = s.ix.tipOf(c)
		}
		if !it.expected.Accepts(t.version) {
			return nil, nil, &batpak.VersionConflictError{Stream: c, Expected: it.expected, Actual: t.version}
		}
		ev := event{
			entity: c.Entity, scope: c.Scope, id: ids[i], cause: it.causation,
			kind: it.kind, ts: ts, version: t.version + 1, prev: t.hash,
			meta: it.meta, payload: it.payload, part: i + 1, parts: len(r.items),
		}
		switch {
		case it.correlation != uuid.Nil:
			ev.corr = it.correlation
		case it.causation != uuid.Nil && s.ix.byID[it.causation] != 0:
			ev.corr = s.ix.log.at(s.ix.byID[it.causation]).corr
		default:
			ev.corr = ids[0]
		}
		ev.hash = eventHash(&ev)
		m := nats.NewMsg(subjectOf(s.prefix, c))
		if err := encodeHeader(m.Header, &ev); err != nil {
			return nil, nil, err
		}
		if !seen {
			m.Header.Set(hdrExpectedSubj, strconv.FormatUint(t.lastSeq, 10))
		}
		if i == 0 {
			m.Header.Set(hdrMsgID, msgID)
			ev.msgID = msgID
		}
		m.Data = it.payload
		msgs[i], evs[i] = m, ev
		local[c] = tip{version: ev.version, hash: ev.hash}
	}
	return msgs, evs, nil
}

// pubResponse is JetStream's answer to a publish or a batch commit.
type pubResponse struct {
	Stream    string    `json:"stream"`
	Seq       uint64    `json:"seq"`
	Duplicate bool      `json:"duplicate"`
	Count     int       `json:"count"`
	Error     *apiError `json:"error"`
}

// apiError is a JetStream API error.
type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("jetstream: %s (%d, error code %d)", e.Description, e.Code, e.ErrCode)
}

func apiCode(err error) int {
	var e *apiError
	if errors.As(err, &e) {
		return e.ErrCode
	}
	var je *jetstream.APIError
	if errors.As(err, &je) {
		return int(je.ErrorCode)
	}
	return 0
}

// wrongLastSeq returns the sequence in the server's "wrong last sequence:
// N" refusal (10071), or 0.
func wrongLastSeq(err error) uint64 {
	var e *apiError
	if !errors.As(err, &e) || e.ErrCode != 10071 {
		return 0
	}
	_, n, ok := strings.Cut(e.Description, ": ")
	if !ok {
		return 0
	}
	seq, _ := strconv.ParseUint(strings.TrimSpace(n), 10, 64)
	return seq
}

// retryable reports errors after which the append may go on: the server
// did not answer, is electing a leader or has too many batches in flight.
func retryable(err error) bool {
	switch apiCode(err) {
	case 10008, 10009, 10023, 10175, 10176, 10210: // cluster unavailable, not leader, resources, batch sequence missing, incomplete batch, too many batches
		return true
	}
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrStaleConnection)
}

// publish sends msgs, one message or an atomic batch, and returns the
// stream sequence of the last one, or whether the server reported the
// request's Nats-Msg-Id as a duplicate.
func (s *Store) publish(ctx context.Context, msgs []*nats.Msg) (last uint64, dup bool, err error) {
	n := len(msgs)
	if n > 1 {
		id := nuid.Next()
		for i, m := range msgs {
			m.Header.Set(hdrBatchID, id)
			m.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		}
		msgs[n-1].Header.Set(hdrBatchCommit, "1")
		for _, m := range msgs[:n-1] {
			if err := s.nc.PublishMsg(m); err != nil {
				return 0, false, err
			}
		}
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.ackWait)
	defer cancel()
	reply, err := s.nc.RequestMsgWithContext(rctx, msgs[n-1])
	if err != nil {
		return 0, false, err
	}
	var resp pubResponse
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return 0, false, fmt.Errorf("natsstore: bad publish acknowledgement %q: %w", reply.Data, err)
	}
	if resp.Error != nil {
		return 0, false, resp.Error
	}
	if resp.Seq == 0 || n > 1 && resp.Count != 0 && resp.Count != n {
		return 0, false, fmt.Errorf("natsstore: bad publish acknowledgement %q", reply.Data)
	}
	return resp.Seq, resp.Duplicate, nil
}

// streamLocks serialises this client's appends per stream: one request at
// a time may hold a stream, so appends of one client never conflict with
// each other at the server.
type streamLocks struct {
	mu sync.Mutex
	m  map[batpak.Coordinate]*streamLock
}

type streamLock struct {
	ch   chan struct{}
	refs int
}

// lock takes the locks of streams (sorted, distinct) in order.
func (l *streamLocks) lock(ctx context.Context, streams []batpak.Coordinate) (func(), error) {
	held := make([]batpak.Coordinate, 0, len(streams))
	release := func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, e := range held {
			el := l.m[e]
			<-el.ch
			l.release(e, el)
		}
	}
	for _, e := range streams {
		l.mu.Lock()
		el := l.m[e]
		if el == nil {
			el = &streamLock{ch: make(chan struct{}, 1)}
			l.m[e] = el
		}
		el.refs++
		l.mu.Unlock()
		select {
		case el.ch <- struct{}{}:
			held = append(held, e)
		case <-ctx.Done():
			l.mu.Lock()
			l.release(e, el)
			l.mu.Unlock()
			release()
			return nil, ctx.Err()
		}
	}
	return release, nil
}

func (l *streamLocks) release(e batpak.Coordinate, el *streamLock) {
	el.refs--
	if el.refs == 0 {
		delete(l.m, e)
	}
}
