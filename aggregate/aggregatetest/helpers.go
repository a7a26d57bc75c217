package aggregatetest

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/memstore"
	"github.com/batpak-go/batpak/policy"
)

// newStore returns the store of one scenario.
func newStore() batpak.Store { return memstore.New() }

// toEvent turns a payload into an event of its registered kind, accepting
// a value or a pointer as the repository does.
func toEvent(reg *batpak.Registry, v any) (batpak.Event, error) {
	if ev, err := reg.Event(v); err == nil {
		return ev, nil
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && !rv.IsNil() {
		if ev, err := reg.Event(rv.Elem().Interface()); err == nil {
			return ev, nil
		}
	}
	if v != nil {
		p := reflect.New(reflect.TypeOf(v))
		p.Elem().Set(reflect.ValueOf(v))
		if ev, err := reg.Event(p.Interface()); err == nil {
			return ev, nil
		}
	}
	return batpak.Event{}, fmt.Errorf("%T is not registered", v)
}

func toEvents(reg *batpak.Registry, payloads []any) ([]batpak.Event, error) {
	out := make([]batpak.Event, len(payloads))
	for i, p := range payloads {
		ev, err := toEvent(reg, p)
		if err != nil {
			return nil, err
		}
		out[i] = ev
	}
	return out, nil
}

// roundTrip returns payloads as a reader decodes them once stored.
func roundTrip(reg *batpak.Registry, payloads []any) ([]any, error) {
	var out []any
	for _, p := range payloads {
		ev, err := toEvent(reg, p)
		if err != nil {
			return nil, err
		}
		b, ok := ev.Payload.(batpak.RawPayload)
		if !ok {
			return nil, fmt.Errorf("encode %T: the registry did not encode it", p)
		}
		v, err := reg.Decode(&batpak.Record{Kind: ev.Kind, Type: ev.Type, Metadata: ev.Metadata, Payload: b})
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func describe(v any) string { return fmt.Sprintf("%T%+v", v, v) }

func list(events []any) string {
	if len(events) == 0 {
		return "nothing"
	}
	parts := make([]string, len(events))
	for i, ev := range events {
		parts[i] = describe(ev)
	}
	return strings.Join(parts, ", ")
}

func denials(ds policy.Denials) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%s (%s)", d.Gate, d.Code)
	}
	return strings.Join(parts, ", ")
}

func deref[S any](s *S) any {
	if s == nil {
		return nil
	}
	return *s
}
