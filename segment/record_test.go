package segment_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/batpak-go/batpak/segment"
)

func manyMetadata(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("key-%03d", i)] = strings.Repeat("v", i)
	}
	return m
}

func recordCases() []struct {
	name string
	rec  segment.Record
} {
	full := testRecord(42)
	full.Metadata = map[string]string{"a": "1", "b": "", "": "empty key"}
	return []struct {
		name string
		rec  segment.Record
	}{
		{"zero", segment.Record{}},
		{"typical", testRecord(7)},
		{"with metadata", full},
		{"marker", segment.Record{Seq: 10, Kind: segment.KindBatchBegin, Version: 3}},
		{"max ints", segment.Record{
			Seq: math.MaxUint64, Kind: math.MaxUint16, Flags: math.MaxUint16,
			Version: math.MaxUint64, Timestamp: math.MaxInt64,
		}},
		{"min timestamp", segment.Record{Seq: 1, Timestamp: math.MinInt64}},
		{"negative timestamp", segment.Record{Seq: 1, Timestamp: -1}},
		{"negative timestamp large", segment.Record{Seq: 1, Timestamp: -86_400_000_000 * 365 * 30}},
		{"string 31", segment.Record{Entity: strings.Repeat("e", 31)}},
		{"string 32", segment.Record{Entity: strings.Repeat("e", 32)}},
		{"string 255", segment.Record{Scope: strings.Repeat("s", 255)}},
		{"string 256", segment.Record{Scope: strings.Repeat("s", 256)}},
		{"string 65535", segment.Record{IdempotencyKey: strings.Repeat("k", 65535)}},
		{"string 65536", segment.Record{IdempotencyKey: strings.Repeat("k", 65536)}},
		{"string 70000 in metadata", segment.Record{Metadata: map[string]string{"big": strings.Repeat("m", 70000)}}},
		{"utf-8 strings", segment.Record{Entity: "compte:é😀", Scope: "区域"}},
		{"metadata nil", segment.Record{Metadata: nil}},
		{"metadata empty", segment.Record{Metadata: map[string]string{}}},
		{"metadata 15", segment.Record{Metadata: manyMetadata(15)}},
		{"metadata 16 (map16)", segment.Record{Metadata: manyMetadata(16)}},
		{"metadata 300", segment.Record{Metadata: manyMetadata(300)}},
		{"payload nil", segment.Record{Payload: nil}},
		{"payload empty", segment.Record{Payload: []byte{}}},
		{"payload 255", segment.Record{Payload: bytes.Repeat([]byte{1}, 255)}},
		{"payload 256 (bin16)", segment.Record{Payload: bytes.Repeat([]byte{2}, 256)}},
		{"payload 65535", segment.Record{Payload: bytes.Repeat([]byte{3}, 65535)}},
		{"payload 65536 (bin32)", segment.Record{Payload: bytes.Repeat([]byte{4}, 65536)}},
		{"payload 200000 (bin32)", segment.Record{Payload: bytes.Repeat([]byte{5, 6}, 100000)}},
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, tt := range recordCases() {
		t.Run(tt.name, func(t *testing.T) {
			b := segment.AppendRecord([]byte("x"), &tt.rec)
			if b[0] != 'x' {
				t.Fatal("AppendRecord clobbered dst")
			}
			var got segment.Record
			if err := segment.DecodeRecord(b[1:], &got); err != nil {
				t.Fatalf("DecodeRecord: %v", err)
			}
			diffRecord(t, got, tt.rec)

			// Decoding into a reused record must overwrite every field.
			dirty := testRecord(99)
			dirty.Metadata = map[string]string{"stale": "yes"}
			if err := segment.DecodeRecord(b[1:], &dirty); err != nil {
				t.Fatalf("DecodeRecord into reused record: %v", err)
			}
			diffRecord(t, dirty, tt.rec)

			// The decoded record does not alias the input.
			for i := range b {
				b[i] = 0xEE
			}
			diffRecord(t, got, tt.rec)
		})
	}
}

// TestRecordShortestInts checks that the sequence and the version take
// their shortest msgpack form, at every boundary, and read back.
func TestRecordShortestInts(t *testing.T) {
	base := len(segment.AppendRecord(nil, &segment.Record{}))
	for _, tt := range []struct {
		v     uint64
		extra int // bytes beyond a positive fixint's one
	}{
		{0, 0}, {127, 0}, {128, 1}, {255, 1}, {256, 2}, {65535, 2}, {65536, 4},
		{math.MaxUint32, 4}, {math.MaxUint32 + 1, 8}, {math.MaxUint64, 8},
	} {
		r := segment.Record{Seq: tt.v, Version: tt.v}
		b := segment.AppendRecord(nil, &r)
		if len(b) != base+2*tt.extra {
			t.Errorf("seq and version %d: record of %d bytes, want %d", tt.v, len(b), base+2*tt.extra)
		}
		var got segment.Record
		if err := segment.DecodeRecord(b, &got); err != nil || got.Seq != tt.v || got.Version != tt.v {
			t.Errorf("seq and version %d read back as %d, %d: %v", tt.v, got.Seq, got.Version, err)
		}
	}
}

// TestRootCorrelationIsNil: a correlation equal to the id is written as
// nil and read back as the id.
func TestRootCorrelationIsNil(t *testing.T) {
	r := segment.Record{ID: [16]byte{1, 2, 3}}
	r.Correlation = r.ID
	other := r
	other.Correlation = [16]byte{9}
	root, linked := segment.AppendRecord(nil, &r), segment.AppendRecord(nil, &other)
	if len(linked)-len(root) != 17 {
		t.Fatalf("root record %d bytes, linked %d: want 17 less for the root", len(root), len(linked))
	}
	var got segment.Record
	if err := segment.DecodeRecord(root, &got); err != nil || got.Correlation != r.ID {
		t.Fatalf("root's correlation read back as %x: %v", got.Correlation, err)
	}
}

// sameNumber reports whether got, as an independent msgpack decoder gives
// it (any integer type), equals want; other values are compared as they are.
func sameNumber(got, want any) bool {
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	if !g.IsValid() || !w.IsValid() || !g.CanInt() && !g.CanUint() || !w.CanInt() && !w.CanUint() {
		return got == want
	}
	switch {
	case g.CanInt() && w.CanInt():
		return g.Int() == w.Int()
	case g.CanUint() && w.CanUint():
		return g.Uint() == w.Uint()
	case g.CanInt():
		return g.Int() >= 0 && uint64(g.Int()) == w.Uint()
	default:
		return w.Int() >= 0 && g.Uint() == uint64(w.Int())
	}
}

// TestRecordReadableByMsgpack decodes AppendRecord's bytes with an independent
// msgpack implementation.
func TestRecordReadableByMsgpack(t *testing.T) {
	for _, tt := range recordCases() {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.rec
			var v []any
			if err := msgpack.Unmarshal(segment.AppendRecord(nil, &r), &v); err != nil {
				t.Fatalf("msgpack.Unmarshal: %v", err)
			}
			if len(v) != 15 {
				t.Fatalf("array of %d elements, want 15", len(v))
			}
			want := []any{
				r.Seq, r.Kind, r.Flags, r.Version, r.Timestamp,
				r.ID[:], r.Correlation[:], r.Causation[:],
				r.Entity, r.Scope, r.PrevHash[:], r.Hash[:], r.IdempotencyKey,
			}
			for i, w := range want {
				if wb, ok := w.([]byte); ok {
					gb, ok := v[i].([]byte)
					if v[i] == nil && bytes.Count(wb, []byte{0}) == len(wb) {
						continue // an all-zero id or hash is written as nil
					}
					if i == 6 && v[i] == nil && r.Correlation == r.ID {
						continue // so is a root's correlation
					}
					if !ok || !bytes.Equal(gb, wb) {
						t.Errorf("element %d = %T %x, want []byte %x", i, v[i], v[i], wb)
					}
					continue
				}
				if !sameNumber(v[i], w) {
					t.Errorf("element %d = %T(%v), want %T(%v)", i, v[i], v[i], w, w)
				}
			}
			md, ok := v[13].(map[string]any)
			if !ok {
				t.Fatalf("metadata is %T, want map[string]any", v[13])
			}
			if len(md) != len(r.Metadata) {
				t.Errorf("metadata has %d entries, want %d", len(md), len(r.Metadata))
			}
			for k, want := range r.Metadata {
				if md[k] != want {
					t.Errorf("metadata[%q] = %v, want %q", k, md[k], want)
				}
			}
			p, ok := v[14].([]byte)
			if !ok || !bytes.Equal(p, r.Payload) {
				t.Errorf("payload = %T (%d bytes), want []byte (%d bytes)", v[14], len(p), len(r.Payload))
			}
		})
	}
}

