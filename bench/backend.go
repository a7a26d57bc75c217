package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/vmihailenco/msgpack/v5"
)

// Backend opens one kind of event store. Every adapter keeps events in
// global order, streams with dense versions from 1 and optimistic
// concurrency on the stream version; its header comment says how it makes
// an acknowledged append durable.
type Backend interface {
	Name() string
	// Open opens (or creates) a store in dir. durable selects the mode in
	// which an acknowledged append survives power loss; otherwise the
	// backend's relaxed mode (no fsync per append) is used.
	Open(dir string, durable bool) (Store, error)
	// Relaxed names the relaxed mode, for the table.
	Relaxed() string
}

// Store is the part of an event store the workloads use.
type Store interface {
	// Append appends payloads to stream atomically if the stream is at
	// version expected (0: no stream yet; Any: no check) and returns the
	// stream's new version. A failed check returns an error matching
	// ErrConflict and writes nothing.
	Append(stream string, expected int64, payloads [][]byte) (uint64, error)
	// Load appends items to their streams without version checks, as fast
	// as the backend allows; it builds the read datasets and need not be
	// atomic.
	Load(items []Item) error
	// ReadStream calls fn for each event of stream in version order.
	ReadStream(stream string, fn func(Event) error) error
	// ReadAll calls fn for every event in global order. If decode is not
	// nil, each event's payload is passed to it before fn sees the event,
	// and its first error ends the read. A backend may run decode ahead of
	// fn, in other goroutines, as long as fn sees the events in order; the
	// peers call it in the reading goroutine (see decodeInline).
	ReadAll(decode func(payload []byte) error, fn func(Event) error) error
	Close() error
}

// Any skips the version check of an Append.
const Any int64 = -1

// ErrConflict is matched by every adapter's version-conflict error.
var ErrConflict = errors.New("version conflict")

// Item is one event of a Load.
type Item struct {
	Stream  string
	Payload []byte
}

// Event is what a read yields. Payload may only be used during the call.
type Event struct {
	Seq     uint64 // global order, from 1
	Stream  string
	Version uint64
	Payload []byte
}

var backends = []Backend{batpakBackend{}, sqliteBackend{}, boltBackend{}, pebbleBackend{}, jetstreamBackend{}}

// extraBackends run only when named (-backends, -natsstore).
var extraBackends = []Backend{natsBackend{}}

func backendByName(name string) (Backend, error) {
	for _, b := range append(backends, extraBackends...) {
		if b.Name() == name {
			return b, nil
		}
	}
	return nil, fmt.Errorf("unknown backend %q", name)
}

func conflict(stream string, expected int64, actual uint64) error {
	return fmt.Errorf("%w on %q: expected %d, stream is at %d", ErrConflict, stream, expected, actual)
}

// The peers without a record format of their own (bbolt, Pebble,
// JetStream) store each event as an envelope:
//
//	stream length u16 | stream | version u64 | kind u16 | timestamp µs i64 | event id (UUIDv7, 16) | payload
//
// This is less than batpak keeps per event (no correlation, causation,
// scope, metadata or hash chain), so it favours the peers.
const benchKind = 0x1001

func appendEnvelope(dst []byte, stream string, version uint64, payload []byte) []byte {
	id := uuid.Must(uuid.NewV7())
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(stream)))
	dst = append(dst, stream...)
	dst = binary.BigEndian.AppendUint64(dst, version)
	dst = binary.BigEndian.AppendUint16(dst, benchKind)
	dst = binary.BigEndian.AppendUint64(dst, uint64(nowMicros()))
	dst = append(dst, id[:]...)
	return append(dst, payload...)
}

func nowMicros() int64 { return time.Now().UnixMicro() }

var errEnvelope = errors.New("bad envelope")

// parseEnvelope returns a view of the envelope's stream, version and payload.
func parseEnvelope(b []byte) (stream []byte, version uint64, payload []byte, err error) {
	if len(b) < 2 {
		return nil, 0, nil, errEnvelope
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n+8+2+8+16 {
		return nil, 0, nil, errEnvelope
	}
	stream = b[2 : 2+n]
	b = b[2+n:]
	return stream, binary.BigEndian.Uint64(b), b[8+2+8+16:], nil
}

// BenchPayload is the event every workload writes: encoded with msgpack it
// is exactly payloadSize bytes. Blob is random, so no backend gains from
// compressing it.
type BenchPayload struct {
	Account  string `msgpack:"account"`
	Amount   int64  `msgpack:"amount"`
	Currency string `msgpack:"currency"`
	At       int64  `msgpack:"at"`
	Blob     []byte `msgpack:"blob"`
}

const payloadSize = 200

// payloads is a pool of distinct encoded payloads that workloads cycle through.
var payloads = func() [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	pool := make([][]byte, 1024)
	for i := range pool {
		p := BenchPayload{Account: fmt.Sprintf("account:%06d", i), Amount: int64(rng.IntN(1_000_000)), Currency: "EUR", At: 1_700_000_000_000_000 + int64(i)}
		b, _ := msgpack.Marshal(&p)
		p.Blob = make([]byte, payloadSize-len(b)-1) // nil (1 byte) becomes bin8 (2 bytes + data)
		for j := range p.Blob {
			p.Blob[j] = byte(rng.Uint32())
		}
		b, err := msgpack.Marshal(&p)
		if err != nil || len(b) != payloadSize {
			panic(fmt.Sprintf("payload is %d bytes (%v), want %d", len(b), err, payloadSize))
		}
		pool[i] = b
	}
	return pool
}()

func payload(i int) []byte { return payloads[i%len(payloads)] }

// decodeInline returns fn preceded by decode of the event's payload, in the
// goroutine that reads (decode may be nil).
func decodeInline(decode func([]byte) error, fn func(Event) error) func(Event) error {
	if decode == nil {
		return fn
	}
	return func(ev Event) error {
		if err := decode(ev.Payload); err != nil {
			return err
		}
		return fn(ev)
	}
}

// decodePayload is the decode step of W5, the same for every backend.
func decodePayload(b []byte) error {
	var p BenchPayload
	if err := msgpack.Unmarshal(b, &p); err != nil {
		return err
	}
	if p.Currency != "EUR" {
		return fmt.Errorf("decoded a bad payload")
	}
	return nil
}
