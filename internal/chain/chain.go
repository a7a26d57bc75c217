// Package chain computes batpak's event hashes, the links of each stream's
// hash chain. Every backend hashes with it, so a hash computed by one
// verifies in another; docs/format.md gives the bytes.
package chain

import (
	"encoding/binary"
	"maps"
	"slices"

	"lukechampine.com/blake3"
)

// domain starts every hashed header, so a batpak event hash can never be
// confused with the hash of other data.
const domain = "batpak/event/v1\x00"

// Input is what an event's hash covers: everything about the event except
// its global sequence and its own hash.
type Input struct {
	Entity, Scope string
	Version       uint64
	Kind, Flags   uint16
	Timestamp     int64 // Unix microseconds
	ID            [16]byte
	Correlation   [16]byte
	Causation     [16]byte
	PrevHash      [32]byte
	Metadata      map[string]string
	Payload       []byte
}

// Hasher computes event hashes: BLAKE3 over the canonical header bytes
// (which include the previous hash of the stream) followed by the payload.
// It reuses its buffers and is not safe for concurrent use.
type Hasher struct {
	h   *blake3.Hasher
	buf []byte
}

// New returns a hasher.
func New() *Hasher { return &Hasher{h: blake3.New(32, nil)} }

// Sum returns the hash of in.
func (c *Hasher) Sum(in *Input) [32]byte {
	b := append(c.buf[:0], domain...)
	b = appendLenString(b, in.Entity)
	b = appendLenString(b, in.Scope)
	b = binary.BigEndian.AppendUint64(b, in.Version)
	b = binary.BigEndian.AppendUint16(b, in.Kind)
	b = binary.BigEndian.AppendUint16(b, in.Flags)
	b = binary.BigEndian.AppendUint64(b, uint64(in.Timestamp))
	b = append(b, in.ID[:]...)
	b = append(b, in.Correlation[:]...)
	b = append(b, in.Causation[:]...)
	b = append(b, in.PrevHash[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(in.Metadata)))
	if len(in.Metadata) > 0 {
		for _, k := range slices.Sorted(maps.Keys(in.Metadata)) {
			b = appendLenString(b, k)
			b = appendLenString(b, in.Metadata[k])
		}
	}
	b = binary.BigEndian.AppendUint64(b, uint64(len(in.Payload)))
	c.buf = b
	c.h.Reset()
	_, _ = c.h.Write(b)
	_, _ = c.h.Write(in.Payload)
	var out [32]byte
	c.h.Sum(out[:0])
	return out
}

func appendLenString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}
