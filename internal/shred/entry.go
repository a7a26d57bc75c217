// Package shred is crypto-shredding, shared by every backend: each data
// subject's payloads are sealed with the subject's own AES-256-GCM key,
// and forgetting the subject destroys the key, which leaves the sealed
// payloads unreadable for good while the events, their hashes (over the
// sealed bytes) and hash chains stay.
//
// A backend keeps one [Entry] per subject in its key store ([KeyStore]: a
// file per subject beside the segments, a key of a JetStream bucket, a
// map) and reads and writes them through a [Keyring]. An entry is a key or
// the mark of a Forget (a tombstone): a subject without an entry never
// had an event, so a sealed event whose subject has no entry is damage,
// never an erasure.
package shred

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/batpak-go/batpak"
)

// KeySize is the size of a subject's key: AES-256.
const KeySize = 32

// Entry is what a key store holds for one subject: its key, or the mark
// that it was forgotten.
type Entry struct {
	Subject   batpak.Subject
	Forgotten bool
	Key       [KeySize]byte // zero once forgotten
}

// The entry's bytes (docs/format.md, "Key files"):
//
//	"BPKY" | version u16 | state u8 (1 key, 2 forgotten) |
//	len u16 + scope | len u16 + subject | key (32, state 1 only) | CRC-32C u32 of all before it
const (
	entryMagic = "BPKY"
	// Version is the key entry format this build writes and reads.
	Version        = 1
	stateKey  byte = 1
	stateGone byte = 2
	maxEntry       = 4 + 2 + 1 + 2*(2+batpak.MaxCoordinateLen) + KeySize + 4
)

var (
	// ErrCorrupt matches an entry whose bytes fail their checks; it
	// matches [batpak.ErrCorrupt] too.
	ErrCorrupt = fmt.Errorf("%w: key entry", batpak.ErrCorrupt)
	// ErrUnsupportedVersion is returned for an entry of another format.
	ErrUnsupportedVersion = errors.New("shred: unsupported key entry format version")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Marshal returns the bytes of e.
func Marshal(e *Entry) []byte {
	b := make([]byte, 0, 4+2+1+4+len(e.Subject.Scope)+len(e.Subject.ID)+KeySize+4)
	b = append(b, entryMagic...)
	b = binary.BigEndian.AppendUint16(b, Version)
	if e.Forgotten {
		b = append(b, stateGone)
	} else {
		b = append(b, stateKey)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.Subject.Scope)))
	b = append(b, e.Subject.Scope...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.Subject.ID)))
	b = append(b, e.Subject.ID...)
	if !e.Forgotten {
		b = append(b, e.Key[:]...)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// Unmarshal decodes and checks entry bytes. Damage is an error matching
// [ErrCorrupt]; another format version, [ErrUnsupportedVersion].
func Unmarshal(b []byte) (*Entry, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	if len(b) < 4+2+1+2+2+4 || len(b) > maxEntry || string(b[:4]) != entryMagic {
		return nil, bad("not a key entry (%d bytes)", len(b))
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return nil, bad("checksum mismatch")
	}
	if v := binary.BigEndian.Uint16(b[4:6]); v != Version {
		return nil, fmt.Errorf("%w: key entry format %d (this build reads %d)", ErrUnsupportedVersion, v, Version)
	}
	e := &Entry{}
	switch b[6] {
	case stateKey:
	case stateGone:
		e.Forgotten = true
	default:
		return nil, bad("state %d", b[6])
	}
	rest := body[7:]
	str := func() (string, bool) {
		if len(rest) < 2 {
			return "", false
		}
		n := int(binary.BigEndian.Uint16(rest))
		if len(rest) < 2+n {
			return "", false
		}
		s := string(rest[2 : 2+n])
		rest = rest[2+n:]
		return s, true
	}
	var ok1, ok2 bool
	e.Subject.Scope, ok1 = str()
	e.Subject.ID, ok2 = str()
	if !ok1 || !ok2 {
		return nil, bad("cut short")
	}
	if err := e.Subject.Validate(); err != nil {
		return nil, bad("%v", err)
	}
	want := 0
	if !e.Forgotten {
		want = KeySize
	}
	if len(rest) != want {
		return nil, bad("%d bytes of key, want %d", len(rest), want)
	}
	copy(e.Key[:], rest)
	return e, nil
}

// Name returns the name of subject s in a key store: 32 hex digits of a
// hash of its scope and ID, so no subject can name a path or a key
// outside the store, and every subject has its own. The entry repeats
// the subject, so a read checks it got the right one.
func Name(s batpak.Subject) string {
	h := sha256.New()
	h.Write(binary.AppendUvarint(nil, uint64(len(s.Scope))))
	h.Write([]byte(s.Scope))
	h.Write([]byte(s.ID))
	return hex.EncodeToString(h.Sum(nil)[:16])
}
