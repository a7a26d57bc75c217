package memstore

import (
	"encoding/binary"
	"maps"
	"slices"

	"lukechampine.com/blake3"

	"github.com/batpak-go/batpak"
)

// This file is a copy of the embedded store's chain hash (eventstore's
// ChainHasher, docs/format.md "Event hash"), taking a batpak.Record: the
// same event hashes to the same value in every backend, so chains built
// here verify anywhere. It is to move to a shared internal package.

// hashDomain starts every hashed header, so a batpak event hash can never be
// confused with the hash of other data.
const hashDomain = "batpak/event/v1\x00"

// hasher computes event hashes: BLAKE3 over the canonical header bytes
// (which include the previous hash of the stream) followed by the payload.
// It reuses its buffers and is not safe for concurrent use.
type hasher struct {
	h   *blake3.Hasher
	buf []byte
}

func newHasher() *hasher { return &hasher{h: blake3.New(32, nil)} }

// sum returns the hash of r with r.PrevHash as the chain link (r.Hash and
// r.Sequence are not part of it). The memory store sets no flags.
func (c *hasher) sum(r *batpak.Record) [32]byte {
	const flags = 0
	b := append(c.buf[:0], hashDomain...)
	b = appendLenString(b, r.Coordinate.Entity)
	b = appendLenString(b, r.Coordinate.Scope)
	b = binary.BigEndian.AppendUint64(b, r.Version)
	b = binary.BigEndian.AppendUint16(b, uint16(r.Kind))
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Timestamp.UnixMicro()))
	b = append(b, r.ID[:]...)
	b = append(b, r.CorrelationID[:]...)
	b = append(b, r.CausationID[:]...)
	b = append(b, r.PrevHash[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.Metadata)))
	for _, k := range slices.Sorted(maps.Keys(r.Metadata)) {
		b = appendLenString(b, k)
		b = appendLenString(b, r.Metadata[k])
	}
	b = binary.BigEndian.AppendUint64(b, uint64(len(r.Payload)))
	c.buf = b
	c.h.Reset()
	_, _ = c.h.Write(b)
	_, _ = c.h.Write(r.Payload)
	var out [32]byte
	c.h.Sum(out[:0])
	return out
}

func appendLenString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}
