package explorer

import (
	"encoding/json"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// The HTML characters stay as they are: pages escape as they render.
func TestPayloadJSON(t *testing.T) {
	enc := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		payload []byte
		want    string
	}{
		{nil, `null`},
		{enc(map[string]any{"a": 1, "b": []any{"x", true, nil}}), `{"a":1,"b":["x",true,null]}`},
		{enc(map[int]string{1: "one"}), `{"1":"one"}`},                   // non-string keys
		{enc(map[string]any{"in": map[int]int{2: 3}}), `{"in":{"2":3}}`}, // nested
		{enc(struct{ Amount int }{5}), `{"Amount":5}`},                   // a Go struct
		{enc(1.5), `1.5`}, // not a map
		{enc("<b>"), `"<b>"`},
		{[]byte{0xc1}, `{"error":"msgpack: unknown code c1","undecodable_msgpack":"c1"}`}, // never used
		{append(enc(1), 0x01), `{"error":"1 bytes after the msgpack value","undecodable_msgpack":"0101"}`},
	} {
		if got := string(PayloadJSON(tc.payload)); got != tc.want {
			t.Errorf("PayloadJSON(%x) = %s, want %s", tc.payload, got, tc.want)
		}
	}
}

// A payload's map and array lengths are its own word: a few bytes that
// claim billions of entries are refused as undecodable, with no large
// allocation (found by review: a five-byte payload took the explorer,
// dump and tail down).
func FuzzPayloadJSON(f *testing.F) {
	f.Add([]byte{0xdf, 0x7f, 0xff, 0xff, 0xff})
	f.Add([]byte{0xdd, 0x7f, 0xff, 0xff, 0xff})
	f.Add([]byte{0x81, 0xa1, 'a', 0xdf, 0x7f, 0xff, 0xff, 0xff})
	b, _ := msgpack.Marshal(map[string]any{"a": 1, "b": []any{"x", true, nil}})
	f.Add(b)
	f.Fuzz(func(t *testing.T, p []byte) {
		out := PayloadJSON(p)
		if !json.Valid(out) {
			t.Fatalf("PayloadJSON(%x) = %s, not JSON", p, out)
		}
	})
}