// encodeWithMsgpack builds a record array with vmihailenco's encoder, using
// its minimal integer forms and optional nils.
func encodeWithMsgpack(t testing.TB, r *segment.Record, nils bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	str := func(s string) {
		if nils && s == "" {
			must(enc.EncodeNil())
			return
		}
		must(enc.EncodeString(s))
	}
	must(enc.EncodeArrayLen(15))
	must(enc.EncodeUint(r.Seq))
	must(enc.EncodeUint(uint64(r.Kind)))
	must(enc.EncodeUint(uint64(r.Flags)))
	must(enc.EncodeUint(r.Version))
	must(enc.EncodeInt(r.Timestamp))
	must(enc.EncodeBytes(r.ID[:]))
	must(enc.EncodeBytes(r.Correlation[:]))
	must(enc.EncodeBytes(r.Causation[:]))
	str(r.Entity)
	str(r.Scope)
	must(enc.EncodeBytes(r.PrevHash[:]))
	must(enc.EncodeBytes(r.Hash[:]))
	str(r.IdempotencyKey)
	if nils && len(r.Metadata) == 0 {
		must(enc.EncodeNil())
	} else {
		must(enc.EncodeMapLen(len(r.Metadata)))
		for _, k := range segment.SortedKeys(r.Metadata) {
			must(enc.EncodeString(k))
			must(enc.EncodeString(r.Metadata[k]))
		}
	}
	if nils && len(r.Payload) == 0 {
		must(enc.EncodeNil())
	} else {
		must(enc.EncodeBytes(r.Payload))
	}
	return buf.Bytes()
}

