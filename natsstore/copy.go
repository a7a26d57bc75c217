package natsstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"go.uber.org/zap"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/internal/codec"
)

// CopyReport says what [CopyValid] did.
type CopyReport struct {
	// Events and Requests count the events copied and the appends they
	// came in (a request is copied whole, atomically, or not at all).
	Events, Requests uint64
	// Present counts requests the destination already held (from an
	// earlier, interrupted run).
	Present uint64
	// Skipped counts the source's messages left behind because they are
	// not valid events: not batpak events at all, events that break their
	// stream's versions or hash chain (so also every later event of a
	// stream whose chain broke), parts of a request cut short, and requests
	// that repeat an earlier request's Nats-Msg-Id. Removed sequences of
	// the source are counted in Removed, not here.
	Skipped uint64
	// Removed counts the source sequences that hold no message (deleted,
	// purged or expired).
	Removed uint64
	// Format is the source's store format (format.go): 1 for a stream of
	// an older version, converted as it is copied, or 2.
	Format int
	// Rechained counts the events of a format 1 source whose entity had
	// events in more than one scope: format 1 kept them in one stream, and
	// in the copy each scope's events are a stream of their own, so these
	// events take the next version of their own stream, link to its
	// previous event and get the hash that follows from that. Every other
	// event keeps its version and hash.
	Rechained uint64
	// Left lists the first 1000 messages left behind.
	Left []SkippedMessage
}

// SkippedMessage is a message of the source that [CopyValid] left behind.
type SkippedMessage struct {
	Sequence uint64
	Subject  string
	Reason   string
}

const copyReportMax = 1000

