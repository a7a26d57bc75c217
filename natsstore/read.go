package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/internal/ctxerr"
)

// Get returns the event with id, or an error matching [batpak.ErrNotFound].
// ctx bounds a read of the event's body from the server.
func (s *Store) Get(ctx context.Context, id uuid.UUID) (batpak.Record, error) {
	if err := s.checkRead(ctx); err != nil {
		return batpak.Record{}, err
	}
	seq := s.ix.lookupID(id)
	if seq == 0 {
		return batpak.Record{}, fmt.Errorf("%w: event %s", batpak.ErrNotFound, id)
	}
	return s.read(ctx, s.ix.snapshot().at(seq), seq)
}

// GetSequence returns the event with global sequence seq, or an error
// matching [batpak.ErrNotFound]. ctx bounds a read of the event's body
// from the server.
func (s *Store) GetSequence(ctx context.Context, seq uint64) (batpak.Record, error) {
	if err := s.checkRead(ctx); err != nil {
		return batpak.Record{}, err
	}
	log := s.ix.snapshot()
	if seq == 0 || seq > log.len() || log.at(seq).skipped() {
		return batpak.Record{}, fmt.Errorf("%w: sequence %d", batpak.ErrNotFound, seq)
	}
	return s.read(ctx, log.at(seq), seq)
}

// read returns the record of entry e at seq, from the cache or the server
// (within the store's timeout and ctx), as readers see it ([Store.readable]).
func (s *Store) read(ctx context.Context, e *entry, seq uint64) (batpak.Record, error) {
	rec, err := s.readRaw(ctx, e, seq)
	if err != nil {
		return rec, err
	}
	return s.readable(rec)
}

// readRaw returns the record of entry e at seq as it is stored.
func (s *Store) readRaw(ctx context.Context, e *entry, seq uint64) (batpak.Record, error) {
	if err := s.checkRead(ctx); err != nil {
		return batpak.Record{}, err
	}
	if rec, ok := e.record(seq); ok {
		return rec, nil
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	ev, err := s.fetchOne(rctx, seq)
	if err == nil && ev.id != e.id {
		err = fmt.Errorf("%w: sequence %d holds event %s, the index %s", ErrInvalidMessage, seq, ev.id, e.id)
	}
	if err != nil {
		return batpak.Record{}, s.readErr(ctx, err)
	}
	return e.recordWith(seq, ev.meta, ev.payload), nil
}

// checkRead returns why a read cannot start or go on: the store is closed
// or ctx has ended.
func (s *Store) checkRead(ctx context.Context) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	return ctxerr.Of(ctx)
}

