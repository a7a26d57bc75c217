package projection

import (
	"context"
	"iter"
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/batpak-go/batpak"
)

// Folder is implemented by a pointer to a per-stream view: it folds one
// decoded event (a registered type, or msgpack.RawMessage) into the view.
type Folder interface {
	Apply(event any)
}

// StreamSource is what Project and Cache read.
type StreamSource interface {
	ReadStream(ctx context.Context, coord batpak.Coordinate, from uint64, opts ...batpak.ReadOption) iter.Seq2[batpak.Record, error]
	StreamVersion(coord batpak.Coordinate) uint64
}

type folder[S any] interface {
	*S
	Folder
}

// Project folds the whole stream coord into a new S and returns it with
// the stream version it reflects.
func Project[S any, PS folder[S]](ctx context.Context, src StreamSource, reg *batpak.Registry, coord batpak.Coordinate) (*S, uint64, error) {
	s := new(S)
	v, err := foldFrom[S, PS](ctx, src, reg, coord, s, 0)
	return s, v, err
}

func foldFrom[S any, PS folder[S]](ctx context.Context, src StreamSource, reg *batpak.Registry, coord batpak.Coordinate, s *S, version uint64) (uint64, error) {
	for rec, err := range src.ReadStream(ctx, coord, version+1) {
		if err != nil {
			return version, err
		}
		ev, err := reg.Decode(&rec)
		if err != nil {
			return version, err
		}
		PS(s).Apply(ev)
		version = rec.Version
	}
	return version, nil
}

// Cache keeps folded views per stream and refreshes one only when its
// stream version moved, folding just the new events. Views it returns are
// never modified afterwards (an update folds into a copy), so callers may
// keep them, but must not modify them. S must round-trip through msgpack.
type Cache[S any, PS folder[S]] struct {
	src StreamSource
	reg *batpak.Registry
	mu  sync.Mutex
	m   map[batpak.Coordinate]cachedView[S]
}

type cachedView[S any] struct {
	state   *S
	version uint64
}

// NewCache returns an empty cache over src.
func NewCache[S any, PS folder[S]](src StreamSource, reg *batpak.Registry) *Cache[S, PS] {
	return &Cache[S, PS]{src: src, reg: reg, m: make(map[batpak.Coordinate]cachedView[S])}
}

// Get returns the view of the stream coord at its current version.
func (c *Cache[S, PS]) Get(ctx context.Context, coord batpak.Coordinate) (*S, uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cv, ok := c.m[coord]
	current := c.src.StreamVersion(coord)
	if ok && cv.version == current {
		return cv.state, cv.version, nil
	}
	next := new(S)
	var from uint64
	if ok && cv.version < current {
		b, err := msgpack.Marshal(cv.state)
		if err == nil && msgpack.Unmarshal(b, next) == nil {
			from = cv.version
		} else {
			next = new(S)
		}
	}
	v, err := foldFrom[S, PS](ctx, c.src, c.reg, coord, next, from)
	if err != nil {
		return nil, 0, err
	}
	c.m[coord] = cachedView[S]{state: next, version: v}
	return next, v, nil
}

// Forget drops the view of the stream coord.
func (c *Cache[S, PS]) Forget(coord batpak.Coordinate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, coord)
}