// CopyValid copies the events of the store kept in the stream named from
// to the stream named to, leaving behind every message that is not a valid
// event, and reports what it copied and what it left. It is the way out
// for a stream that holds messages no batpak client wrote (the stream
// denies deletes, so they cannot be removed in place), that lost messages,
// or whose configuration Open refuses: point the clients at the new stream
// once it is done.
//
// The destination is created as [Open] creates a store's stream, with the
// options given (WithReplicas, WithStorage, WithDuplicateWindow,
// WithSubjectPrefix for the destination's subjects, WithTimeout for each
// request), and must be new or hold an earlier, interrupted copy of the
// same source: running CopyValid again copies what is missing. Events keep
// everything but their global sequence: ids, versions, hashes, timestamps,
// correlation and causation, metadata and idempotency keys (the
// destination's index reads them back). Each request is copied as one
// atomic publish, so the destination's sequences are dense again. The
// source's subjects are those of its stream, "<prefix>.>"; the source is
// only read. Writers should be stopped while the copy runs: events
// appended to the source after CopyValid read its last sequence are not
// copied. The catalog of type names and the data subjects' keys (and the
// tombstones of the forgotten ones) are copied first, from the source's
// buckets to the destination's (copystate.go).
//
// CopyValid is also the way from an older store format to this version's
// (format.go), which Open needs: a source of format 1 (no
// "batpak_format" marker, events on "<prefix>.<entity>") is checked by
// format 1's rules (one stream per entity) and copied in format 2 (one
// stream per scope and entity). Idempotency keys move into the scope of
// their request's first event. An entity that had events in several
// scopes becomes one stream per scope, whose events take new versions and
// hashes (CopyReport.Rechained); every other event keeps its own.
func CopyValid(ctx context.Context, nc *nats.Conn, from, to string, opts ...Option) (CopyReport, error) {
	var rep CopyReport
	cfg := newConfig(opts)
	cfg.stream = to
	if err := validStreamName(from); err != nil {
		return rep, err
	}
	if from == to {
		return rep, fmt.Errorf("natsstore: copy: source and destination are both %s", from)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return rep, fmt.Errorf("natsstore: %w", err)
	}
	src, err := lookupStream(ctx, js, from, cfg.timeout)
	if err != nil {
		return rep, err
	}
	srcPrefix, err := storePrefix(src.CachedInfo().Config)
	if err != nil {
		return rep, err
	}
	if rep.Format, err = sourceFormat(ctx, src, srcPrefix+".", cfg.timeout); err != nil {
		return rep, err
	}
	last := src.CachedInfo().State.LastSeq
	dst, err := open(ctx, nc, cfg)
	if err != nil {
		return rep, fmt.Errorf("natsstore: copy: destination: %w", err)
	}
	defer dst.Close()
	if err := copyState(ctx, js, from, dst); err != nil {
		return rep, err
	}
	if last == 0 {
		return rep, nil
	}
	// Every message, on the store's subjects or not, so that a sequence
	// with no message is a removed one.
	cons, err := js.OrderedConsumer(ctx, from, jetstream.OrderedConsumerConfig{
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: time.Minute,
		NamePrefix:        "batpak_copy_" + nuid.Next(),
	})
	if err != nil {
		return rep, fmt.Errorf("natsstore: copy: source consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(256))
	if err != nil {
		return rep, fmt.Errorf("natsstore: copy: source consumer: %w", err)
	}
	defer it.Stop()
	v := newCopyCheck(rep.Format)
	leave := func(seq uint64, subject, reason string) {
		rep.Skipped++
		if len(rep.Left) < copyReportMax {
			rep.Left = append(rep.Left, SkippedMessage{Sequence: seq, Subject: subject, Reason: reason})
		}
		cfg.logger.Warn("copy: left a message behind", zap.String("stream", from), zap.Uint64("sequence", seq),
			zap.String("subject", subject), zap.String("reason", reason))
	}
	next := uint64(1) // the next source sequence expected
	for next <= last {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return rep, fmt.Errorf("natsstore: copy: reading %s at sequence %d: %w", from, next, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return rep, fmt.Errorf("natsstore: copy: %w", err)
		}
		seq := meta.Sequence.Stream
		if seq > last {
			break
		}
		if seq > next {
			rep.Removed += seq - next
			for _, p := range v.cut() {
				leave(p.seq, p.subject, "request cut short by removed messages")
			}
		}
		next = seq + 1
		ev, err := decodeMessageFormat(rep.Format, srcPrefix+".", m.Subject(), m.Headers(), m.Data(), seq)
		if err != nil {
			for _, p := range v.cut() {
				leave(p.seq, p.subject, "request cut short by a message that is not an event")
			}
			leave(seq, m.Subject(), err.Error())
			continue
		}
		evs, left, reason := v.add(ev)
		for _, p := range left {
			leave(p.seq, p.subject, reason)
		}
		if evs == nil {
			continue
		}
		if rep.Format == 1 {
			// Format 1 keys were global; format 2 keys belong to the scope
			// of the request's first event.
			if key, ok := keyOfMsgID(evs[0].msgID); ok {
				evs[0].msgID = keyMsgID(codec.ScopedKey(evs[0].scope, key))
			}
		}
		hashes := make([][32]byte, len(evs))
		for i := range evs {
			hashes[i] = evs[i].hash
		}
		switch present, dup, err := dst.copyRequest(ctx, evs); {
		case err != nil:
			return rep, fmt.Errorf("natsstore: copy: request at %s sequence %d: %w", from, evs[0].seq, err)
		case dup:
			for _, p := range evs {
				leave(p.seq, p.subject, "an earlier request has its Nats-Msg-Id "+strconv.Quote(evs[0].msgID))
			}
		case present:
			rep.Present++
		default:
			rep.Requests++
			rep.Events += uint64(len(evs))
			for i := range evs {
				if evs[i].hash != hashes[i] {
					rep.Rechained++
				}
			}
		}
	}
	for _, p := range v.cut() {
		leave(p.seq, p.subject, "request cut short at the end of the stream")
	}
	return rep, nil
}

// copyRequest publishes evs, one request of the source, unchanged but for
// its subject and sequences (and, for events marked rechain, their
// versions, links and hashes in their own streams, set in evs). It reports
// whether the destination already held the request, or whether the server
// dropped it because an earlier request had its Nats-Msg-Id.
func (s *Store) copyRequest(ctx context.Context, evs []event) (present, dup bool, err error) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.timeout)
	defer cancel()
	wait := 10 * time.Millisecond
	for {
		if s.ix.lookupID(evs[0].id) != 0 {
			return true, false, nil
		}
		msgs, err := s.copyPlan(evs)
		if err != nil {
			return false, false, err
		}
		last, isDup, err := s.publish(actx, msgs)
		code := apiCode(err)
		switch {
		case err == nil && !isDup:
			_, err := s.finish(actx, last, append([]event(nil), evs...))
			return false, false, err
		case isDup, code == 10201:
			if err := s.catchUp(actx); err != nil {
				return false, false, s.unavailable(err)
			}
			return false, s.ix.lookupID(evs[0].id) == 0, nil
		case code == 10158, code == 10071, code == 10164, retryable(err):
			if actx.Err() != nil {
				return false, false, s.unavailable(err)
			}
			sleep(actx, &wait)
			if err := s.catchUp(actx); errors.Is(err, batpak.ErrClosed) || errors.Is(err, ErrInvalidMessage) {
				return false, false, err
			}
		default:
			return false, false, fmt.Errorf("natsstore: copy: %w", err)
		}
	}
}