// readErr returns the error of a read from the server: ErrClosed once the
// store is closed, the caller's ctx's error once it has ended, err
// otherwise.
func (s *Store) readErr(ctx context.Context, err error) error {
	if s.closed.Load() {
		return batpak.ErrClosed
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

// yieldToAppends lets other goroutines run every 32 events of a read
// while an append of this client waits for the server: reads of cached
// bodies never block, and when they keep every processor busy the
// goroutines that complete the append (the connection's reader, the
// index) would otherwise wait for the scheduler's next preemption.
func (s *Store) yieldToAppends(i uint64) {
	if i%32 == 31 && s.appending.Load() > 0 {
		runtime.Gosched()
	}
}

// LastSequence returns the global sequence of the newest event this client
// has indexed (see [Store.CatchUp] for other clients' appends).
func (s *Store) LastSequence() uint64 { return s.ix.lastSeq() }

// StreamVersion returns the version of the stream coord as this client has
// indexed it: 0 if it has no events.
func (s *Store) StreamVersion(coord batpak.Coordinate) uint64 { return s.ix.streamVersion(coord) }

// ReadStream yields the events of the stream coord from version from (1 or
// 0: the first) in version order, or with [batpak.Backward] from version
// from down to 1. An unknown stream yields nothing. ctx bounds the reads
// of bodies from the server; once it ends the read yields its error.
func (s *Store) ReadStream(ctx context.Context, coord batpak.Coordinate, from uint64, opts ...batpak.ReadOption) iter.Seq2[batpak.Record, error] {
	return s.readStream(ctx, coord, from, batpak.ResolveReadOptions(opts...), s.readable)
}

// readStream is ReadStream with finish making each stored record what
// the caller sees.
func (s *Store) readStream(ctx context.Context, coord batpak.Coordinate, from uint64, o batpak.ReadSettings, finish func(batpak.Record) (batpak.Record, error)) iter.Seq2[batpak.Record, error] {
	return func(yield func(batpak.Record, error) bool) {
		if err := s.checkRead(ctx); err != nil {
			yield(batpak.Record{}, err)
			return
		}
		seqs := s.ix.streamSeqs(coord)
		log := s.ix.snapshot()
		n := 0
		next, stop := iter.Pull(o.Positions(from, len(seqs)))
		defer stop()
		s.readAheadAs(ctx, log, subjectOf(s.prefix, coord), func() (uint64, bool) {
			i, ok := next()
			if !ok || o.Limit > 0 && n == o.Limit {
				return 0, false
			}
			n++
			return seqs[i], true
		}, finish, yield)
	}
}

// ReadAll yields every event from global sequence from (0 or 1: the first)
// in commit order, up to the newest indexed when the read reaches it.
func (s *Store) ReadAll(ctx context.Context, from uint64) iter.Seq2[batpak.Record, error] {
	return s.Query(ctx, batpak.Region{FromSequence: from})
}

// matchEntry evaluates region r against an index entry.
func matchEntry(r *batpak.Region, seq uint64, e *entry) bool {
	return !e.skipped() && r.MatchSequence(seq) && r.MatchStream(e.coord()) && r.MatchKind(kindOf(e)) && r.MatchTime(e.ts)
}

// Query yields the events in region r in commit order.
func (s *Store) Query(ctx context.Context, r batpak.Region) iter.Seq2[batpak.Record, error] {
	return func(yield func(batpak.Record, error) bool) {
		if err := s.checkRead(ctx); err != nil {
			yield(batpak.Record{}, err)
			return
		}
		log := s.ix.snapshot()
		last := log.len()
		if r.ToSequence != 0 {
			last = min(last, r.ToSequence)
		}
		if r.Entity != "" {
			seqs := s.ix.entitySeqs(r.Entity, r.Scope)
			subject := "" // the entity in every scope: no one subject holds its events
			if r.Scope != "" {
				subject = subjectOf(s.prefix, batpak.Coordinate{Entity: r.Entity, Scope: r.Scope})
			}
			i := sort.Search(len(seqs), func(i int) bool { return seqs[i] >= r.FromSequence })
			s.readAhead(ctx, log, subject, func() (uint64, bool) {
				for ; i < len(seqs) && seqs[i] <= last; i++ {
					if seq := seqs[i]; matchEntry(&r, seq, log.at(seq)) {
						i++
						return seq, true
					}
				}
				return 0, false
			}, yield)
			return
		}
		seq := max(r.FromSequence, 1)
		s.readAhead(ctx, log, "", func() (uint64, bool) {
			for ; seq <= last; seq++ {
				if matchEntry(&r, seq, log.at(seq)) {
					seq++
					return seq - 1, true
				}
			}
			return 0, false
		}, yield)
	}
}

// Replay yields the events in region from global sequence from (0 or 1:
// the first), like Query, up to the newest indexed when it was called: the
// path for projections catching up on a long history. Events whose bodies
// are no longer cached are streamed from the server with one ordered
// consumer (filtered by subject when the region names a scope or an
// entity) instead of one request per event. Once ctx ends it yields ctx's
// error.
func (s *Store) Replay(ctx context.Context, region batpak.Region, from uint64) iter.Seq2[batpak.Record, error] {
	return func(yield func(batpak.Record, error) bool) {
		if err := s.checkRead(ctx); err != nil {
			yield(batpak.Record{}, err)
			return
		}
		log := s.ix.snapshot()
		last := log.len()
		from = max(from, region.FromSequence, 1)
		if region.ToSequence != 0 {
			last = min(last, region.ToSequence)
		}
		if from > last {
			return
		}
		s.ix.mu.RLock()
		cold := min(s.ix.evictNext-1, last) // sequences below evictNext have no cached body
		s.ix.mu.RUnlock()
		if cold >= from {
			if !s.replayCold(ctx, region, from, cold, log, yield) {
				return
			}
			from = cold + 1
		}
		for seq := from; seq <= last; seq++ {
			s.yieldToAppends(seq)
			if e := log.at(seq); matchEntry(&region, seq, e) {
				rec, err := s.read(ctx, e, seq)
				if !yield(rec, err) || err != nil {
					return
				}
			}
		}
	}
}

// replayFilter returns the subject filter of a replay of region: the
// subjects of its scope, its entity, or both, or every subject of the
// store.
func (s *Store) replayFilter(region *batpak.Region) string {
	switch {
	case region.Entity != "" && region.Scope != "":
		return subjectOf(s.prefix, batpak.Coordinate{Entity: region.Entity, Scope: region.Scope})
	case region.Entity != "":
		return s.prefix + "*." + escapeToken(region.Entity)
	case region.Scope != "":
		return s.prefix + escapeToken(region.Scope) + ".>"
	}
	return s.cfg.prefix + ".>"
}

// replayCold streams sequences from..to from the server; it reports
// whether the caller should go on.
func (s *Store) replayCold(ctx context.Context, region batpak.Region, from, to uint64, log entryLog, yield func(batpak.Record, error) bool) bool {
	fail := func(err error) bool {
		yield(batpak.Record{}, s.readErr(ctx, err))
		return false
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	cctx, ccancel := context.WithTimeout(ctx, s.cfg.timeout)
	cons, err := s.js.OrderedConsumer(cctx, s.cfg.stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{s.replayFilter(&region)},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		// Removed by the server a minute after the store stops using it.
		InactiveThreshold: time.Minute,
		OptStartSeq:       from,
		NamePrefix:        "batpak_replay_" + nuid.Next(),
	})
	ccancel()
	if err != nil {
		return fail(fmt.Errorf("natsstore: replay consumer: %w", err))
	}
	// A pause of the server's longer than the store's timeout, with no
	// message delivered, ends the replay.
	deadline := time.Now().Add(s.cfg.timeout)
	for {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return fail(fmt.Errorf("natsstore: replay: %w", err))
		}
		got := 0
		for m := range batch.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				return fail(err)
			}
			seq := meta.Sequence.Stream
			if seq > to {
				return true
			}
			if err := s.checkRead(ctx); err != nil {
				return fail(err)
			}
			if e := log.at(seq); matchEntry(&region, seq, e) {
				ev, err := decodeMessage(s.prefix, m.Subject(), m.Headers(), m.Data(), seq)
				if err != nil {
					return fail(err)
				}
				rec, err := s.readable(e.recordWith(seq, ev.meta, ev.payload))
				if !yield(rec, err) || err != nil {
					return false
				}
			}
			if seq == to || meta.NumPending == 0 {
				return true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fail(fmt.Errorf("natsstore: replay: %w", err))
		}
		if got > 0 {
			deadline = time.Now().Add(s.cfg.timeout)
			continue
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("natsstore: replay: no message after sequence %d", from))
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return fail(ctx.Err())
		}
	}
}

