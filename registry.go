package batpak

import (
	"fmt"
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/batpak-go/batpak/kind"
)

// Registry maps event kinds to Go types, so records decode to typed values
// and typed values know their kind. Kinds nobody registered still decode,
// as raw msgpack. It is safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	types map[kind.Kind]reflect.Type
	kinds map[reflect.Type]kind.Kind
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{types: make(map[kind.Kind]reflect.Type), kinds: make(map[reflect.Type]kind.Kind)}
}

// Register binds kind k to the payload type T. Registering the same pair
// again is a no-op; binding a kind or a type twice differently is an error.
func Register[T any](r *Registry, k kind.Kind) error {
	if k.IsSystem() {
		return fmt.Errorf("%w: %s", ErrReservedKind, k)
	}
	t := reflect.TypeFor[T]()
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.types[k]; ok && old != t {
		return fmt.Errorf("batpak: kind %s is already registered to %s", k, old)
	}
	if old, ok := r.kinds[t]; ok && old != k {
		return fmt.Errorf("batpak: type %s is already registered as kind %s", t, old)
	}
	r.types[k] = t
	r.kinds[t] = k
	return nil
}

// MustRegister is like [Register] but panics on error; for package-level setup.
func MustRegister[T any](r *Registry, k kind.Kind) {
	if err := Register[T](r, k); err != nil {
		panic(err)
	}
}

// KindOf returns the kind registered for v's type.
func (r *Registry) KindOf(v any) (kind.Kind, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok := r.kinds[reflect.TypeOf(v)]
	return k, ok
}

// Event wraps a registered payload value into an Event of its kind.
func (r *Registry) Event(v any) (Event, error) {
	k, ok := r.KindOf(v)
	if !ok {
		return Event{}, fmt.Errorf("batpak: type %T is not registered", v)
	}
	return Event{Kind: k, Payload: v}, nil
}

// Decode returns rec's payload as the registered type's value (not a
// pointer), or as msgpack.RawMessage when its kind is not registered.
func (r *Registry) Decode(rec *Record) (any, error) {
	r.mu.RLock()
	t, ok := r.types[rec.Kind]
	r.mu.RUnlock()
	if !ok {
		return msgpack.RawMessage(rec.Payload), nil
	}
	p := reflect.New(t)
	if err := msgpack.Unmarshal(rec.Payload, p.Interface()); err != nil {
		return nil, fmt.Errorf("batpak: decode %s payload of event %d as %s: %w", rec.Kind, rec.Sequence, t, err)
	}
	return p.Elem().Interface(), nil
}

// DecodeAs decodes rec's payload as a T.
func DecodeAs[T any](rec *Record) (T, error) {
	var v T
	err := msgpack.Unmarshal(rec.Payload, &v)
	return v, err
}
