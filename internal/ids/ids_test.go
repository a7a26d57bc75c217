package ids_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak/internal/ids"
)

// Ids increase strictly with every call, also when the clock steps back or
// stands still, and stay valid version 7 UUIDs.
func TestIDGeneratorMonotonic(t *testing.T) {
	var g ids.Generator
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := []time.Duration{0, 0, 0, -time.Hour, 0, time.Millisecond, -time.Minute}
	var last uuid.UUID
	for i := range 10_000 {
		id := g.Next(now.Add(clock[i%len(clock)]))
		if bytes.Compare(id[:], last[:]) <= 0 {
			t.Fatalf("id %d (%s) does not follow %s", i, id, last)
		}
		if id.Version() != 7 || id.Variant() != uuid.RFC4122 {
			t.Fatalf("id %s is not a v7 UUID", id)
		}
		last = id
	}
	future := uuid.Must(uuid.NewV7())
	future[0] = 0xff
	g.Observe(future)
	if id := g.Next(now); bytes.Compare(id[:], future[:]) <= 0 {
		t.Fatalf("after Observe(%s), Next = %s", future, id)
	}
}

// Ids carry fresh random bits: two generators given the same clock never
// hand out the same ids.
func TestIDGeneratorRandomBits(t *testing.T) {
	var a, b ids.Generator
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seen := make(map[uuid.UUID]bool)
	for i := range 1_000 {
		at := now.Add(time.Duration(i) * time.Millisecond)
		for _, id := range []uuid.UUID{a.Next(at), b.Next(at)} {
			if seen[id] {
				t.Fatalf("id %s handed out twice", id)
			}
			seen[id] = true
		}
	}
}
