package natsstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/google/uuid"
)

// testBlock returns a block of n entries from first with a mix of what an
// index holds: several entities and scopes, requests of one and of
// several events (keyed or not), correlation and causation ids, and
// skipped messages between requests (on a stream's subject or not).
func testBlock(seed uint64, first, span uint64, n int) *ckBlock {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := &ckBlock{created: 1_700_000_000_123_456_789, first: first, span: span, entries: make([]ckEntry, n)}
	uid := func() uuid.UUID {
		var u uuid.UUID
		for i := range u {
			u[i] = byte(rng.Uint32())
		}
		return u
	}
	ts := int64(1_700_000_000_000_000)
	left := 0
	var corr uuid.UUID
	for i := range b.entries {
		e := &b.entries[i]
		if left == 0 && rng.IntN(6) == 0 {
			e.skipped = true
			if rng.IntN(2) == 0 {
				e.entity, e.scope = fmt.Sprintf("account:%d", rng.IntN(7)), "bank:eu"
			}
			continue
		}
		e.entity = fmt.Sprintf("account:%d", rng.IntN(7))
		e.scope = []string{"bank:eu", "bank:us", "ünï code"}[rng.IntN(3)]
		e.id = uid()
		ts += int64(rng.IntN(2000)) - 100 // clocks step back too
		e.ts = ts
		e.kind = uint16(rng.Uint32())
		for j := range e.hash {
			e.hash[j] = byte(rng.Uint32())
		}
		if left == 0 {
			left = 1 + rng.IntN(4)
			e.parts = uint32(left)
			corr = e.id
			if rng.IntN(3) == 0 {
				corr = uid() // joins another correlation group
			}
			if rng.IntN(2) == 0 {
				e.key, e.hasKey = fmt.Sprintf("key-%d", i), true
			}
			if rng.IntN(4) == 0 {
				e.key = "" // an empty key is still a key
			}
		}
		left--
		e.corr = corr
		if rng.IntN(3) == 0 {
			e.cause = uid()
		}
	}
	return b
}

// TestCheckpointChecksum: blocks are checked with CRC-32C (Castagnoli),
// the CRC of the embedded store's frames, whose check value this is.
func TestCheckpointChecksum(t *testing.T) {
	if got := ckChecksum([]byte("123456789")); got != 0xE3069283 {
		t.Fatalf("CRC-32C of the check string is %#x, want 0xE3069283", got)
	}
}

func TestCheckpointBlockRoundTrip(t *testing.T) {
	for _, tc := range []struct{ first, span uint64 }{{1, ckBlockEvents}, {1 + 3*ckBlockEvents, ckBlockEvents}, {101, 100}, {1, 1}} {
		for _, n := range []int{1, int(min(tc.span, 1000))} {
			b := testBlock(uint64(n), tc.first, tc.span, n)
			data := encodeCheckpointBlock(b)
			got, err := decodeCheckpointBlock(data)
			if err != nil {
				t.Fatalf("first %d, %d entries: %v", tc.first, n, err)
			}
			if !reflect.DeepEqual(got, b) {
				t.Fatalf("first %d, %d entries: decoded block differs", tc.first, n)
			}
		}
	}
	b := testBlock(9, 1, ckBlockEvents, 1000)
	if size := len(encodeCheckpointBlock(b)); size > 1000*110 {
		t.Errorf("1,000 entries take %d bytes", size)
	}
}

// TestCheckpointBlockDamage: any changed byte, and any cut, is found.
func TestCheckpointBlockDamage(t *testing.T) {
	data := encodeCheckpointBlock(testBlock(3, 1, 100, 50))
	for i := range data {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(data)
			bad[i] ^= bit
			if _, err := decodeCheckpointBlock(bad); !errors.Is(err, errCheckpointCorrupt) {
				t.Fatalf("byte %d ^ %#x: %v", i, bit, err)
			}
		}
	}
	for n := range len(data) {
		if _, err := decodeCheckpointBlock(data[:n]); !errors.Is(err, errCheckpointCorrupt) {
			t.Fatalf("cut at %d: %v", n, err)
		}
	}
}

// TestCheckpointBlockRefuses: blocks with a valid CRC but impossible
// contents are refused, without allocating what their counts claim.
func TestCheckpointBlockRefuses(t *testing.T) {
	good := encodeCheckpointBlock(testBlock(4, 1, 100, 10))
	for name, mutate := range map[string]func(b []byte) []byte{
		"format":           func(b []byte) []byte { binary.BigEndian.PutUint16(b[4:], ckFormat+1); return b },
		"flags":            func(b []byte) []byte { binary.BigEndian.PutUint16(b[6:], 1); return b },
		"first 0":          func(b []byte) []byte { binary.BigEndian.PutUint64(b[16:], 0); return b },
		"first off span":   func(b []byte) []byte { binary.BigEndian.PutUint64(b[16:], 50); return b },
		"span 0":           func(b []byte) []byte { binary.BigEndian.PutUint32(b[24:], 0); return b },
		"huge span":        func(b []byte) []byte { binary.BigEndian.PutUint32(b[24:], ckMaxSpan+1); return b },
		"count over span":  func(b []byte) []byte { binary.BigEndian.PutUint32(b[28:], 101); return b },
		"huge count":       func(b []byte) []byte { binary.BigEndian.PutUint32(b[28:], 1<<31); return b },
		"huge string list": func(b []byte) []byte { binary.BigEndian.PutUint32(b[32:], 1<<31); return b },
		"body length":      func(b []byte) []byte { binary.BigEndian.PutUint32(b[36:], 7); return b },
		"unknown entry flag": func(b []byte) []byte {
			// The first entry follows the string table: find it by
			// decoding the table's lengths.
			r := ckReader{b: b[ckHeadSize:]}
			for range binary.BigEndian.Uint32(b[32:]) {
				r.bytes(r.uvarint())
			}
			b[len(b)-len(r.b)] |= 0x80
			return b
		},
	} {
		bad := resealBlock(mutate(bytes.Clone(good)))
		if _, err := decodeCheckpointBlock(bad); !errors.Is(err, errCheckpointCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// resealBlock returns data with its trailing CRC made right, so that a
// fuzzed block reaches the decoder's other checks.
func resealBlock(data []byte) []byte {
	if len(data) < 4 {
		return data
	}
	b := bytes.Clone(data)
	n := len(b) - 4
	binary.BigEndian.PutUint32(b[n:], ckChecksum(b[:n]))
	return b
}

// FuzzCheckpointBlock: decoding never panics and never allocates more
// than the input justifies, whether the CRC is right or not; what decodes
// encodes to a block that decodes to the same entries. The seed corpus is
// in testdata/fuzz/FuzzCheckpointBlock.
//
//	go test -run '^$' -fuzz FuzzCheckpointBlock ./natsstore/
func FuzzCheckpointBlock(f *testing.F) {
	f.Add(encodeCheckpointBlock(testBlock(1, 1, 100, 1)))
	f.Add(encodeCheckpointBlock(testBlock(2, 201, 100, 37)))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, in := range [][]byte{data, resealBlock(data)} {
			b, err := decodeCheckpointBlock(in)
			if err != nil {
				if !errors.Is(err, errCheckpointCorrupt) {
					t.Fatalf("error %v does not match errCheckpointCorrupt", err)
				}
				continue
			}
			again, err := decodeCheckpointBlock(encodeCheckpointBlock(b))
			if err != nil {
				t.Fatalf("re-encoded block: %v", err)
			}
			if !reflect.DeepEqual(again, b) {
				t.Fatal("re-encoded block decodes to other entries")
			}
		}
	})
}
