package natsstore

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/batpak-go/batpak"
)

// Message headers. The message's subject names the event's stream
// (subjectOf), its data is the event's msgpack payload, unchanged;
// everything else travels in these headers.
const (
	hdrID          = "Batpak-Id"          // event id, UUIDv7 text
	hdrKind        = "Batpak-Kind"        // kind, decimal uint16
	hdrScope       = "Batpak-Scope"       // format 1 only: scope, escaped like a subject token (format 2 has it in the subject)
	hdrVersion     = "Batpak-Version"     // stream version, decimal
	hdrTime        = "Batpak-Time"        // timestamp, unix microseconds
	hdrCorrelation = "Batpak-Correlation" // correlation id
	hdrCausation   = "Batpak-Causation"   // causation id, absent for a root
	hdrPrev        = "Batpak-Prev"        // previous hash of the stream, hex
	hdrHash        = "Batpak-Hash"        // this event's hash, hex
	hdrMeta        = "Batpak-Meta"        // metadata, a JSON object, absent when empty
	hdrRequest     = "Batpak-Request"     // "i/n": i-th of the n events of one request, absent when n = 1

	hdrMsgID        = "Nats-Msg-Id"
	hdrExpectedSubj = "Nats-Expected-Last-Subject-Sequence"
	hdrBatchID      = "Nats-Batch-Id"
	hdrBatchSeq     = "Nats-Batch-Sequence"
	hdrBatchCommit  = "Nats-Batch-Commit"
)

// Nats-Msg-Id values: "k:" + base64url(idempotency key) for keyed
// requests, "e:" + the first event id otherwise (so that a retried publish
// is deduplicated by the server too).
const (
	msgIDKey   = "k:"
	msgIDEvent = "e:"
)

func keyMsgID(key string) string { return msgIDKey + base64.RawURLEncoding.EncodeToString([]byte(key)) }

func eventMsgID(id uuid.UUID) string { return msgIDEvent + id.String() }

