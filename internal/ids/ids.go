// Package ids makes the event ids of every backend.
package ids

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"time"

	"github.com/google/uuid"
)

// Generator makes UUIDv7 event ids that strictly increase, also when the
// clock steps back, so ids sort like global sequences and a store can find
// an id by binary search. It is not safe for concurrent use: a store's
// writer owns one.
type Generator struct {
	last uuid.UUID
}

// Observe makes the next ids follow id (e.g. the newest id found on open).
func (g *Generator) Observe(id uuid.UUID) {
	if bytes.Compare(id[:], g.last[:]) > 0 {
		g.last = id
	}
}

// Next returns a new id, later than every id returned or observed before.
func (g *Generator) Next(now time.Time) uuid.UUID {
	var id uuid.UUID
	ms := uint64(max(now.UnixMilli(), 0))
	binary.BigEndian.PutUint16(id[4:6], uint16(ms))
	binary.BigEndian.PutUint32(id[0:4], uint32(ms>>16))
	_, _ = rand.Read(id[6:])
	id[6] = id[6]&0x0f | 0x70 // version 7
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	if bytes.Compare(id[:], g.last[:]) <= 0 {
		id = g.last
		incrementRandom(&id)
	}
	g.last = id
	return id
}

// incrementRandom adds one to the 62 random bits of a v7 id's last 8 bytes,
// carrying into rand_a (12 bits) and then into the timestamp.
func incrementRandom(id *uuid.UUID) {
	lo := binary.BigEndian.Uint64(id[8:]) & (1<<62 - 1)
	lo++
	if lo < 1<<62 {
		binary.BigEndian.PutUint64(id[8:], lo|2<<62)
		return
	}
	binary.BigEndian.PutUint64(id[8:], 2<<62)
	hi := binary.BigEndian.Uint64(id[:8])
	randA := hi & 0xfff
	if randA < 0xfff {
		hi++
	} else {
		hi = (hi>>16+1)<<16 | 0x7000
	}
	binary.BigEndian.PutUint64(id[:8], hi)
}