func TestDecodeRecordFromMsgpackLibrary(t *testing.T) {
	base := testRecord(3)
	tests := []struct {
		name string
		mod  func(*segment.Record)
		nils bool
	}{
		{"small positive fixints", func(r *segment.Record) { r.Seq, r.Kind, r.Flags, r.Version, r.Timestamp = 1, 0x10, 0, 1, 5 }, false},
		{"int8 timestamp", func(r *segment.Record) { r.Timestamp = -100 }, false},
		{"negative fixint timestamp", func(r *segment.Record) { r.Timestamp = -5 }, false},
		{"int16 timestamp", func(r *segment.Record) { r.Timestamp = -30000 }, false},
		{"int32 timestamp", func(r *segment.Record) { r.Timestamp = -2_000_000_000 }, false},
		{"int64 timestamp", func(r *segment.Record) { r.Timestamp = math.MinInt64 }, false},
		{"uint8 values", func(r *segment.Record) { r.Seq, r.Kind, r.Version, r.Timestamp = 200, 200, 255, 200 }, false},
		{"uint16 values", func(r *segment.Record) { r.Seq, r.Kind, r.Version, r.Timestamp = 60000, 0xFFFF, 300, 60000 }, false},
		{"uint32 values", func(r *segment.Record) { r.Seq, r.Version, r.Timestamp = 1<<31, 1<<32-1, 1<<31 }, false},
		{"uint64 values", func(r *segment.Record) { r.Seq, r.Version, r.Timestamp = math.MaxUint64, 1<<40, math.MaxInt64 }, false},
		{"str8 and str16", func(r *segment.Record) { r.Entity, r.Scope = strings.Repeat("a", 100), strings.Repeat("b", 1000) }, false},
		{"map16 metadata", func(r *segment.Record) { r.Metadata = manyMetadata(20) }, false},
		{"nil strings, map and payload", func(r *segment.Record) {
			r.Entity, r.Scope, r.IdempotencyKey, r.Metadata, r.Payload = "", "", "", nil, nil
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base
			tt.mod(&r)
			b := encodeWithMsgpack(t, &r, tt.nils)
			var got segment.Record
			if err := segment.DecodeRecord(b, &got); err != nil {
				t.Fatalf("DecodeRecord of msgpack-library bytes %x: %v", b[:min(len(b), 40)], err)
			}
			diffRecord(t, got, r)
		})
	}
}

