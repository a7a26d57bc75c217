package segment

import (
	"encoding/binary"
	"fmt"
)

const (
	checkpointVersion = 1
	checkpointHeader  = 4 + 2 + 8 + 4 + 8
)

var checkpointMagic = [4]byte{'B', 'P', 'C', 'K'}

// Checkpoint is the decoded content of a checkpoint file: the index of every
// event up to LastSeq, whose frames end in segment Segment at FrameEnd.
type Checkpoint struct {
	LastSeq  uint64
	Segment  uint32
	FrameEnd uint64
	Index    *Index
}

// EncodeCheckpoint returns the bytes of a checkpoint file:
//
//	"BPCK" | version u16 | last seq u64 | segment u32 | frame end u64 |
//	index (AppendIndex) | CRC-32C of everything before u32
func EncodeCheckpoint(c *Checkpoint) []byte {
	b := append([]byte(nil), checkpointMagic[:]...)
	b = binary.BigEndian.AppendUint16(b, checkpointVersion)
	b = binary.BigEndian.AppendUint64(b, c.LastSeq)
	b = binary.BigEndian.AppendUint32(b, c.Segment)
	b = binary.BigEndian.AppendUint64(b, c.FrameEnd)
	b = AppendIndex(b, c.Index)
	return binary.BigEndian.AppendUint32(b, Checksum(b))
}

// DecodeCheckpoint checks and decodes a checkpoint file. Damage returns an
// error matching [ErrCorrupt]; the caller then ignores the checkpoint.
func DecodeCheckpoint(b []byte) (*Checkpoint, error) {
	bad := func(format string, args ...any) error {
		return &CorruptError{Path: "checkpoint", Reason: fmt.Sprintf(format, args...)}
	}
	if len(b) < checkpointHeader+4 {
		return nil, bad("%d bytes is too short", len(b))
	}
	if [4]byte(b[:4]) != checkpointMagic {
		return nil, bad("bad magic")
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if Checksum(body) != sum {
		return nil, bad("checksum mismatch")
	}
	if v := binary.BigEndian.Uint16(b[4:6]); v != checkpointVersion {
		return nil, fmt.Errorf("%w: checkpoint format %d", ErrUnsupportedVersion, v)
	}
	c := &Checkpoint{
		LastSeq:  binary.BigEndian.Uint64(b[6:14]),
		Segment:  binary.BigEndian.Uint32(b[14:18]),
		FrameEnd: binary.BigEndian.Uint64(b[18:26]),
	}
	ix, err := DecodeIndex(body[checkpointHeader:])
	if err != nil {
		return nil, bad("%v", err)
	}
	c.Index = ix
	if uint64(len(ix.Entries)) != c.LastSeq {
		return nil, bad("%d entries for last sequence %d", len(ix.Entries), c.LastSeq)
	}
	for i := range ix.Entries {
		if ix.Entries[i].Seq != uint64(i+1) {
			return nil, bad("entry %d has sequence %d", i, ix.Entries[i].Seq)
		}
	}
	return c, nil
}
