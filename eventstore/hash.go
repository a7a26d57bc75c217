package eventstore

import (
	"encoding/binary"

	"lukechampine.com/blake3"

	"github.com/batpak-go/batpak/segment"
)

// hashDomain starts every hashed header, so a batpak event hash can never be
// confused with the hash of other data.
const hashDomain = "batpak/event/v1\x00"

// ChainHasher computes event hashes: BLAKE3 over the canonical header bytes
// (which include the previous hash of the stream) followed by the payload;
// docs/format.md gives the bytes. Other backends use it to build the same
// chains. It reuses its buffers and is not safe for concurrent use.
type ChainHasher struct {
	h   *blake3.Hasher
	buf []byte
}

// NewChainHasher returns a hasher.
func NewChainHasher() *ChainHasher { return &ChainHasher{h: blake3.New(32, nil)} }

// Sum returns the hash of r with r.PrevHash as the chain link (r.Hash and
// r.Seq are not part of it).
func (c *ChainHasher) Sum(r *segment.Record) [32]byte {
	b := append(c.buf[:0], hashDomain...)
	b = appendLenString(b, r.Entity)
	b = appendLenString(b, r.Scope)
	b = binary.BigEndian.AppendUint64(b, r.Version)
	b = binary.BigEndian.AppendUint16(b, r.Kind)
	b = binary.BigEndian.AppendUint16(b, r.Flags)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Timestamp))
	b = append(b, r.ID[:]...)
	b = append(b, r.Correlation[:]...)
	b = append(b, r.Causation[:]...)
	b = append(b, r.PrevHash[:]...)
	keys := segment.SortedKeys(r.Metadata)
	b = binary.BigEndian.AppendUint32(b, uint32(len(keys)))
	for _, k := range keys {
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
