package explorer

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

// PayloadJSON renders a msgpack payload as JSON, whatever Go type wrote
// it: it shows what is stored, not what a type makes of it. A payload that
// does not decode becomes {"undecodable_msgpack": hex, "error": why}. The
// JSON is not escaped for HTML (pages escape as they render); the batpak
// command prints payloads with it too.
func PayloadJSON(p []byte) json.RawMessage {
	if len(p) == 0 {
		return json.RawMessage("null")
	}
	v, err := decodeMsgpack(p)
	if err == nil {
		// Not escaped for HTML here: pages escape as they render, and a
		// payload shows as it is stored.
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err = enc.Encode(v); err == nil {
			return bytes.TrimRight(b.Bytes(), "\n")
		}
	}
	out, _ := json.Marshal(map[string]string{"undecodable_msgpack": hex.EncodeToString(p), "error": err.Error()})
	return out
}

// RecordPayloadJSON renders rec's payload as JSON with the codec the event
// records: a msgpack payload as [PayloadJSON] does, a JSON payload as it
// is (compacted). A payload of another codec, or JSON that does not parse,
// becomes {"undecodable": hex, "codec": name, "error": why}.
func RecordPayloadJSON(rec *batpak.Record) json.RawMessage {
	sch, err := batpak.ParseSchema(rec.Metadata)
	switch {
	case err == nil && sch.Codec == "msgpack":
		return PayloadJSON(rec.Payload)
	case err == nil && sch.Codec == "json":
		var b bytes.Buffer
		if err = json.Compact(&b, rec.Payload); err == nil {
			return b.Bytes()
		}
	case err == nil:
		err = fmt.Errorf("codec %q is not built in", sch.Codec)
	}
	out, _ := json.Marshal(map[string]string{"undecodable": hex.EncodeToString(rec.Payload), "codec": sch.Codec, "error": err.Error()})
	return out
}

// decodeMsgpack decodes one msgpack value into plain Go values that
// encoding/json can marshal: maps get string keys whatever their type.
func decodeMsgpack(p []byte) (any, error) {
	if err := checkLengths(msgpack.NewDecoder(bytes.NewReader(p)), len(p), 0); err != nil {
		return nil, err
	}
	r := bytes.NewReader(p)
	dec := msgpack.NewDecoder(r)
	dec.SetMapDecoder(func(d *msgpack.Decoder) (any, error) {
		n, err := d.DecodeMapLen()
		if err != nil || n < 0 {
			return nil, err
		}
		// n comes from the payload: size the map by what the bytes left
		// can hold (a key and a value take a byte each at least), so a
		// few bytes cannot ask for gigabytes.
		m := make(map[string]any, min(n, r.Len()/2))
		for range n {
			k, err := d.DecodeInterface()
			if err != nil {
				return nil, err
			}
			v, err := d.DecodeInterface()
			if err != nil {
				return nil, err
			}
			m[mapKey(k)] = v
		}
		return m, nil
	})
	v, err := dec.DecodeInterface()
	if err != nil {
		return nil, err
	}
	if r.Len() > 0 {
		return nil, fmt.Errorf("%d bytes after the msgpack value", r.Len())
	}
	return v, nil
}

func mapKey(k any) string {
	switch k := k.(type) {
	case string:
		return k
	case []byte:
		if utf8.Valid(k) {
			return string(k)
		}
		return hex.EncodeToString(k)
	case nil:
		return "null"
	}
	return fmt.Sprint(k)
}

// indentJSON returns j indented for reading.
func indentJSON(j json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Indent(&b, j, "", "  "); err != nil {
		return string(j)
	}
	return b.String()
}

// summary shortens s to n runes for a list.
func summary(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// kindNamer names kinds: by the application's function, else by the
// store's catalog (a record's type name), else by the registry.
type kindNamer struct {
	reg *batpak.Registry
	fn  func(kind.Kind) string
}

func newKindNamer(reg *batpak.Registry, fn func(kind.Kind) string) *kindNamer {
	return &kindNamer{reg: reg, fn: fn}
}

// name returns the name of rec's kind, or "".
func (n *kindNamer) name(rec *batpak.Record) string {
	if s := n.known(rec.Kind); s != "" {
		return s
	}
	return rec.Type
}

// known returns the name the application or the registry gives k, or "".
func (n *kindNamer) known(k kind.Kind) string {
	if n.fn != nil {
		if s := n.fn(k); s != "" {
			return s
		}
	}
	if n.reg != nil {
		if s, ok := n.reg.TypeName(k); ok {
			return s
		}
	}
	return ""
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// humanBytes formats n with a binary unit.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// maxNesting bounds how deep the arrays and maps of a payload shown as
// JSON may nest.
const maxNesting = 256

// checkLengths walks the msgpack value d reads, of at most size bytes,
// and refuses an array or map that claims more elements than the bytes
// left could hold (each takes a byte at least) or that nests deeper than
// maxNesting. The msgpack decoder sizes a slice or map for an interface
// value by the claimed length alone: a five-byte payload could ask for
// gigabytes.
func checkLengths(d *msgpack.Decoder, size, depth int) error {
	if depth > maxNesting {
		return fmt.Errorf("arrays and maps nest deeper than %d", maxNesting)
	}
	c, err := d.PeekCode()
	if err != nil {
		return err
	}
	var n, per int
	var what string
	switch {
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, err = d.DecodeArrayLen()
		per, what = 1, "array"
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, err = d.DecodeMapLen()
		per, what = 2, "map"
	default:
		return d.Skip()
	}
	if err != nil {
		return err
	}
	if n > 0 && n > size/per {
		return fmt.Errorf("a msgpack %s claims %d elements in %d bytes", what, n, size)
	}
	for range n * per {
		if err := checkLengths(d, size, depth+1); err != nil {
			return err
		}
	}
	return nil
}