// copyPlan returns the messages of evs on this store's subjects, with the
// expected last subject sequences the index knows. The destination must
// be at the versions the events follow; an event marked rechain that does
// not follow takes the next version of its stream instead, linked to the
// stream's last hash, and the hash of that (written into evs).
func (s *Store) copyPlan(evs []event) ([]*nats.Msg, error) {
	s.ix.mu.RLock()
	defer s.ix.mu.RUnlock()
	local := make(map[batpak.Coordinate]tip, 2)
	msgs := make([]*nats.Msg, len(evs))
	for i := range evs {
		ev := &evs[i]
		c := ev.coord()
		t, seen := local[c]
		if !seen {
			t = s.ix.tipOf(c)
		}
		if t.version+1 != ev.version || t.hash != ev.prev {
			if !ev.rechain {
				return nil, fmt.Errorf("natsstore: copy: the destination's %s is at version %d, the copy's next event is version %d: the destination is not a copy of the source", c, t.version, ev.version)
			}
			ev.version, ev.prev = t.version+1, t.hash
			ev.hash = eventHash(ev)
		}
		m := nats.NewMsg(subjectOf(s.prefix, c))
		if err := encodeHeader(m.Header, ev); err != nil {
			return nil, err
		}
		if !seen {
			m.Header.Set(hdrExpectedSubj, strconv.FormatUint(t.lastSeq, 10))
		}
		if i == 0 {
			id := ev.msgID
			if id == "" {
				id = eventMsgID(ev.id)
			}
			m.Header.Set(hdrMsgID, id)
		}
		m.Data = ev.payload
		msgs[i] = m
		local[c] = tip{version: ev.version, hash: ev.hash}
	}
	if len(msgs) > 1 && !s.atomic {
		return nil, ErrBatchUnsupported
	}
	return msgs, nil
}

// copyCheck validates the source's messages as the index does: whole
// requests, versions in order, hash links, one request per Nats-Msg-Id.
// A stream is what the source's format makes it: an entity (format 1) or
// a scope and entity (format 2).
type copyCheck struct {
	format  int
	tips    map[batpak.Coordinate]streamState
	pending []event
	msgIDs  map[string]bool
	// Format 1: the scope of each entity's first event, and the entities
	// that have events in another scope too.
	scopes map[string]string
	mixed  map[string]bool
}

func newCopyCheck(format int) *copyCheck {
	return &copyCheck{
		format: format, tips: make(map[batpak.Coordinate]streamState), msgIDs: make(map[string]bool),
		scopes: make(map[string]string), mixed: make(map[string]bool),
	}
}

// stream returns the source stream ev belongs to.
func (v *copyCheck) stream(ev *event) batpak.Coordinate {
	if v.format == 1 {
		return batpak.Coordinate{Entity: ev.entity}
	}
	return ev.coord()
}

// cut drops the request being assembled and returns its messages.
func (v *copyCheck) cut() []event {
	p := v.pending
	v.pending = nil
	return p
}

