package chain_test

import (
	"encoding/hex"
	"testing"

	"github.com/batpak-go/batpak/internal/chain"
)

// The chain hash is part of the format (docs/format.md): these bytes must
// keep hashing to the same value with any BLAKE3 implementation, in every
// backend.
func TestChainHashGolden(t *testing.T) {
	in := chain.Input{
		Entity: "account:42", Scope: "bank", Version: 3, Kind: 0x1001, Flags: 0,
		Timestamp: 1_767_225_600_000_000,
		ID:        [16]byte{0x01, 0x9b, 0x77, 0x10, 0, 0, 0x70, 0, 0x80, 0, 0, 0, 0, 0, 0, 1},
		PrevHash:  [32]byte{0xaa, 0xbb},
		Metadata:  map[string]string{"actor": "alice", "reason": "test"},
		Payload:   []byte("\x82\xa6amount\xcd\x01\xf4\xa8currency\xa3EUR"),
	}
	in.Correlation = in.ID
	const want = "f8b6ced0a94d0727a58c36553e15829e546721cf59fdc4a33e4f1e286771760b"
	h := chain.New()
	if got := h.Sum(&in); hex.EncodeToString(got[:]) != want {
		t.Fatalf("chain hash %x, want %s", got, want)
	}
	// The hasher reuses its buffer: a different input, then the first again.
	other := in
	other.Version = 4
	if h.Sum(&other) == h.Sum(&in) {
		t.Fatal("two different events hash alike")
	}
	if got := h.Sum(&in); hex.EncodeToString(got[:]) != want {
		t.Fatalf("chain hash after reuse %x, want %s", got, want)
	}
}
