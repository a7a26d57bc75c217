package batpak

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak/kind"
)

// Event is what a caller appends: a kind, a payload and optional metadata.
type Event struct {
	Kind kind.Kind
	// Type is the stable name of the event's type ("bank.Deposited"), as
	// [Registry.Event] sets it; empty for an unnamed event. A store adds a
	// new name to its catalog ([Store.EventTypes]) and refuses an append
	// whose name disagrees with it ([*TypeConflictError]).
	Type string
	// Payload is encoded with msgpack; a [RawPayload] is stored as it is
	// ([Registry.Event] encodes with the type's codec and returns one).
	Payload any
	// Subject names the data subject (a person) whose personal data the
	// payload holds, within the scope of the event's stream: the store
	// seals the payload with the subject's key (AES-256-GCM), creating it
	// on the subject's first event, and [Store.Forget] destroys the key.
	// Empty: the payload is stored as it is.
	Subject string
	// Metadata travels with the event and is covered by its hash
	// (policy bypass reasons, tracing ids, ...). Keys and values must be
	// valid UTF-8 ([ErrInvalidMetadata]).
	Metadata map[string]string
}

// RawPayload is a payload that is already encoded: msgpack, unless the
// event's metadata names another codec ([MetaCodec]).
type RawPayload []byte

// Record is a stored event as readers see it. Its byte slices may be
// shared with other readers: treat them as read-only.
type Record struct {
	Coordinate    Coordinate
	ID            uuid.UUID
	CorrelationID uuid.UUID // the root event's id for a whole causal group
	CausationID   uuid.UUID // uuid.Nil for a root event
	Kind          kind.Kind
	// Type is the name the store's catalog holds for Kind ("" if no
	// append named it), so tools show names without the app's registry.
	Type      string
	Timestamp time.Time
	Sequence  uint64 // global, dense, from 1
	Version   uint64 // within the stream, from 1
	Metadata  map[string]string
	// Payload is the encoded payload: msgpack unless [MetaCodec] says
	// otherwise. An event with a subject ([MetaSubject]) is stored sealed;
	// readers get it opened, and nil once the subject is forgotten.
	Payload []byte
	// Erased is set on an event whose subject was forgotten: its payload
	// is gone for good. [Registry.Decode] returns an [Erased] for it.
	Erased   bool
	PrevHash [32]byte
	Hash     [32]byte // covers the payload as stored: sealed, for a subject's event
}

// Decode unmarshals the payload into v with the codec the event records
// (msgpack or JSON), as it was written: without upcasting (see
// [Registry.Decode]). The payload of an erased event is an error matching
// [ErrErased].
func (r *Record) Decode(v any) error {
	if r.Erased {
		return fmt.Errorf("%w: event %d", ErrErased, r.Sequence)
	}
	sch, err := ParseSchema(r.Metadata)
	if err != nil {
		return err
	}
	c, ok := builtinCodec(sch.Codec)
	if !ok {
		return fmt.Errorf("%w: codec %q is not built in; decode with the registry that knows it", ErrSchema, sch.Codec)
	}
	return c.Unmarshal(r.Payload, v)
}

func (r Record) String() string {
	return fmt.Sprintf("#%d %s v%d %s", r.Sequence, r.Coordinate, r.Version, r.KindName())
}

// KindName returns the record's type name if the store knows one, else
// its kind ("1:002").
func (r *Record) KindName() string {
	if r.Type != "" {
		return r.Type
	}
	return r.Kind.String()
}

// Receipt acknowledges one appended event.
type Receipt struct {
	EventID  uuid.UUID
	Sequence uint64
	Version  uint64
	Hash     [32]byte
}
