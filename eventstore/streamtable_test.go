package eventstore

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestStreamTable adds streams with addNew and add, with whole hashes and
// with hashes cut to a few bits so that most of them collide, and checks
// that every stream is found by its id, that no other id is, and that
// addNew refuses an id already in the table.
func TestStreamTable(t *testing.T) {
	for _, mask := range []uint64{^uint64(0), 0x3, 0} {
		t.Run(fmt.Sprintf("mask=%#x", mask), func(t *testing.T) {
			seed := rand.Uint64()
			r := rand.New(rand.NewPCG(seed, 0))
			tab := newStreamTable(0)
			tab.mask = mask
			var streams []*stream
			in := make(map[streamID]uint32)
			for range 300 {
				id := streamID{scope: fmt.Sprint("s", r.IntN(3)), entity: fmt.Sprint("e", r.IntN(150))}
				i := uint32(len(streams))
				streams = append(streams, &stream{entity: id.entity, scope: id.scope})
				_, dup := in[id]
				if r.IntN(2) == 0 && !dup {
					tab.add(id, i)
				} else if tab.addNew(streams, id, i) == dup {
					t.Fatalf("seed %d: addNew(%v) = %v with the id in the table: %v", seed, id, !dup, dup)
				}
				if dup {
					streams = streams[:i]
					continue
				}
				in[id] = i
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