// Streams yields every stream this client has indexed, in the order they
// began.
func (s *Store) Streams() iter.Seq[batpak.StreamInfo] {
	return func(yield func(batpak.StreamInfo) bool) {
		s.ix.mu.RLock()
		order := s.ix.order
		s.ix.mu.RUnlock()
		for _, st := range order {
			s.ix.mu.RLock()
			info := batpak.StreamInfo{Coordinate: st.coord, Version: st.version, LastSequence: st.lastSeq()}
			s.ix.mu.RUnlock()
			if !yield(info) {
				return
			}
		}
	}
}

// Correlated returns the sequences of the events whose correlation id is
// id, other than the root itself, in commit order.
func (s *Store) Correlated(id uuid.UUID) []uint64 { return s.ix.related(s.ix.corr, id) }

// CausedBy returns the sequences of the events whose causation id is id, in
// commit order.
func (s *Store) CausedBy(id uuid.UUID) []uint64 { return s.ix.related(s.ix.cause, id) }

// VerifyChain recomputes the hash of every event of the stream coord and
// checks each link to the previous event. It returns a [*batpak.ChainError]
// for the first event that does not verify, or ctx's error once it ends.
func (s *Store) VerifyChain(ctx context.Context, coord batpak.Coordinate) error {
	var prev [32]byte
	var want uint64 = 1
	// The records as stored: a subject's payload is hashed sealed.
	stored := func(rec batpak.Record) (batpak.Record, error) { return rec, nil }
	for rec, err := range s.readStream(ctx, coord, 1, batpak.ReadSettings{}, stored) {
		if err != nil {
			return err
		}
		broken := func(reason string) error {
			return &batpak.ChainError{Stream: coord, Version: rec.Version, Sequence: rec.Sequence, Reason: reason}
		}
		if rec.Version != want {
			return broken("version out of order")
		}
		if rec.PrevHash != prev {
			return broken("previous hash does not match the previous event")
		}
		ev := event{
			entity: coord.Entity, scope: coord.Scope, version: rec.Version, kind: uint16(rec.Kind), ts: rec.Timestamp.UnixMicro(),
			id: rec.ID, corr: rec.CorrelationID, cause: rec.CausationID, prev: rec.PrevHash, meta: rec.Metadata, payload: rec.Payload,
		}
		if eventHash(&ev) != rec.Hash {
			return broken("hash does not match the event's content")
		}
		prev = rec.Hash
		want++
	}
	return nil
}