// add takes the next event of the source. It returns a whole valid
// request to copy, or the messages to leave behind and why.
func (v *copyCheck) add(ev event) (request, left []event, reason string) {
	if n := len(v.pending); n > 0 {
		p := v.pending[n-1]
		if ev.parts != p.parts || ev.part != p.part+1 {
			left = v.cut()
			reason = fmt.Sprintf("request of %d events cut short at part %d", p.parts, p.part)
		}
	}
	if len(v.pending) == 0 && ev.part != 1 {
		return nil, append(left, ev), fmt.Sprintf("part %d/%d without the start of its request", ev.part, ev.parts)
	}
	v.pending = append(v.pending, ev)
	if ev.part < ev.parts {
		return nil, left, reason
	}
	evs := v.cut()
	if left == nil {
		return v.check(evs)
	}
	// The cut request is left; this one is copied or left whole too.
	req, l, r := v.check(evs)
	if l != nil {
		return nil, append(left, l...), reason + "; then " + r
	}
	return req, left, reason
}

// check validates a whole request against the streams' tips and records
// it. Events of a format 1 entity seen in more than one scope so far are
// marked rechain.
func (v *copyCheck) check(evs []event) (request, left []event, reason string) {
	tips := make(map[batpak.Coordinate]streamState, 1)
	for i := range evs {
		e := &evs[i]
		c := v.stream(e)
		t, ok := tips[c]
		if !ok {
			t = v.tips[c]
		}
		if e.version != t.version+1 || e.prev != t.lastHash {
			return nil, evs, fmt.Sprintf("%q version %d does not follow version %d of its stream", e.entity, e.version, t.version)
		}
		tips[c] = streamState{version: e.version, lastHash: e.hash}
	}
	if id := evs[0].msgID; id != "" {
		if v.msgIDs[id] {
			return nil, evs, "an earlier request has its Nats-Msg-Id " + strconv.Quote(id)
		}
		v.msgIDs[id] = true
	}
	for c, t := range tips {
		v.tips[c] = t
	}
	if v.format == 1 {
		for i := range evs {
			e := &evs[i]
			if first, ok := v.scopes[e.entity]; !ok {
				v.scopes[e.entity] = e.scope
			} else if first != e.scope {
				v.mixed[e.entity] = true
			}
			e.rechain = v.mixed[e.entity]
		}
	}
	return evs, nil, ""
}

// sourceFormat returns the store format of the source stream str (format.go):
// its marker's, or, without one, 2 if its first message is an event on a
// subject of format 2 (a mirror or copy of a format 2 store) and 1
// otherwise. A format this version does not know is refused.
func sourceFormat(ctx context.Context, str jetstream.Stream, prefix string, timeout time.Duration) (int, error) {
	info := str.CachedInfo()
	switch m := formatMarker(&info.Config); m {
	case "":
	case "1", strconv.Itoa(storeFormat):
		n, _ := strconv.Atoi(m)
		return n, nil
	default:
		return 0, &FormatError{Stream: info.Config.Name, Marker: m, Messages: info.State.Msgs}
	}
	if info.State.LastSeq == 0 {
		return 1, nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	f, err := sniffFormat(ctx, str, info.State.FirstSeq, prefix)
	if err != nil {
		return 0, fmt.Errorf("natsstore: copy: reading the first message of %s: %w", info.Config.Name, err)
	}
	if f == 2 {
		return 2, nil
	}
	return 1, nil
}

// lookupStream binds to an existing stream, waiting while the cluster
// elects its leader, for at most timeout.
func lookupStream(ctx context.Context, js jetstream.JetStream, name string, timeout time.Duration) (jetstream.Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	wait := 10 * time.Millisecond
	for {
		str, err := js.Stream(ctx, name)
		if err == nil {
			return str, nil
		}
		if !retryableSetup(err) || ctx.Err() != nil {
			return nil, fmt.Errorf("natsstore: stream %s: %w", name, err)
		}
		sleep(ctx, &wait)
	}
}

// storePrefix returns the subject prefix of the store kept in a stream:
// its one subject of the form "<prefix>.>".
func storePrefix(cfg jetstream.StreamConfig) (string, error) {
	var found []string
	for _, s := range cfg.Subjects {
		if p, ok := strings.CutSuffix(s, ".>"); ok && validSubjectPrefix(p) == nil {
			found = append(found, p)
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("natsstore: copy: stream %s: want one subject of the form <prefix>.>, it has %v", cfg.Name, cfg.Subjects)
	}
	return found[0], nil
}
