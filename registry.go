package batpak

import (
	"encoding/json"
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
// decode to typed values of the current shape and typed values know their
// kind, name, schema version and codec. It is safe for concurrent use.
//
// A kind, a type name and a Go type are bound to each other once: binding
// any of them again differently is an error ([ErrTypeConflict]). The name
// travels with every event the registry makes ([Registry.Event]), so a
// store keeps a catalog of kinds and names that tools read without the
// registry, and refuses an append that would rename a kind or move a name.
//
// A type's schema evolves through upcasters ([Upcast]): each turns a
// payload of one version into the next, and [Registry.Decode] applies the
// chain from the version an event was written at, so readers only ever
// see the registered type. Kinds nobody registered still decode, as raw
// bytes.
type Registry struct {
	mu       sync.RWMutex
	byKind   map[kind.Kind]*eventType
	byName   map[string]*eventType
	byType   map[reflect.Type]*eventType
	codecs   map[string]Codec // every codec a type uses, by name
	defaults typeSettings
}

// eventType is one registered event type. It never changes once
// registered.
type eventType struct {
	kind   kind.Kind
	name   string
	typ    reflect.Type
	codec  Codec
	strict bool
	steps  []upcastStep // steps[i] turns version i+1 into version i+2
}

// version is the type's current schema version.
func (et *eventType) version() uint16 { return uint16(len(et.steps) + 1) }

// RegistryOption configures a [Registry].
type RegistryOption func(*Registry)

// DefaultCodec makes c the codec of every type registered without
// [WithCodec] (default: [Msgpack]).
func DefaultCodec(c Codec) RegistryOption { return func(r *Registry) { r.defaults.codec = c } }

// StrictByDefault makes every type registered without [Lenient] decode
// strictly (see [Strict]).
func StrictByDefault() RegistryOption { return func(r *Registry) { r.defaults.strict = true } }

// NewRegistry returns an empty registry.
func NewRegistry(opts ...RegistryOption) *Registry {
	r := &Registry{
		byKind:   make(map[kind.Kind]*eventType),
		byName:   make(map[string]*eventType),
		byType:   make(map[reflect.Type]*eventType),
		codecs:   map[string]Codec{"msgpack": Msgpack, "json": JSON},
		defaults: typeSettings{codec: Msgpack},
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Register binds kind k and the stable type name name ("bank.Deposited")
// to the payload type T, with the options given:
//
//	batpak.MustRegister[Deposited](reg, kind.Custom(1, 2), "bank.Deposited",
//		batpak.Upcast(func(v DepositedV1) (Deposited, error) { ... }))
//
// Registering the same kind, name, type and schema version again is a
// no-op. A system kind is refused ([ErrReservedKind]), and so is a name
// [ValidateTypeName] refuses ([ErrInvalidTypeName]), an upcaster chain
// that does not end at T ([ErrUpcast]) and a codec whose name is taken by
// another ([ErrTypeConflict]). Binding a kind, a name or a Go type that is
// already registered to something else fails with a [*TypeConflictError].
// The name is what tools show and what a store's catalog keeps: choose one
// that outlives the Go type's name, since renaming it later is refused by
// stores that have seen it.
func Register[T any](r *Registry, k kind.Kind, name string, opts ...TypeOption) error {
	if k.IsSystem() {
		return fmt.Errorf("%w: %s", ErrReservedKind, k)
	}
	if err := ValidateTypeName(name); err != nil {
		return err
	}
	t := reflect.TypeFor[T]()
	r.mu.Lock()
	defer r.mu.Unlock()
	set := r.defaults
	for _, o := range opts {
		o(&set)
	}
	et := &eventType{kind: k, name: name, typ: t, codec: set.codec, strict: set.strict, steps: set.steps}
	if err := set.check(t); err != nil {
		return fmt.Errorf("batpak: register %q: %w", name, err)
	}
	conflict := func(format string, args ...any) error {
		return &TypeConflictError{Kind: k, Name: name, Reason: fmt.Sprintf(format, args...)}
	}
	if c, ok := r.codecs[et.codec.Name()]; ok && reflect.TypeOf(c) != reflect.TypeOf(et.codec) {
		return conflict("codec name %q is taken by %T", et.codec.Name(), c)
	}
	old := r.byKind[k]
	switch {
	case old != nil && old.typ == t && old.name == name && old.version() == et.version():
		return nil
	case old != nil:
		return conflict("kind %s is already registered as %q (%s, schema %d)", k, old.name, old.typ, old.version())
	case r.byName[name] != nil:
		o := r.byName[name]
		return conflict("name %q is already registered as kind %s (%s)", name, o.kind, o.typ)
	case r.byType[t] != nil:
		o := r.byType[t]
		return conflict("type %s is already registered as %q (kind %s)", t, o.name, o.kind)
	}
	r.byKind[k], r.byName[name], r.byType[t] = et, et, et
	r.codecs[et.codec.Name()] = et.codec
	return nil
}

// MustRegister is like [Register] but panics on error; for package-level setup.
func MustRegister[T any](r *Registry, k kind.Kind, name string, opts ...TypeOption) {
	if err := Register[T](r, k, name, opts...); err != nil {
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

// SchemaVersion returns the current schema version of the type registered
// for kind k: 1 plus the number of its upcasters.
func (r *Registry) SchemaVersion(k kind.Kind) (uint16, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if et := r.byKind[k]; et != nil {
		return et.version(), true
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

// Event encodes a registered payload value into an Event of its kind and
// type name: the payload encoded by the type's codec, with the schema
// version and codec in the metadata ([MetaSchema], [MetaCodec]) unless
// they are the defaults (version 1, msgpack), and, for a [Personal]
// value, its data subject.
func (r *Registry) Event(v any) (Event, error) {
	r.mu.RLock()
	et := r.byType[reflect.TypeOf(v)]
	r.mu.RUnlock()
	if et == nil {
		return Event{}, fmt.Errorf("batpak: type %T is not registered", v)
	}
	b, err := et.codec.Marshal(v)
	if err != nil {
		return Event{}, fmt.Errorf("batpak: encode %q payload %T: %w", et.name, v, err)
	}
	meta := Schema{Version: et.version(), Codec: et.codec.Name()}.metadata(nil)
	ev := Event{Kind: et.kind, Type: et.name, Payload: RawPayload(b), Metadata: meta}
	ev.Subject = SubjectOf(v)
	return ev, nil
}

// SubjectOf returns the data subject the payload v names: its
// DataSubject() if it is [Personal], also where only *T has the method
// (a pointer receiver) and v is a T, since such a payload is personal
// data all the same. It returns "" for any other value.
func SubjectOf(v any) string {
	if p, ok := v.(Personal); ok {
		return p.DataSubject()
	}
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() == reflect.Pointer || !reflect.PointerTo(t).Implements(reflect.TypeFor[Personal]()) {
		return ""
	}
	pv := reflect.New(t)
	pv.Elem().Set(reflect.ValueOf(v))
	return pv.Interface().(Personal).DataSubject()
}

// Decode returns rec's payload as a value of the type registered for its
// kind (not a pointer), in the type's current shape: a payload written at
// an older schema version is decoded as that version's type and passed
// through the upcasters to the current one. It decodes with the codec the
// event records, strictly if the type asks for it ([Strict]). A kind the
// registry does not know decodes as its raw bytes: msgpack.RawMessage for
// msgpack, json.RawMessage for JSON, [RawPayload] for another codec. An
// erased event ([Record.Erased]) decodes as an [Erased] value, whatever
// its kind. Errors are [*DecodeError]s.
func (r *Registry) Decode(rec *Record) (any, error) {
	if rec.Erased {
		return erasedOf(rec), nil
	}
	r.mu.RLock()
	et := r.byKind[rec.Kind]
	r.mu.RUnlock()
	sch, err := ParseSchema(rec.Metadata)
	if et == nil {
		return raw(rec.Payload, sch.Codec), nil
	}
	fail := func(err error) (any, error) {
		return nil, &DecodeError{Sequence: rec.Sequence, Kind: rec.Kind, Type: et.name, Schema: sch.Version, Err: err}
	}
	if err != nil {
		return fail(err)
	}
	if sch.Version > et.version() {
		return fail(fmt.Errorf("%w: written at schema %d, this build's %s is at schema %d (a later release wrote it)", ErrSchema, sch.Version, et.typ, et.version()))
	}
	c, err := r.codec(sch.Codec)
	if err != nil {
		return fail(err)
	}
	target := et.typ
	if sch.Version < et.version() {
		target = et.steps[sch.Version-1].from
	}
	p := reflect.New(target)
	if et.strict {
		err = c.UnmarshalStrict(rec.Payload, p.Interface())
	} else {
		err = c.Unmarshal(rec.Payload, p.Interface())
	}
	if err != nil {
		return fail(fmt.Errorf("as %s: %w", target, err))
	}
	v := p.Elem().Interface()
	for i := int(sch.Version) - 1; i < len(et.steps); i++ {
		if v, err = et.steps[i].fn(v); err != nil {
			return fail(fmt.Errorf("%w: from schema %d to %d: %w", ErrUpcast, i+1, i+2, err))
		}
	}
	return v, nil
}

// codec returns the codec named name: a built-in or one a registered
// type uses.
func (r *Registry) codec(name string) (Codec, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if c, ok := r.codecs[name]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("%w: codec %q is not known to the registry", ErrSchema, name)
}

// raw returns an undecoded payload in the raw form of its codec.
func raw(b []byte, codec string) any {
	switch codec {
	case "msgpack":
		return msgpack.RawMessage(b)
	case "json":
		return json.RawMessage(b)
	}
	return RawPayload(b)
}

// DecodeAs decodes rec's payload as a T with the codec the event records
// (msgpack or JSON), without upcasting: use [Registry.Decode] for types
// that evolve.
func DecodeAs[T any](rec *Record) (T, error) {
	var v T
	err := rec.Decode(&v)
	return v, err
}
