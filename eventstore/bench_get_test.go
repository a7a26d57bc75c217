package eventstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
)

// BenchmarkGet looks events up by id, in random order, in a store of
// 200,000 events (the index keeps no ids: Get binary searches the frames),
// then by an id the store does not hold.
func BenchmarkGet(b *testing.B) {
	s := openBench(b, eventstore.WithSyncMode(eventstore.SyncNone))
	fill(b, s, 2000, 100)
	ctx := context.Background()
	var ids []uuid.UUID
	for rec, err := range s.ReadAll(ctx, 0) {
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	b.Run("found", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			id := ids[(i*7919)%len(ids)]
			if rec, err := s.Get(ctx, id); err != nil || rec.ID != id {
				b.Fatalf("Get(%s): %v", id, err)
			}
		}
	})
	b.Run("absent", func(b *testing.B) {
		absent := uuid.Must(uuid.NewV7())
		for b.Loop() {
			if _, err := s.Get(ctx, absent); !errors.Is(err, batpak.ErrNotFound) {
				b.Fatalf("Get of an id the store does not hold: %v", err)
			}
		}
	})
}
