package memstore

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"time"

	"github.com/google/uuid"
)

// This file is a copy of the embedded store's id generator (eventstore's
// IDGenerator), so event ids look and sort alike in every backend. It is
// to move to a shared internal package.

// idGenerator makes UUIDv7 event ids from the store's clock that strictly
// increase, also when the clock steps back, so ids sort like global
// sequences. It is not safe for concurrent use: the store's write lock
// guards it.
type idGenerator struct {
	last uuid.UUID
}

// next returns a new id, later than every id returned before.
func (g *idGenerator) next(now time.Time) uuid.UUID {
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
