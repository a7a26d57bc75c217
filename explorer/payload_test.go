package explorer

import (
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
		{[]byte{0xc1}, `{"error":"msgpack: unknown code c1 decoding interface{}","undecodable_msgpack":"c1"}`}, // never used
		{append(enc(1), 0x01), `{"error":"1 bytes after the msgpack value","undecodable_msgpack":"0101"}`},
	} {
		if got := string(PayloadJSON(tc.payload)); got != tc.want {
			t.Errorf("PayloadJSON(%x) = %s, want %s", tc.payload, got, tc.want)
		}
	}
}
