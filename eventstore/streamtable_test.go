package eventstore

import (
	"hash/maphash"
	"testing"
)

// TestStreamTableCollision: a stream whose hash another stream holds is
// found by its whole id.
func TestStreamTableCollision(t *testing.T) {
	a := streamID{scope: "s", entity: "a"}
	streams := []*stream{{entity: "a", scope: "s"}, {entity: "b", scope: "s"}}
	tab := newStreamTable(2)
	tab.byHash[maphash.Comparable(tab.seed, a)] = 1 // b took a's hash first
	tab.add(a, 0)
	if i, ok := tab.find(streams, a); !ok || i != 0 {
		t.Fatalf("find(a) = %d, %v; want 0", i, ok)
	}
	if _, ok := tab.find(streams, streamID{scope: "t", entity: "a"}); ok {
		t.Fatal("found a stream that is not in the table")
	}
}