// keyOfMsgID returns the idempotency key of a Nats-Msg-Id, if it has one.
func keyOfMsgID(id string) (string, bool) {
	rest, ok := strings.CutPrefix(id, msgIDKey)
	if !ok {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// event is one stored event as the index and the readers see it.
type event struct {
	seq     uint64
	entity  string
	scope   string
	id      uuid.UUID
	corr    uuid.UUID
	cause   uuid.UUID
	kind    uint16
	ts      int64
	version uint64
	prev    [32]byte
	hash    [32]byte
	meta    map[string]string
	payload []byte
	part    int    // position in its request, from 1
	parts   int    // events in its request
	msgID   string // Nats-Msg-Id of the request (set on its first event)
	subject string // the message's subject, as delivered
	invalid string // why the message is not an event ("" for an event)
	// rechain marks an event CopyValid copies from a format 1 stream in
	// which its entity had events in several scopes: it takes its version
	// and hash link in its own stream (see copyPlan).
	rechain bool
}

// coord returns the event's stream.
func (e *event) coord() batpak.Coordinate { return batpak.Coordinate{Entity: e.entity, Scope: e.scope} }

// encodeHeader writes e's headers (not the publish control headers).
func encodeHeader(h nats.Header, e *event) error {
	h.Set(hdrID, e.id.String())
	h.Set(hdrKind, strconv.FormatUint(uint64(e.kind), 10))
	h.Set(hdrVersion, strconv.FormatUint(e.version, 10))
	h.Set(hdrTime, strconv.FormatInt(e.ts, 10))
	h.Set(hdrCorrelation, e.corr.String())
	if e.cause != uuid.Nil {
		h.Set(hdrCausation, e.cause.String())
	}
	h.Set(hdrPrev, hex.EncodeToString(e.prev[:]))
	h.Set(hdrHash, hex.EncodeToString(e.hash[:]))
	if len(e.meta) > 0 {
		// JSON escapes control characters, so the value is one header line.
		b, err := json.Marshal(e.meta)
		if err != nil {
			return fmt.Errorf("natsstore: encode metadata: %w", err)
		}
		h.Set(hdrMeta, string(b))
	}
	if e.parts > 1 {
		h.Set(hdrRequest, strconv.Itoa(e.part)+"/"+strconv.Itoa(e.parts))
	}
	return nil
}

// decodeMessage parses a stored message of the store's format (see
// format.go). prefix is the store's subject prefix including the trailing
// dot.
func decodeMessage(prefix, subject string, h nats.Header, data []byte, seq uint64) (event, error) {
	return decodeMessageFormat(storeFormat, prefix, subject, h, data, seq)
}

// decodeMessageFormat parses a stored message of the given store format:
// 2, whose subject names its stream (scope and entity), or 1, whose
// subject names its entity and whose Batpak-Scope header its scope (what
// CopyValid reads from a stream of an older version).
func decodeMessageFormat(format int, prefix, subject string, h nats.Header, data []byte, seq uint64) (event, error) {
	e := event{seq: seq, subject: subject, payload: data, part: 1, parts: 1}
	bad := func(what string, err error) (event, error) {
		if err != nil {
			return event{}, fmt.Errorf("%w: sequence %d: %s: %v", ErrInvalidMessage, seq, what, err)
		}
		return event{}, fmt.Errorf("%w: sequence %d: %s", ErrInvalidMessage, seq, what)
	}
	var err error
	if format == 1 {
		var ok bool
		if e.entity, ok = subjectEntityV1(prefix, subject); !ok {
			// Also a subject that decodes to an entity but is not the one
			// the store writes its events to: the server counts it apart.
			return bad("subject "+strconv.Quote(subject)+" is not an entity's subject", nil)
		}
		if h.Get(hdrID) == "" {
			return bad("no "+hdrID+" header", nil)
		}
		if e.scope, err = unescapeToken(h.Get(hdrScope)); err != nil || e.scope == "" {
			return bad("scope", err)
		}
	} else {
		c, ok := subjectStream(prefix, subject)
		if !ok {
			// Also a subject that decodes to a coordinate but is not the
			// one the store writes its events to: the server counts it
			// apart from the stream's subject sequence.
			return bad("subject "+strconv.Quote(subject)+" is not a stream's subject", nil)
		}
		if h.Get(hdrID) == "" {
			return bad("no "+hdrID+" header", nil)
		}
		e.entity, e.scope = c.Entity, c.Scope
	}
	if err := e.coord().Validate(); err != nil {
		return bad("coordinate", err)
	}
	if e.id, err = uuid.Parse(h.Get(hdrID)); err != nil {
		return bad(hdrID, err)
	}
	if e.corr, err = uuid.Parse(h.Get(hdrCorrelation)); err != nil {
		return bad(hdrCorrelation, err)
	}
	if c := h.Get(hdrCausation); c != "" {
		if e.cause, err = uuid.Parse(c); err != nil {
			return bad(hdrCausation, err)
		}
	}
	k, err := strconv.ParseUint(h.Get(hdrKind), 10, 16)
	if err != nil {
		return bad(hdrKind, err)
	}
	e.kind = uint16(k)
	if e.version, err = strconv.ParseUint(h.Get(hdrVersion), 10, 64); err != nil || e.version == 0 {
		return bad(hdrVersion, err)
	}
	if e.ts, err = strconv.ParseInt(h.Get(hdrTime), 10, 64); err != nil {
		return bad(hdrTime, err)
	}
	if err := decodeHash(&e.prev, h.Get(hdrPrev)); err != nil {
		return bad(hdrPrev, err)
	}
	if err := decodeHash(&e.hash, h.Get(hdrHash)); err != nil {
		return bad(hdrHash, err)
	}
	if m := h.Get(hdrMeta); m != "" {
		if err := json.Unmarshal([]byte(m), &e.meta); err != nil {
			return bad(hdrMeta, err)
		}
	}
	if r := h.Get(hdrRequest); r != "" {
		a, b, ok := strings.Cut(r, "/")
		i, err1 := strconv.Atoi(a)
		n, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || i < 1 || i > n {
			return bad(hdrRequest+" "+strconv.Quote(r), nil)
		}
		e.part, e.parts = i, n
	}
	e.msgID = h.Get(hdrMsgID)
	return e, nil
}

func decodeHash(dst *[32]byte, s string) error {
	if len(s) != 64 {
		return fmt.Errorf("%d hex digits, want 64", len(s))
	}
	_, err := hex.Decode(dst[:], []byte(s))
	return err
}
