package main

import (
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/batpak-go/batpak/kind"
)

func TestParseKind(t *testing.T) {
	for in, want := range map[string]kind.Kind{
		"1:002":  kind.Custom(1, 2),
		"f:fff":  kind.Custom(0xF, 0xFFF),
		"D:001":  kind.Effect(1),
		"4098":   kind.Custom(1, 2),
		"0x1002": kind.Custom(1, 2),
	} {
		if got, err := parseKind(in); err != nil || got != want {
			t.Errorf("parseKind(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1:", ":1", "10:001", "1:1000", "x", "65536", "-1"} {
		if k, err := parseKind(in); err == nil {
			t.Errorf("parseKind(%q) = %v, want an error", in, k)
		}
	}
}

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
		{[]byte{0xc1}, `{"error":"msgpack: unknown code c1 decoding interface{}","undecodable_msgpack":"c1"}`}, // never used
		{append(enc(1), 0x01), `{"error":"1 bytes after the msgpack value","undecodable_msgpack":"0101"}`},
	} {
		if got := string(payloadJSON(tc.payload)); got != tc.want {
			t.Errorf("payloadJSON(%x) = %s, want %s", tc.payload, got, tc.want)
		}
	}
}
