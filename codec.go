package batpak

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
)

// Codec turns payload values into bytes and back. The name of the codec
// that encoded a payload is recorded with its event ([MetaCodec]), so a
// registry decodes every stored payload with the codec that wrote it,
// also after a type switched codecs. [Msgpack] is the default, [JSON] the
// second built-in.
type Codec interface {
	// Name identifies the codec in stored events; it must never change.
	// It is 1 to 32 bytes of a-z, 0-9, '.', '_' and '-'.
	Name() string
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into v, a pointer. Fields of v that data
	// lacks are left as they are, fields data has that v lacks are
	// skipped.
	Unmarshal(data []byte, v any) error
	// UnmarshalStrict is Unmarshal that refuses a payload with a field v
	// does not have, or without a field v has (except optional ones, such
	// as omitempty fields), with an error matching [ErrStrictDecode].
	UnmarshalStrict(data []byte, v any) error
}

// The built-in codecs.
var (
	// Msgpack is the default codec: github.com/vmihailenco/msgpack/v5 with
	// its defaults (struct fields by name, the "msgpack" tag).
	Msgpack Codec = msgpackCodec{}
	// JSON is encoding/json (the "json" tag). Payloads in JSON are larger
	// and slower than msgpack but readable by anything.
	JSON Codec = jsonCodec{}
)

// builtinCodec returns the built-in codec named name.
func builtinCodec(name string) (Codec, bool) {
	switch name {
	case "", "msgpack":
		return Msgpack, true
	case "json":
		return JSON, true
	}
	return nil, false
}

// validCodecName reports whether name may name a codec.
func validCodecName(name string) bool {
	if name == "" || len(name) > 32 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

type msgpackCodec struct{}

func (msgpackCodec) Name() string                       { return "msgpack" }
func (msgpackCodec) Marshal(v any) ([]byte, error)      { return msgpack.Marshal(v) }
func (msgpackCodec) Unmarshal(data []byte, v any) error { return msgpack.Unmarshal(data, v) }

func (msgpackCodec) UnmarshalStrict(data []byte, v any) error {
	d := msgpack.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields(true)
	if err := d.Decode(v); err != nil {
		if strings.Contains(err.Error(), "unknown field") {
			return fmt.Errorf("%w: %w", ErrStrictDecode, err)
		}
		return err
	}
	keys, ok := msgpackKeys(data)
	if !ok {
		return nil // not a map: an array-encoded struct or no struct at all
	}
	return missingFields(reflect.TypeOf(v), "msgpack", keys, false)
}

// msgpackKeys returns the keys of the map data encodes, if it is one.
func msgpackKeys(data []byte) (map[string]bool, bool) {
	d := msgpack.NewDecoder(bytes.NewReader(data))
	n, err := d.DecodeMapLen()
	if err != nil || n < 0 {
		return nil, false
	}
	keys := make(map[string]bool, min(n, len(data)/2)) // n is the payload's word
	for range n {
		k, err := d.DecodeString()
		if err != nil {
			return nil, false
		}
		keys[k] = true
		if err := d.Skip(); err != nil {
			return nil, false
		}
	}
	return keys, true
}

type jsonCodec struct{}

func (jsonCodec) Name() string                       { return "json" }
func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

func (jsonCodec) UnmarshalStrict(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		if strings.Contains(err.Error(), "unknown field") {
			return fmt.Errorf("%w: %w", ErrStrictDecode, err)
		}
		return err
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil || m == nil {
		return nil // not an object
	}
	keys := make(map[string]bool, len(m))
	for k := range m {
		keys[strings.ToLower(k)] = true
	}
	return missingFields(reflect.TypeOf(v), "json", keys, true)
}

// missingFields returns an error matching ErrStrictDecode naming the
// fields of the struct t (or the struct a pointer t points to) that are
// required and not among keys: exported, not skipped ("-") and not
// omitempty, under the names the tag gives them. Embedded structs without
// a name of their own are searched as their fields are inlined. With fold,
// keys are lower case and names compared so (encoding/json matches names
// without regard to case).
func missingFields(t reflect.Type, tag string, keys map[string]bool, fold bool) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var missing []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get(tag), ",")
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case name == "-":
				continue
			case f.Anonymous && name == "" && ft.Kind() == reflect.Struct:
				walk(ft)
				continue
			case !f.IsExported() || strings.Contains(","+opts+",", ",omitempty,") || strings.Contains(","+opts+",", ",omitzero,"):
				continue
			}
			if name == "" {
				name = f.Name
			}
			key := name
			if fold {
				key = strings.ToLower(name)
			}
			if !keys[key] {
				missing = append(missing, name)
			}
		}
	}
	walk(t)
	if len(missing) > 0 {
		return fmt.Errorf("%w: payload lacks %s", ErrStrictDecode, strings.Join(missing, ", "))
	}
	return nil
}