// Reads fetch the bodies the cache no longer holds ahead of the caller, a
// window of events at a time that grows from readWindowMin (a read that
// stops early costs little) to readWindowMax.
const (
	readWindowMin = 16
	readWindowMax = 1024
)

// readAhead yields the records of the events at the sequences next
// returns, in that order, as readers see them ([Store.readable]), until
// next has no more, yield returns false or ctx ends (then it yields ctx's
// error). If subject is not empty, every sequence is one of the events of
// the stream with that subject.
func (s *Store) readAhead(ctx context.Context, log entryLog, subject string, next func() (uint64, bool), yield func(batpak.Record, error) bool) {
	s.readAheadAs(ctx, log, subject, next, s.readable, yield)
}

// readAheadAs is readAhead with finish making each stored record what the
// caller sees.
func (s *Store) readAheadAs(ctx context.Context, log entryLog, subject string, next func() (uint64, bool), finish func(batpak.Record) (batpak.Record, error), yield func(batpak.Record, error) bool) {
	window := readWindowMin
	var seqs, cold []uint64
	var n uint64
	for {
		seqs, cold = seqs[:0], cold[:0]
		for len(seqs) < window {
			seq, ok := next()
			if !ok {
				break
			}
			seqs = append(seqs, seq)
			if log.at(seq).body.Load() == nil {
				cold = append(cold, seq)
			}
		}
		if len(seqs) == 0 {
			return
		}
		var got map[uint64]*event
		var ferr error
		if len(cold) > 0 {
			got, ferr = s.fetchMany(ctx, subject, log, cold)
		}
		for _, seq := range seqs {
			if err := s.checkRead(ctx); err != nil {
				yield(batpak.Record{}, err)
				return
			}
			s.yieldToAppends(n)
			n++
			e := log.at(seq)
			rec, ok := e.record(seq)
			var err error
			switch {
			case ok:
			case got[seq] != nil:
				rec = e.recordWith(seq, got[seq].meta, got[seq].payload)
			case ferr != nil:
				yield(batpak.Record{}, ferr)
				return
			default: // evicted since the window was planned
				rec, err = s.readRaw(ctx, e, seq)
			}
			if err == nil {
				rec, err = finish(rec)
			}
			if err != nil {
				yield(batpak.Record{}, err)
				return
			}
			if !yield(rec, nil) {
				return
			}
		}
		window = min(2*window, readWindowMax)
	}
}

