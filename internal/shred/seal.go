package shred

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

// A sealed payload: sealVersion u8 | nonce (12) | AES-256-GCM ciphertext
// and tag (16). The additional data binds it to its subject and kind, so
// a sealed payload moved to another subject or kind does not open.
const (
	sealVersion byte = 1
	nonceSize        = 12
	// Overhead is what sealing adds to a payload.
	Overhead = 1 + nonceSize + 16
)

var errSealed = errors.New("not a sealed payload of this format")

// additional returns the additional authenticated data of a payload of
// subject s and kind k.
func additional(s batpak.Subject, k kind.Kind) []byte {
	b := []byte("batpak/seal/v1\x00")
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.Scope)))
	b = append(b, s.Scope...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.ID)))
	b = append(b, s.ID...)
	return binary.BigEndian.AppendUint16(b, uint16(k))
}

// AEAD returns the AES-256-GCM of key; a keyring keeps one per key, so
// the key schedule is computed once, not per payload.
func AEAD(key *[KeySize]byte) cipher.AEAD {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic(err) // a 32-byte key never fails
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return g
}

// Seal returns payload sealed with key for subject s and kind k.
func Seal(key *[KeySize]byte, s batpak.Subject, k kind.Kind, payload []byte) ([]byte, error) {
	return SealWith(AEAD(key), s, k, payload)
}

// SealWith is Seal with the key's AEAD.
func SealWith(g cipher.AEAD, s batpak.Subject, k kind.Kind, payload []byte) ([]byte, error) {
	out := make([]byte, 1+nonceSize, Overhead+len(payload))
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return g.Seal(out, out[1:1+nonceSize], payload, additional(s, k)), nil
}

// Open returns the payload sealed in sealed, or an error if it is not a
// sealed payload of this format, of subject s and kind k, under key.
func Open(key *[KeySize]byte, s batpak.Subject, k kind.Kind, sealed []byte) ([]byte, error) {
	return OpenWith(AEAD(key), s, k, sealed)
}

// OpenWith is Open with the key's AEAD.
func OpenWith(g cipher.AEAD, s batpak.Subject, k kind.Kind, sealed []byte) ([]byte, error) {
	if len(sealed) < Overhead || sealed[0] != sealVersion {
		return nil, errSealed
	}
	return g.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], additional(s, k))
}