func TestDecodeRecordTruncated(t *testing.T) {
	recs := []segment.Record{testRecord(1), testRecord(3), {Metadata: manyMetadata(17), Payload: make([]byte, 300)}}
	for i := range recs {
		b := segment.AppendRecord(nil, &recs[i])
		for n := range len(b) {
			var r segment.Record
			// A fresh copy so the decoder cannot read past the prefix.
			prefix := append([]byte(nil), b[:n]...)
			err := segment.DecodeRecord(prefix, &r)
			if err == nil {
				t.Fatalf("record %d: prefix of %d/%d bytes decoded without error", i, n, len(b))
			}
			if !errors.Is(err, segment.ErrCorrupt) {
				t.Fatalf("record %d: prefix %d: error %v does not match ErrCorrupt", i, n, err)
			}
			var de *segment.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("record %d: prefix %d: error %T is not a *DecodeError", i, n, err)
			}
		}
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	valid := testRecord(5)
	good := segment.AppendRecord(nil, &valid)
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	// A zero record: array header, seq, kind, flags and version as one
	// byte each, then the timestamp (0xd3 and 8 bytes) at 5.
	zero := segment.AppendRecord(nil, &segment.Record{})
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"not an array", []byte{0x80}},
		{"array of 14", mod(func(b []byte) []byte { b[0] = 0x9e; return b })},
		{"array16 of 16", append([]byte{0xdc, 0, 16}, good[1:]...)},
		{"array32 huge", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}},
		{"trailing byte", append(append([]byte(nil), good...), 0)},
		{"seq not an int", mod(func(b []byte) []byte { b[1] = 0xc0; return b })},
		{"kind does not fit 16 bits", append([]byte{0x9f, 0x01, 0xce, 0, 1, 0, 0}, zero[3:]...)},
		{"timestamp overflows int64", func() []byte {
			b := []byte{0x9f, 0x01, 0x01, 0x01, 0x01, 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0}
			return append(b, zero[5+9:]...)
		}()},
		{"id of 15 bytes", func() []byte {
			r := segment.Record{ID: [16]byte{1}}
			b := segment.AppendRecord(nil, &r)
			b[5+9+1] = 15 // after the timestamp, the ID's bin8 length
			return b
		}()},
		{"string length past end", []byte{0x9f, 1, 1, 1, 1, 1,
			0xc4, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			0xc4, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			0xc4, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			0xdb, 0xff, 0xff, 0xff, 0xff}},
		{"metadata map32 huge", func() []byte {
			r := segment.Record{}
			b := segment.AppendRecord(nil, &r)
			i := len(b) - 3 // fixmap 0, bin8 0
			return append(b[:i:i], 0xdf, 0x7f, 0xff, 0xff, 0xff, 0xc4, 0)
		}()},
		{"metadata more entries than bytes", func() []byte {
			r := segment.Record{}
			b := segment.AppendRecord(nil, &r)
			i := len(b) - 3
			return append(b[:i:i], 0xde, 0x00, 0x03, 0xa0, 0xa0, 0xc4, 0)
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r segment.Record
			err := segment.DecodeRecord(tt.in, &r)
			if !errors.Is(err, segment.ErrCorrupt) {
				t.Fatalf("DecodeRecord error %v, want one matching ErrCorrupt", err)
			}
		})
	}
}

