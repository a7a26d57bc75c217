package aggregate

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
)

// ErrNotSnapshottable is returned by the repository constructors given
// [WithSnapshots] for a state type that would not survive a snapshot.
var ErrNotSnapshottable = errors.New("aggregate: state type does not survive a msgpack snapshot")

// codecs are the pairs of interfaces msgpack encodes and decodes a type
// with instead of its fields, in the order msgpack looks for them.
var codecs = []struct {
	name     string
	enc, dec reflect.Type
}{
	{"msgpack.CustomEncoder/CustomDecoder", reflect.TypeFor[msgpack.CustomEncoder](), reflect.TypeFor[msgpack.CustomDecoder]()},
	{"msgpack.Marshaler/Unmarshaler", reflect.TypeFor[msgpack.Marshaler](), reflect.TypeFor[msgpack.Unmarshaler]()},
	{"encoding.BinaryMarshaler/BinaryUnmarshaler", reflect.TypeFor[encoding.BinaryMarshaler](), reflect.TypeFor[encoding.BinaryUnmarshaler]()},
	{"encoding.TextMarshaler/TextUnmarshaler", reflect.TypeFor[encoding.TextMarshaler](), reflect.TypeFor[encoding.TextUnmarshaler]()},
}

// checkSnapshottable reports why values of t would not come back from a
// msgpack round trip as they went in: msgpack skips unexported fields
// (a snapshot load would leave them zero while a replay fills them),
// decodes interface fields as generic maps and numbers rather than the
// types that were stored, and cannot encode functions or channels. A type
// that encodes itself (one of [codecs], on the type or its pointer) is
// trusted with its whole content. Fields tagged `msgpack:"-"` are left out
// on purpose and not reported.
func checkSnapshottable(t reflect.Type) error {
	var problems []string
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		if seen[t] {
			return
		}
		seen[t] = true
		if codec, ok := encodesItself(t); ok {
			if codec != "" {
				problems = append(problems, fmt.Sprintf("%s (%s) encodes with %s but does not decode with it", path, t, codec))
			}
			return
		}
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			walk(t.Elem(), path+"[]")
		case reflect.Map:
			walk(t.Key(), path+"[key]")
			walk(t.Elem(), path+"[value]")
		case reflect.Interface:
			problems = append(problems, fmt.Sprintf("%s is an interface (%s): it decodes as generic maps and numbers, not as the type stored", path, t))
		case reflect.Func, reflect.Chan, reflect.UnsafePointer:
			problems = append(problems, fmt.Sprintf("%s is a %s: msgpack cannot encode it", path, t.Kind()))
		case reflect.Struct:
			for i := range t.NumField() {
				f := t.Field(i)
				if tagName(f) == "-" {
					continue
				}
				fp := path + "." + f.Name
				switch {
				case f.Anonymous && structLike(f.Type) && (f.IsExported() || f.Type.Kind() == reflect.Struct):
					walk(f.Type, fp) // embedded: its fields are promoted
				case !f.IsExported():
					problems = append(problems, fmt.Sprintf("%s is unexported: msgpack skips it", fp))
				default:
					walk(f.Type, fp)
				}
			}
		}
	}
	walk(t, t.String())
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s; export the fields, or implement one of %s on the state (or on the field's type)",
		ErrNotSnapshottable, strings.Join(problems, "; "), codecNames())
}

// encodesItself reports whether msgpack encodes t through one of
// [codecs]. If it encodes t that way but cannot decode it the same way,
// codec names the pair.
func encodesItself(t reflect.Type) (codec string, ok bool) {
	p := reflect.PointerTo(t)
	for _, c := range codecs {
		if t.Implements(c.enc) || p.Implements(c.enc) {
			if t.Implements(c.dec) || p.Implements(c.dec) {
				return "", true
			}
			return c.name, true
		}
	}
	return "", false
}

func structLike(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct
}

func tagName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("msgpack"), ",")
	return name
}

func codecNames() string {
	names := make([]string, len(codecs))
	for i, c := range codecs {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}
