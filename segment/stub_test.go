package segment_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/batpak-go/batpak/segment"
)

func sampleStubs(n int) []segment.Stub {
	out := make([]segment.Stub, n)
	for i := range out {
		out[i] = segment.Stub{Seq: uint64(100 + i), Entity: "acct:" + strings.Repeat("x", i%40), Scope: "s", Kind: 0x1002, Version: uint64(i + 1)}
		out[i].ID[15] = byte(i)
		out[i].PrevHash[0], out[i].Hash[0] = byte(i), byte(i+1)
		out[i].Timestamp = 1_700_000_000_000_000 + int64(i)
		if i%3 != 0 { // a root (its own correlation, zero causation) every third stub, else links
			out[i].Correlation[1], out[i].Causation[2] = byte(i), byte(i+2)
		} else {
			out[i].Correlation = out[i].ID
		}
	}
	return out
}

func TestStubsRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 15, 16, 300} {
		stubs := sampleStubs(n)
		b := segment.AppendStubs(nil, stubs)
		got, err := segment.DecodeStubs(b)
		if err != nil {
			t.Fatalf("%d stubs: %v", n, err)
		}
		if len(got) != n || (n > 0 && !reflect.DeepEqual(got, stubs)) {
			t.Fatalf("%d stubs did not round-trip", n)
		}
		var generic []any // any msgpack library reads it
		if err := msgpack.Unmarshal(b, &generic); err != nil || len(generic) != n {
			t.Fatalf("msgpack reads %d stubs as %d: %v", n, len(generic), err)
		}
	}
}

func TestDecodeStubsRejects(t *testing.T) {
	good := segment.AppendStubs(nil, sampleStubs(3))
	for i := range good {
		if _, err := segment.DecodeStubs(good[:i]); !errors.Is(err, segment.ErrCorrupt) {
			t.Fatalf("prefix %d: %v", i, err)
		}
	}
	if _, err := segment.DecodeStubs([]byte{0xdd, 0xff, 0xff, 0xff, 0xff}); !errors.Is(err, segment.ErrCorrupt) {
		t.Fatalf("hostile count: %v", err)
	}
	if _, err := segment.DecodeStubs(append(good, 0)); !errors.Is(err, segment.ErrCorrupt) {
		t.Fatalf("trailing byte: %v", err)
	}
}

func TestIndexDeletedStreams(t *testing.T) {
	ix := &segment.Index{Strings: []string{"a", "b"}, Deleted: []segment.StreamRef{{Entity: 1, Scope: 0}}}
	got, err := segment.DecodeIndex(segment.AppendIndex(nil, ix))
	if err != nil || !reflect.DeepEqual(got.Deleted, ix.Deleted) {
		t.Fatalf("deleted streams: %v, %v", got, err)
	}
	bad := segment.AppendIndex(nil, &segment.Index{Strings: []string{"a"}, Deleted: []segment.StreamRef{{Entity: 0, Scope: 7}}})
	if _, err := segment.DecodeIndex(bad); !errors.Is(err, segment.ErrCorrupt) {
		t.Fatalf("out-of-range deleted stream: %v", err)
	}
	empty := append(segment.AppendIndex(nil, &segment.Index{}), 0, 0, 0, 0)
	if _, err := segment.DecodeIndex(empty); !errors.Is(err, segment.ErrCorrupt) {
		t.Fatalf("non-canonical empty deleted table: %v", err)
	}
}

func FuzzDecodeStubs(f *testing.F) {
	f.Add(segment.AppendStubs(nil, sampleStubs(2)))
	f.Add(segment.AppendStubs(nil, nil))
	f.Add([]byte{0xdc, 0x00, 0x10})
	f.Fuzz(func(t *testing.T, b []byte) {
		stubs, err := segment.DecodeStubs(b)
		if err != nil {
			return
		}
		again, err := segment.DecodeStubs(segment.AppendStubs(nil, stubs))
		if err != nil || len(again) != len(stubs) || (len(stubs) > 0 && !reflect.DeepEqual(again, stubs)) {
			t.Fatalf("re-encoded stubs do not decode the same: %v", err)
		}
	})
}
