package memstore

import (
	"context"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/internal/chain"
	"github.com/batpak-go/batpak/kind"
)

// TestChainHashGolden: the embedded store's golden chain hash
// (eventstore's TestChainHashGolden, docs/format.md): the same event
// hashes to the same bytes in every backend.
func TestChainHashGolden(t *testing.T) {
	r := batpak.Record{
		Coordinate: batpak.Coordinate{Entity: "account:42", Scope: "bank"},
		Version:    3,
		Kind:       kind.Kind(0x1001),
		Timestamp:  time.UnixMicro(1_767_225_600_000_000),
		ID:         [16]byte{0x01, 0x9b, 0x77, 0x10, 0, 0, 0x70, 0, 0x80, 0, 0, 0, 0, 0, 0, 1},
		PrevHash:   [32]byte{0xaa, 0xbb},
		Metadata:   map[string]string{"actor": "alice", "reason": "test"},
		Payload:    []byte("\x82\xa6amount\xcd\x01\xf4\xa8currency\xa3EUR"),
		Sequence:   99, // not hashed
	}
	r.CorrelationID = r.ID
	const want = "f8b6ced0a94d0727a58c36553e15829e546721cf59fdc4a33e4f1e286771760b"
	h := chain.New()
	if got := sum(h, &r); hex.EncodeToString(got[:]) != want {
		t.Fatalf("chain hash %x, want %s", got, want)
	}
	// The hasher reuses its buffer: a second, different sum must not be
	// disturbed by the first, nor the first by the second.
	r2 := r
	r2.Metadata = nil
	if sum(h, &r2) == sum(h, &r) {
		t.Fatal("metadata is not covered by the hash")
	}
	if got := sum(h, &r); hex.EncodeToString(got[:]) != want {
		t.Fatalf("chain hash after another sum %x, want %s", got, want)
	}
}

// TestVerifyChainFindsDamage: VerifyChain names the first event whose
// version, link or content does not verify. Nothing outside the package
// can change a stored record; the test does it from inside.
func TestVerifyChainFindsDamage(t *testing.T) {
	ctx := context.Background()
	c := batpak.Coordinate{Entity: "acct", Scope: "t"}
	tests := []struct {
		name    string
		damage  func(r *batpak.Record)
		reason  string
		version uint64
	}{
		{"payload", func(r *batpak.Record) { r.Payload = []byte{0x01} }, "hash does not match the event's content", 2},
		{"metadata", func(r *batpak.Record) { r.Metadata = map[string]string{"x": "y"} }, "hash does not match the event's content", 2},
		{"link", func(r *batpak.Record) { r.PrevHash[0] ^= 1 }, "previous hash does not match the previous event", 2},
		{"version", func(r *batpak.Record) { r.Version = 7 }, "version out of order", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			defer s.Close()
			if _, err := s.Append(ctx, c, []batpak.Event{{Kind: kind.Custom(1, 1), Payload: 1}, {Kind: kind.Custom(1, 1), Payload: 2}, {Kind: kind.Custom(1, 1), Payload: 3}}); err != nil {
				t.Fatal(err)
			}
			if err := s.VerifyChain(ctx, c); err != nil {
				t.Fatalf("before damage: %v", err)
			}
			tc.damage(&s.log[1])
			err := s.VerifyChain(ctx, c)
			var ce *batpak.ChainError
			if !errors.As(err, &ce) || !errors.Is(err, batpak.ErrChainBroken) {
				t.Fatalf("VerifyChain: %v, want a *ChainError", err)
			}
			if ce.Version != tc.version || ce.Sequence != 2 || ce.Reason != tc.reason {
				t.Fatalf("VerifyChain: %+v, want version %d sequence 2: %s", *ce, tc.version, tc.reason)
			}
		})
	}
	s := New()
	if err := s.VerifyChain(ctx, c); err != nil {
		t.Fatalf("VerifyChain of an unknown stream: %v", err)
	}
}
