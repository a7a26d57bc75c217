package natsstore

import (
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak/internal/ids"
)

// idSource makes UUIDv7 event ids that strictly increase within this
// client, also when the clock steps back. Ids of different clients are
// unique but not ordered with each other: lookups by id go through a map.
type idSource struct {
	mu  sync.Mutex
	gen ids.Generator
}

func (g *idSource) next(now time.Time) uuid.UUID {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gen.Next(now)
}