// fetchOne reads and decodes the message at seq.
func (s *Store) fetchOne(ctx context.Context, seq uint64) (*event, error) {
	if s.directGets() {
		got := make(map[uint64]*event, 1)
		if err := s.directGet(ctx, "", nil, []uint64{seq}, got); err != nil {
			return nil, err
		}
		if ev := got[seq]; ev != nil {
			return ev, nil
		}
	}
	return s.leaderGet(ctx, seq)
}

// fetchMany reads the messages at seqs (distinct) within the store's
// timeout and ctx, checks that each is the event the index has there, and
// returns them by sequence. On an error it returns those it read. If
// subject is not empty, every sequence is one of the events of the stream
// with that subject.
func (s *Store) fetchMany(ctx context.Context, subject string, log entryLog, seqs []uint64) (map[uint64]*event, error) {
	if err := s.checkRead(ctx); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	got, err := s.fetchAt(rctx, subject, &log, seqs)
	if err != nil {
		return got, s.readErr(ctx, err)
	}
	for seq, ev := range got {
		if id := log.at(seq).id; ev.id != id {
			delete(got, seq)
			return got, fmt.Errorf("%w: sequence %d holds event %s, the index %s", ErrInvalidMessage, seq, ev.id, id)
		}
	}
	return got, nil
}

// fetchAt reads and decodes the messages at seqs (distinct) and returns
// them by sequence; on an error, those it read. If subject is not empty,
// every sequence is one of the events of the stream with that subject and
// log holds them.
func (s *Store) fetchAt(ctx context.Context, subject string, log *entryLog, seqs []uint64) (map[uint64]*event, error) {
	want := slices.Sorted(slices.Values(seqs))
	got := make(map[uint64]*event, len(want))
	fail := func(err error) (map[uint64]*event, error) { return got, err }
	if s.directGets() {
		// A replica that lags behind the index answers with less than was
		// asked: ask again for the rest, and the leader once that stops
		// helping.
		for len(want) > 0 {
			before := len(got)
			if err := s.directGet(ctx, subject, log, want, got); err != nil {
				return fail(err)
			}
			want = slices.DeleteFunc(want, func(seq uint64) bool { return got[seq] != nil })
			if len(got) == before {
				break
			}
		}
	}
	for _, seq := range want {
		ev, err := s.leaderGet(ctx, seq)
		if err != nil {
			return fail(err)
		}
		got[seq] = ev
	}
	return got, nil
}

// directGets reports whether the stream answers direct gets, from any of
// its replicas.
func (s *Store) directGets() bool {
	info := s.stream.CachedInfo()
	return info != nil && info.Config.AllowDirect
}

// directRequest is a JetStream direct get request for a batch: batch
// messages from sequence seq, of the subject nextBySubj if set, and no
// more bytes than maxBytes (the server stops after the message that
// passes it).
type directRequest struct {
	Seq        uint64 `json:"seq"`
	NextBySubj string `json:"next_by_subj,omitempty"`
	Batch      int    `json:"batch"`
	MaxBytes   int    `json:"max_bytes"`
}

// directBatchBytes bounds the answer to one direct get request; what it
// cuts off is asked for again. (The server's own bound is its max_pending,
// 64 MiB by default.)
var directBatchBytes = 8 << 20