func TestDecodeRecordNonMinimalArrayHeader(t *testing.T) {
	want := testRecord(5)
	good := segment.AppendRecord(nil, &want)
	for _, hdr := range [][]byte{{0xdc, 0, 15}, {0xdd, 0, 0, 0, 15}} {
		var got segment.Record
		if err := segment.DecodeRecord(append(hdr, good[1:]...), &got); err != nil {
			t.Fatalf("array header %x: %v", hdr, err)
		}
		diffRecord(t, got, want)
	}
}

func TestDecodeRecordHostileLengthsDoNotAllocate(t *testing.T) {
	r := segment.Record{}
	b := segment.AppendRecord(nil, &r)
	i := len(b) - 3
	hostile := append(b[:i:i], 0xdf, 0x7f, 0xff, 0xff, 0xff)
	n := bytesAllocated(func() {
		for range 10 {
			var r segment.Record
			_ = segment.DecodeRecord(hostile, &r)
		}
	})
	if n > 1<<20 {
		t.Fatalf("10 decodes of a hostile map length allocated %d bytes", n)
	}
}

func TestRecordEncodingDeterministic(t *testing.T) {
	keys := make([]string, 40)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%02d", (i*17)%40)
	}
	var first []byte
	for round := range 20 {
		m := make(map[string]string)
		// Different insertion orders, and Go randomizes iteration anyway.
		for j := range keys {
			k := keys[(j+round*7)%len(keys)]
			m[k] = "v-" + k
		}
		r := testRecord(11)
		r.Metadata = m
		b := segment.AppendRecord(nil, &r)
		if first == nil {
			first = b
			continue
		}
		if !bytes.Equal(b, first) {
			t.Fatalf("round %d: equal records encoded differently", round)
		}
	}
	// And the keys appear in ascending order in the encoding.
	dec := msgpack.NewDecoder(bytes.NewReader(first))
	if n, err := dec.DecodeArrayLen(); err != nil || n != 15 {
		t.Fatalf("DecodeArrayLen = %d, %v", n, err)
	}
	for range 13 {
		if err := dec.Skip(); err != nil {
			t.Fatal(err)
		}
	}
	n, err := dec.DecodeMapLen()
	if err != nil || n != len(keys) {
		t.Fatalf("DecodeMapLen = %d, %v", n, err)
	}
	prev := ""
	for i := range n {
		k, err := dec.DecodeString()
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && k <= prev {
			t.Fatalf("metadata key %q written after %q", k, prev)
		}
		prev = k
		if err := dec.Skip(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSortedKeys(t *testing.T) {
	if got := segment.SortedKeys(nil); got != nil {
		t.Errorf("SortedKeys(nil) = %v, want nil", got)
	}
	got := segment.SortedKeys(map[string]string{"b": "", "a": "", "c": "", "": ""})
	if strings.Join(got, ",") != ",a,b,c" {
		t.Errorf("SortedKeys = %q", got)
	}
}

func TestIsSystemKind(t *testing.T) {
	tests := []struct {
		kind uint16
		want bool
	}{
		{0x0000, true},
		{segment.KindBatchBegin, true},
		{segment.KindBatchCommit, true},
		{0x0FFF, true},
		{0x1000, false},
		{0xD001, false},
		{0xFFFF, false},
	}
	for _, tt := range tests {
		if got := segment.IsSystemKind(tt.kind); got != tt.want {
			t.Errorf("IsSystemKind(%#04x) = %v, want %v", tt.kind, got, tt.want)
		}
		r := segment.Record{Kind: tt.kind}
		if got := r.IsMarker(); got != tt.want {
			t.Errorf("Record{Kind: %#04x}.IsMarker() = %v, want %v", tt.kind, got, tt.want)
		}
	}
}
