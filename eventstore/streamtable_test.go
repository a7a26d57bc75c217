package eventstore

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestStreamTable adds streams, with whole hashes and with hashes cut to a
// few bits so that most of them collide, and checks that every stream is
// found by its id, that no other id is, and that add returns the number of
// an id already in the table instead of adding it.
func TestStreamTable(t *testing.T) {
	for _, tc := range []struct {
		mask uint64
		size int // the table is made for
	}{{^uint64(0), 0}, {^uint64(0), 4000}, {0x3, 0}, {0, 0}} {
		mask := tc.mask
		t.Run(fmt.Sprintf("mask=%#x/size=%d", mask, tc.size), func(t *testing.T) {
			seed := rand.Uint64()
			r := rand.New(rand.NewPCG(seed, 0))
			tab := newStreamTable(tc.size)
			tab.mask = mask
			streams := &streamLog{scopes: []string{"s0", "s1", "s2"}}
			in := make(map[streamID]uint32)
			for range 3000 {
				sc := uint32(r.IntN(3))
				id := streamID{scope: streams.scopes[sc], entity: fmt.Sprint("e", r.IntN(1500))}
				i := streams.len()
				_, dup := in[id]
				if got, found := tab.add(streams, id, i); found != dup || dup && got != in[id] {
					t.Fatalf("seed %d: add(%v) = %d, %v; in the table: %v as %d", seed, id, got, found, dup, in[id])
				}
				if dup {
					continue
				}
				_, st := streams.push()
				st.entity, st.scope = id.entity, sc
				in[id] = i
				if len(in)%61 != 0 {
					continue
				}
				for id, want := range in {
					if got, ok := tab.find(streams, id); !ok || got != want {
						t.Fatalf("seed %d: find(%v) = %d, %v; want %d", seed, id, got, ok, want)
					}
				}
				if _, ok := tab.find(streams, streamID{scope: "t", entity: id.entity}); ok {
					t.Fatalf("seed %d: found a stream that is not in the table", seed)
				}
			}
		})
	}
}
