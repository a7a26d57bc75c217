package typecat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

// The catalog file (docs/format.md):
//
//	"BPCT" | version u16 | count u32 | entry* | CRC-32C u32 of all before it
//	entry = kind u16 | len u8 + name
//
// Entries are in ascending kind order, kinds and names unique.
const (
	magic = "BPCT"
	// Version is the catalog format this build writes and reads.
	Version  = 1
	headLen  = 4 + 2 + 4
	entryMin = 2 + 1 + 1
)

var (
	// ErrCorrupt matches a catalog whose bytes fail their checks; it
	// matches [batpak.ErrCorrupt] too.
	ErrCorrupt = fmt.Errorf("%w: event type catalog", batpak.ErrCorrupt)
	// ErrUnsupportedVersion is returned for a catalog of another format.
	ErrUnsupportedVersion = errors.New("typecat: unsupported catalog format version")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Marshal returns the file bytes of c.
func Marshal(c *Catalog) []byte {
	b := make([]byte, 0, headLen+c.Len()*24+4)
	b = append(b, magic...)
	b = binary.BigEndian.AppendUint16(b, Version)
	b = binary.BigEndian.AppendUint32(b, uint32(c.Len()))
	m := c.Map()
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b = binary.BigEndian.AppendUint16(b, uint16(k))
		b = append(b, byte(len(m[k])))
		b = append(b, m[k]...)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// Unmarshal decodes and checks catalog file bytes. Damage is an error
// matching [ErrCorrupt]; another format version, [ErrUnsupportedVersion].
func Unmarshal(b []byte) (*Catalog, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	if len(b) < headLen+4 || string(b[:4]) != magic {
		return nil, bad("no catalog header")
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, bad("checksum mismatch")
	}
	if v := binary.BigEndian.Uint16(b[4:6]); v != Version {
		return nil, fmt.Errorf("%w: catalog format %d (this build reads %d)", ErrUnsupportedVersion, v, Version)
	}
	n := binary.BigEndian.Uint32(b[6:10])
	rest := body[headLen:]
	if uint64(n)*entryMin > uint64(len(rest)) {
		return nil, bad("%d entries cannot fit in %d bytes", n, len(rest))
	}
	c := &Catalog{byKind: make(map[kind.Kind]string, n), byName: make(map[string]kind.Kind, n)}
	var prev kind.Kind
	for i := range n {
		if len(rest) < 3 {
			return nil, bad("entry %d is cut short", i)
		}
		k, l := kind.Kind(binary.BigEndian.Uint16(rest)), int(rest[2])
		if len(rest) < 3+l {
			return nil, bad("entry %d is cut short", i)
		}
		name := string(rest[3 : 3+l])
		rest = rest[3+l:]
		if i > 0 && k <= prev {
			return nil, bad("entry %d: kind %s out of order", i, k)
		}
		prev = k
		if _, err := c.Check(k, name); err != nil {
			return nil, bad("entry %d: %v", i, err)
		}
		c.byKind[k], c.byName[name] = name, k
	}
	if len(rest) != 0 {
		return nil, bad("%d bytes after the last entry", len(rest))
	}
	return c, nil
}