// directGet reads the messages at seqs (ascending) with batched direct
// gets into got: one request for each run of sequences that follow each
// other, in the stream or, with subject set, in the stream (scope and
// entity) with that subject (log then holds their versions); all requests
// in flight at once. A replica may answer with less than was asked.
func (s *Store) directGet(ctx context.Context, subject string, log *entryLog, seqs []uint64, got map[uint64]*event) error {
	inbox := s.nc.NewInbox()
	sub, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		return fmt.Errorf("natsstore: read: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	subj := jetstream.DefaultAPIPrefix + "DIRECT.GET." + s.cfg.stream
	requests := 0
	for i := 0; i < len(seqs); {
		j := i + 1
		for j < len(seqs) && (subject == "" && seqs[j] == seqs[j-1]+1 ||
			subject != "" && log.at(seqs[j]).version == log.at(seqs[j-1]).version+1) {
			j++
		}
		req, _ := json.Marshal(directRequest{Seq: seqs[i], NextBySubj: subject, Batch: j - i, MaxBytes: directBatchBytes})
		if err := s.nc.PublishRequest(subj, inbox, req); err != nil {
			return fmt.Errorf("natsstore: read: %w", err)
		}
		requests++
		i = j
	}
	// Each request ends with an end-of-batch status, or a 404 when the
	// replica has none of it. A replica that does not answer within the
	// ack wait (one that is restarting, say) leaves its part to the
	// caller's next round.
	wctx, cancel := context.WithTimeout(ctx, s.cfg.ackWait)
	defer cancel()
	for requests > 0 {
		m, err := sub.NextMsgWithContext(wctx)
		if err != nil {
			if ctx.Err() == nil && wctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("natsstore: read: %w", err)
		}
		if status := m.Header.Get("Status"); status != "" {
			if status != "204" && status != "404" {
				return fmt.Errorf("natsstore: read: direct get: %s %s", status, m.Header.Get("Description"))
			}
			requests--
			continue
		}
		seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return fmt.Errorf("natsstore: read: direct get answer without a sequence: %w", err)
		}
		if _, ok := slices.BinarySearch(seqs, seq); !ok {
			// A message the index skipped, on the stream's subject within
			// a run: the batch ends before the events it displaced, which
			// the caller asks for again.
			continue
		}
		ev, err := decodeMessage(s.prefix, m.Header.Get(jetstream.SubjectHeader), m.Header, m.Data, seq)
		if err != nil {
			continue // a skipped message (foreign.go) in the batch: not asked for
		}
		got[seq] = &ev
	}
	return nil
}

// leaderGet reads the message at seq from the stream's leader
// (STREAM.MSG.GET), which holds every acknowledged message.
func (s *Store) leaderGet(ctx context.Context, seq uint64) (*event, error) {
	req, _ := json.Marshal(struct {
		Seq uint64 `json:"seq"`
	}{seq})
	reply, err := s.nc.RequestWithContext(ctx, jetstream.DefaultAPIPrefix+"STREAM.MSG.GET."+s.cfg.stream, req)
	if err != nil {
		return nil, fmt.Errorf("natsstore: read sequence %d: %w", seq, err)
	}
	var resp struct {
		Error   *apiError `json:"error"`
		Message *struct {
			Subject string `json:"subject"`
			Seq     uint64 `json:"seq"`
			Header  []byte `json:"hdrs"`
			Data    []byte `json:"data"`
		} `json:"message"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return nil, fmt.Errorf("natsstore: read sequence %d: bad answer: %w", seq, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("natsstore: read sequence %d: %w", seq, resp.Error)
	}
	m := resp.Message
	if m == nil || m.Seq != seq {
		return nil, fmt.Errorf("natsstore: read sequence %d: bad answer %q", seq, reply.Data)
	}
	var h nats.Header
	if len(m.Header) > 0 {
		if h, err = nats.DecodeHeadersMsg(m.Header); err != nil {
			return nil, fmt.Errorf("natsstore: read sequence %d: %w", seq, err)
		}
	}
	ev, err := decodeMessage(s.prefix, m.Subject, h, m.Data, seq)
	if err != nil {
		return nil, err
	}
	return &ev, nil
}
