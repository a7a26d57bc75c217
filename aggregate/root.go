package aggregate

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

// Root is implemented by a pointer to an aggregate's state: Apply folds
// one event into the state.
//
// Apply receives each event as the registry decodes it: a value of the
// type registered for its kind (Deposited, not *Deposited, unless
// *Deposited is the type that was registered), in its current shape
// (older payloads pass through the type's upcasters). An event of a kind
// the registry does not know fails the load ([*UnknownEventError]) rather
// than reach Apply. It receives the same form when the
// repository loads a stream and when it folds a command's new events, so
// state after a command and state after a reload agree. A `case
// *Deposited:` in Apply's type switch over a registry of values never
// fires.
type Root interface {
	Apply(event any)
}

// Command decides, given the current state, which events to emit. It
// returns an error to refuse the command outright (a business rule that is
// not a policy gate); the error is returned by Execute as it is.
//
// Handle may return each event as a value of a registered type or as a
// pointer to one (or, if a pointer type is registered, as the value it
// points to): the repository turns it into the registered form before
// the gates, Apply and the store see it. An event of a type that is not
// registered in either form fails the command with [ErrNotRegistered]
// before any gate runs.
type Command[S any] interface {
	Handle(state *S) ([]any, error)
}

// Proposal is what the policy gates judge: the state before the command,
// the command and the events it would emit, in their registered form.
// Gates must not modify it.
type Proposal[S any] struct {
	Coordinate batpak.Coordinate // the stream the events go to
	Version    uint64            // the stream's version before them
	State      *S
	Command    any // the Command[S]; see [CommandGate] for gates typed on it
	Events     []any
}

// Result is the outcome of a command.
type Result[S any] struct {
	State    *S     // state after the new events
	Version  uint64 // stream version after the new events
	Events   []any  // the events emitted, in their registered form
	Receipts []batpak.Receipt
	Attempts int // load-handle-save cycles it took
}

// ErrNotRegistered is returned for an event whose type is registered in
// neither its own form nor its pointer or pointed-to form.
var ErrNotRegistered = errors.New("aggregate: event type is not registered")

// ErrUnknownEvent matches every [*UnknownEventError].
var ErrUnknownEvent = errors.New("aggregate: stream holds an event of a kind the registry does not know")

// UnknownEventError reports an event in an aggregate's stream whose kind
// the repository's registry does not know: written by another release
// (one that added the type), or by something else. Apply never sees it;
// the load fails, since a state folded without it would be wrong.
type UnknownEventError struct {
	Stream   batpak.Coordinate
	Sequence uint64
	Version  uint64
	Kind     kind.Kind
	Type     string // the store's name for the kind, if it has one
}

func (e *UnknownEventError) Error() string {
	name := ""
	if e.Type != "" {
		name = fmt.Sprintf(" %q", e.Type)
	}
	return fmt.Sprintf("aggregate: %s version %d (sequence %d) is an event of kind %s%s, which the registry does not know",
		e.Stream, e.Version, e.Sequence, e.Kind, name)
}

// Is reports whether target is [ErrUnknownEvent].
func (e *UnknownEventError) Is(target error) bool { return target == ErrUnknownEvent }

// decodeKnown decodes rec with reg, or fails with an [*UnknownEventError]
// for a kind reg does not know.
func decodeKnown(reg *batpak.Registry, rec *batpak.Record) (any, error) {
	if _, ok := reg.TypeName(rec.Kind); !ok {
		return nil, &UnknownEventError{Stream: rec.Coordinate, Sequence: rec.Sequence, Version: rec.Version, Kind: rec.Kind, Type: rec.Type}
	}
	return reg.Decode(rec)
}

// registered returns ev in the form the registry decodes it (see
// [Command]) and its kind.
func registered(reg *batpak.Registry, ev any) (any, kind.Kind, error) {
	if ev == nil {
		return nil, 0, fmt.Errorf("%w: a nil event", ErrNotRegistered)
	}
	if k, ok := reg.KindOf(ev); ok {
		return ev, k, nil
	}
	v := reflect.ValueOf(ev)
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil, 0, fmt.Errorf("%w: a nil %T", ErrNotRegistered, ev)
		}
		if k, ok := reg.KindOf(v.Elem().Interface()); ok {
			return v.Elem().Interface(), k, nil
		}
	}
	p := reflect.New(v.Type())
	p.Elem().Set(v)
	if k, ok := reg.KindOf(p.Interface()); ok {
		return p.Interface(), k, nil
	}
	return nil, 0, fmt.Errorf("%w: %T", ErrNotRegistered, ev)
}

// registeredAll returns events in their registered form (see
// [registered]); the command's slice is left as it is.
func registeredAll(reg *batpak.Registry, events []any) ([]any, error) {
	if len(events) == 0 {
		return events, nil
	}
	out := make([]any, len(events))
	for i, ev := range events {
		v, _, err := registered(reg, ev)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}
