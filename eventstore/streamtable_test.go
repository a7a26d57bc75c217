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
		mask uint32
		size int // the table is made for
	}{{^uint32(0), 0}, {^uint32(0), 4000}, {0x3, 0}, {0, 0}} {
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
				st.setEntity(id.entity)
				st.scope = sc
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

// TestStreamTableLoad fills tables with load, as a checkpoint's open does,
// with whole and cut hashes and one to four workers: every stream is
// found, later adds find and add as in a table built by add, and a stream
// listed twice is reported as the later of its two listings.
func TestStreamTableLoad(t *testing.T) {
	for _, mask := range []uint32{^uint32(0), 0x3, 0} {
		for workers := 1; workers <= 4; workers++ {
			seed := rand.Uint64()
			r := rand.New(rand.NewPCG(seed, 0))
			tab := newStreamTable(0)
			tab.mask = mask
			streams := &streamLog{scopes: []string{"s0", "s1"}}
			seen := make(map[streamID]bool)
			for len(seen) < 2000 {
				id := streamID{scope: streams.scopes[r.IntN(2)], entity: fmt.Sprint("e", r.IntN(5000))}
				if seen[id] {
					continue
				}
				seen[id] = true
				_, st := streams.push()
				st.setEntity(id.entity)
				if id.scope == "s1" {
					st.scope = 1
				}
			}
			if dup, ok := tab.load(streams, tableSlotRuns(&tab, streams, workers), workers); !ok {
				t.Fatalf("seed %d, mask %#x: load reports stream %d twice", seed, mask, dup)
			}
			for j := range streams.len() {
				if got, ok := tab.find(streams, streams.id(streams.at(j))); !ok || got != j {
					t.Fatalf("seed %d, mask %#x, %d workers: stream %d found as %d, %v", seed, mask, workers, j, got, ok)
				}
			}
			// Adds after a load grow the parts as they fill.
			for k := range 500 {
				id := streamID{scope: "s0", entity: fmt.Sprint("new", k)}
				i := streams.len()
				if _, found := tab.add(streams, id, i); found {
					t.Fatalf("seed %d: new stream %v found", seed, id)
				}
				_, st := streams.push()
				st.setEntity(id.entity)
				if got, found := tab.add(streams, id, streams.len()); !found || got != i {
					t.Fatalf("seed %d: added stream %v not found (%d, %v)", seed, id, got, found)
				}
			}
		}
	}
	// A stream listed twice.
	tab := newStreamTable(0)
	streams := &streamLog{scopes: []string{"s"}}
	for _, e := range []string{"a", "b", "c", "b", "d"} {
		_, st := streams.push()
		st.setEntity(e)
	}
	if dup, ok := tab.load(streams, tableSlotRuns(&tab, streams, 2), 2); ok || dup != 3 {
		t.Fatalf("stream b listed twice: load = %d, %v; want 3, false", dup, ok)
	}
}

// BenchmarkStreamTableLoad fills a table of 2,000,000 streams with load,
// as the open of a checkpoint of that many streams does.
func BenchmarkStreamTableLoad(b *testing.B) {
	streams := &streamLog{scopes: []string{"s"}}
	streams.pushEmpty(2_000_000)
	tab := newStreamTable(0)
	for j := range streams.len() {
		streams.at(j).setEntity(fmt.Sprintf("acct:%08d", j))
	}
	for b.Loop() {
		b.StopTimer()
		runs := tableSlotRuns(&tab, streams, 2)
		b.StartTimer()
		if _, ok := tab.load(streams, runs, 2); !ok {
			b.Fatal("a stream listed twice")
		}
	}
}

// tableSlotRuns returns the slots of every stream of streams in n runs,
// as load takes them.
func tableSlotRuns(tab *streamTable, streams *streamLog, n int) []slotRun {
	slots := make([]tableSlot, streams.len())
	for j := range slots {
		slots[j] = tableSlot{num: uint32(j) + 1, hash: tab.hash(streams.id(streams.at(uint32(j))))}
	}
	runs := make([]slotRun, n)
	for k := range runs {
		runs[k] = newSlotRun(slots[len(slots)*k/n : len(slots)*(k+1)/n])
	}
	return runs
}
