package batpak

import (
	"errors"
	"fmt"
	"reflect"
)

// TypeOption configures one registered type ([Register]).
type TypeOption func(*typeSettings)

type typeSettings struct {
	codec  Codec
	strict bool
	steps  []upcastStep
	err    error
}

// upcastStep turns a payload of type from (one schema version) into a
// value of type to (the next).
type upcastStep struct {
	from, to reflect.Type
	fn       func(any) (any, error)
}

// WithCodec encodes the type's payloads with c. Events record their codec,
// so payloads written with another codec before still decode.
func WithCodec(c Codec) TypeOption { return func(s *typeSettings) { s.codec = c } }

// Strict makes [Registry.Decode] refuse a payload of the type with a field
// the Go type does not have or without a field it requires (exported, not
// omitempty or omitzero), with an error matching [ErrStrictDecode],
// instead of skipping the one and leaving the other zero. It applies to
// the current type and to every older version's type an upcaster takes.
// The default is lenient: unknown fields are skipped and missing ones
// stay zero, which lets an older release read what a newer one wrote.
func Strict() TypeOption { return func(s *typeSettings) { s.strict = true } }

// Lenient undoes [StrictByDefault] for one type.
func Lenient() TypeOption { return func(s *typeSettings) { s.strict = false } }

// Upcast adds the next step of the type's schema: fn turns a payload of
// the version before (Old) into the next version (New). The first Upcast
// given takes version 1 to 2, the second 2 to 3, and so on, so the type's
// current schema version is one more than the number of upcasters, and
// the last upcaster's New must be the registered type:
//
//	batpak.MustRegister[Deposited](reg, kindDeposited, "bank.Deposited",
//		batpak.Upcast(func(v DepositedV1) (DepositedV2, error) {
//			return DepositedV2{Cents: v.Amount * 100}, nil
//		}),
//		batpak.Upcast(func(v DepositedV2) (Deposited, error) {
//			return Deposited{Cents: v.Cents, Currency: "EUR"}, nil
//		}))
//
// A payload written at version n is decoded as the Old type of the n-th
// upcaster and passed through it and every later one. An error from fn
// fails the decode ([ErrUpcast]).
func Upcast[Old, New any](fn func(Old) (New, error)) TypeOption {
	return func(s *typeSettings) {
		if fn == nil {
			s.err = errors.Join(s.err, fmt.Errorf("%w: a nil upcaster", ErrUpcast))
			return
		}
		s.steps = append(s.steps, upcastStep{
			from: reflect.TypeFor[Old](),
			to:   reflect.TypeFor[New](),
			fn:   func(v any) (any, error) { return fn(v.(Old)) },
		})
	}
}

// check reports what is wrong with the settings of type t.
func (s *typeSettings) check(t reflect.Type) error {
	if s.err != nil {
		return s.err
	}
	if s.codec == nil {
		return errors.New("a nil codec")
	}
	if name := s.codec.Name(); !validCodecName(name) {
		return fmt.Errorf("codec name %q: 1 to 32 bytes of a-z, 0-9, '.', '_' and '-'", name)
	}
	if b, ok := builtinCodec(s.codec.Name()); ok && reflect.TypeOf(b) != reflect.TypeOf(s.codec) {
		return fmt.Errorf("codec name %q is a built-in codec's", s.codec.Name())
	}
	if len(s.steps) >= 1<<16-1 {
		return fmt.Errorf("%w: %d upcasters", ErrUpcast, len(s.steps))
	}
	for i, st := range s.steps {
		if i+1 < len(s.steps) && st.to != s.steps[i+1].from {
			return fmt.Errorf("%w: upcaster %d yields %s, upcaster %d takes %s", ErrUpcast, i+1, st.to, i+2, s.steps[i+1].from)
		}
	}
	if n := len(s.steps); n > 0 && s.steps[n-1].to != t {
		return fmt.Errorf("%w: the last upcaster yields %s, not the registered %s", ErrUpcast, s.steps[n-1].to, t)
	}
	return nil
}
