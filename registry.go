package batpak

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/batpak-go/batpak/kind"
)

// Registry maps event kinds to Go types and stable type names, so records
// decode to typed values and typed values know their kind and name. Kinds
// nobody registered still decode, as raw msgpack. It is safe for
// concurrent use.
//
// A kind, a type name and a Go type are bound to each other once: binding
// any of them again differently is an error ([ErrTypeConflict]). The name
// travels with every event the registry makes ([Registry.Event]), so a
// store keeps a catalog of kinds and names that tools read without the
// registry, and refuses an append that would rename a kind or move a name.
type Registry struct {
	mu     sync.RWMutex
	byKind map[kind.Kind]*eventType
	byName map[string]*eventType
	byType map[reflect.Type]*eventType
}

// eventType is one registered event type. It never changes once
// registered.
type eventType struct {
	kind kind.Kind
	name string
	typ  reflect.Type
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		byKind: make(map[kind.Kind]*eventType),
		byName: make(map[string]*eventType),
		byType: make(map[reflect.Type]*eventType),
	}
}

// Register binds kind k and the stable type name name ("bank.Deposited")
// to the payload type T:
//
//	batpak.MustRegister[Deposited](reg, kind.Custom(1, 2), "bank.Deposited")
//
// Registering the same three again is a no-op. A system kind is refused
// ([ErrReservedKind]), and so is a name [ValidateTypeName] refuses
// ([ErrInvalidTypeName]). Binding a kind, a name or a Go type that is
// already registered to something else fails with a [*TypeConflictError].
// The name is what tools show and what a store's catalog keeps: choose one
// that outlives the Go type's name, since renaming it later is refused by
// stores that have seen it.
func Register[T any](r *Registry, k kind.Kind, name string) error {
	if k.IsSystem() {
		return fmt.Errorf("%w: %s", ErrReservedKind, k)
	}
	if err := ValidateTypeName(name); err != nil {
		return err
	}
	t := reflect.TypeFor[T]()
	r.mu.Lock()
	defer r.mu.Unlock()
	conflict := func(format string, args ...any) error {
		return &TypeConflictError{Kind: k, Name: name, Reason: fmt.Sprintf(format, args...)}
	}
	old := r.byKind[k]
	if old != nil && old.typ == t && old.name == name {
		return nil
	}
	switch {
	case old != nil:
		return conflict("kind %s is already registered as %q (%s)", k, old.name, old.typ)
	case r.byName[name] != nil:
		o := r.byName[name]
		return conflict("name %q is already registered as kind %s (%s)", name, o.kind, o.typ)
	case r.byType[t] != nil:
		o := r.byType[t]
		return conflict("type %s is already registered as %q (kind %s)", t, o.name, o.kind)
	}
	et := &eventType{kind: k, name: name, typ: t}
	r.byKind[k], r.byName[name], r.byType[t] = et, et, et
	return nil
}

// MustRegister is like [Register] but panics on error; for package-level setup.
func MustRegister[T any](r *Registry, k kind.Kind, name string) {
	if err := Register[T](r, k, name); err != nil {
		panic(err)
	}
}

// KindOf returns the kind registered for v's type.
func (r *Registry) KindOf(v any) (kind.Kind, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if et := r.byType[reflect.TypeOf(v)]; et != nil {
		return et.kind, true
	}
	return 0, false
}

// TypeName returns the name registered for kind k.
func (r *Registry) TypeName(k kind.Kind) (string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if et := r.byKind[k]; et != nil {
		return et.name, true
	}
	return "", false
}

// KindOfName returns the kind registered under the type name name.
func (r *Registry) KindOfName(name string) (kind.Kind, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if et := r.byName[name]; et != nil {
		return et.kind, true
	}
	return 0, false
}

// Types returns the name of every registered kind.
func (r *Registry) Types() map[kind.Kind]string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m := make(map[kind.Kind]string, len(r.byKind))
	for k, et := range r.byKind {
		m[k] = et.name
	}
	return m
}

// CheckCatalog compares the registry with a store's catalog of type names
// ([Store.EventTypes]): it returns a [*TypeConflictError] for every kind
// the two name differently and every name they bind to different kinds,
// joined, or nil. An app can call it at startup to find out before its
// first append that a release renamed a type or moved it to another kind.
func (r *Registry) CheckCatalog(catalog map[kind.Kind]string) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	byName := make(map[string]kind.Kind, len(catalog))
	for k, n := range catalog {
		byName[n] = k
	}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(r.byKind)) {
		et := r.byKind[k]
		if n, ok := catalog[k]; ok && n != et.name {
			errs = append(errs, &TypeConflictError{Kind: k, Name: et.name, Catalog: true,
				Reason: fmt.Sprintf("the store knows kind %s as %q", k, n)})
		}
		if ck, ok := byName[et.name]; ok && ck != k {
			errs = append(errs, &TypeConflictError{Kind: k, Name: et.name, Catalog: true,
				Reason: fmt.Sprintf("the store knows %q as kind %s", et.name, ck)})
		}
	}
	return errors.Join(errs...)
}

// Event wraps a registered payload value into an Event of its kind and
// type name.
func (r *Registry) Event(v any) (Event, error) {
	r.mu.RLock()
	et := r.byType[reflect.TypeOf(v)]
	r.mu.RUnlock()
	if et == nil {
		return Event{}, fmt.Errorf("batpak: type %T is not registered", v)
	}
	return Event{Kind: et.kind, Type: et.name, Payload: v}, nil
}

// Decode returns rec's payload as the registered type's value (not a
// pointer), or as msgpack.RawMessage when its kind is not registered.
func (r *Registry) Decode(rec *Record) (any, error) {
	r.mu.RLock()
	et := r.byKind[rec.Kind]
	r.mu.RUnlock()
	if et == nil {
		return msgpack.RawMessage(rec.Payload), nil
	}
	p := reflect.New(et.typ)
	if err := msgpack.Unmarshal(rec.Payload, p.Interface()); err != nil {
		return nil, fmt.Errorf("batpak: decode %q (kind %s) payload of event %d as %s: %w", et.name, rec.Kind, rec.Sequence, et.typ, err)
	}
	return p.Elem().Interface(), nil
}

// DecodeAs decodes rec's payload as a T.
func DecodeAs[T any](rec *Record) (T, error) {
	var v T
	err := msgpack.Unmarshal(rec.Payload, &v)
	return v, err
}
