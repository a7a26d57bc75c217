package shred

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

var ann = batpak.Subject{Scope: "bank", ID: "customer:ann"}

func TestEntryRoundTrip(t *testing.T) {
	key := &Entry{Subject: ann}
	copy(key.Key[:], bytes.Repeat([]byte{7}, KeySize))
	for _, e := range []*Entry{key, {Subject: ann, Forgotten: true}} {
		got, err := Unmarshal(Marshal(e))
		if err != nil || *got != *e {
			t.Fatalf("round trip of %+v: %+v, %v", e, got, err)
		}
	}
}

func TestUnmarshalRefuses(t *testing.T) {
	good := Marshal(&Entry{Subject: ann})
	reseal := func(edit func([]byte) []byte) []byte {
		b := edit(append([]byte(nil), good[:len(good)-4]...))
		return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	}
	tests := []struct {
		name   string
		b      []byte
		target error
	}{
		{"empty", nil, ErrCorrupt},
		{"cut", good[:len(good)-1], ErrCorrupt},
		{"a flipped key bit", func() []byte { b := append([]byte(nil), good...); b[len(b)-6] ^= 1; return b }(), ErrCorrupt},
		{"another version", reseal(func(b []byte) []byte { b[5] = 2; return b }), ErrUnsupportedVersion},
		{"an unknown state", reseal(func(b []byte) []byte { b[6] = 3; return b }), ErrCorrupt},
		{"a tombstone with a key", reseal(func(b []byte) []byte { b[6] = stateGone; return b }), ErrCorrupt},
		{"a key cut short", reseal(func(b []byte) []byte { return b[:len(b)-1] }), ErrCorrupt},
		{"an empty subject", Marshal(&Entry{Subject: batpak.Subject{Scope: "bank"}}), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Unmarshal(tt.b); !errors.Is(err, tt.target) {
				t.Fatalf("Unmarshal: %v, want %v", err, tt.target)
			}
		})
	}
}

func TestSealOpen(t *testing.T) {
	var key, other [KeySize]byte
	other[0] = 1
	k := kind.Custom(1, 1)
	sealed, err := Seal(&key, ann, k, []byte("Ann"))
	if err != nil || len(sealed) != 3+Overhead {
		t.Fatalf("Seal: %d bytes, %v", len(sealed), err)
	}
	if p, err := Open(&key, ann, k, sealed); err != nil || string(p) != "Ann" {
		t.Fatalf("Open: %q, %v", p, err)
	}
	bob := batpak.Subject{Scope: "bank", ID: "customer:bob"}
	for name, open := range map[string]func() ([]byte, error){
		"another key":     func() ([]byte, error) { return Open(&other, ann, k, sealed) },
		"another subject": func() ([]byte, error) { return Open(&key, bob, k, sealed) },
		"another kind":    func() ([]byte, error) { return Open(&key, ann, kind.Custom(1, 2), sealed) },
		"cut":             func() ([]byte, error) { return Open(&key, ann, k, sealed[:len(sealed)-1]) },
		"not sealed":      func() ([]byte, error) { return Open(&key, ann, k, []byte{0x91, 1}) },
	} {
		if _, err := open(); err == nil {
			t.Errorf("%s: opens", name)
		}
	}
}

func TestKeyring(t *testing.T) {
	ctx := context.Background()
	ks := NewMemoryKeys()
	kr := NewKeyring(ks, true)
	k := kind.Custom(1, 1)
	sealed, meta, err := kr.Seal(ctx, ann.Scope, ann.ID, k, []byte("Ann"), nil, 1<<20)
	if err != nil || meta[batpak.MetaSubject] != ann.ID {
		t.Fatalf("Seal: %v, %v", meta, err)
	}
	rec := batpak.Record{Coordinate: batpak.Coordinate{Entity: "c", Scope: ann.Scope}, Kind: k, Metadata: meta, Payload: sealed}
	// Another keyring over the same store opens it; one over an empty
	// store reports the key lost.
	for _, tt := range []struct {
		kr   *Keyring
		want error
	}{{NewKeyring(ks, false), nil}, {NewKeyring(NewMemoryKeys(), true), batpak.ErrKeyMissing}} {
		r := rec
		if err := tt.kr.Open(ctx, &r); !errors.Is(err, tt.want) || (err == nil && string(r.Payload) != "Ann") {
			t.Fatalf("Open: %q, %v; want %v", r.Payload, err, tt.want)
		}
	}
	if err := kr.Forget(ctx, ann); err != nil {
		t.Fatal(err)
	}
	for _, kr := range []*Keyring{kr, NewKeyring(ks, true)} {
		r := rec
		if err := kr.Open(ctx, &r); err != nil || !r.Erased || r.Payload != nil {
			t.Fatalf("Open after Forget: %+v, %v", r, err)
		}
		if _, _, err := kr.Seal(ctx, ann.Scope, ann.ID, k, nil, nil, 1<<20); !errors.Is(err, batpak.ErrForgotten) {
			t.Fatalf("Seal after Forget: %v", err)
		}
	}
	if _, _, err := kr.Seal(ctx, "bank", "bob", k, make([]byte, 100), nil, 100); !errors.Is(err, batpak.ErrPayloadTooLarge) {
		t.Fatalf("Seal above the limit: %v", err)
	}
}

// FuzzUnmarshal: no input panics the key entry decoder, and what decodes
// encodes back to the same bytes.
func FuzzUnmarshal(f *testing.F) {
	f.Add(Marshal(&Entry{Subject: ann}))
	f.Add(Marshal(&Entry{Subject: ann, Forgotten: true}))
	f.Add([]byte("BPKY"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Unmarshal(b)
		if err != nil {
			return
		}
		if again := Marshal(e); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
	})
}

// FuzzOpen: no sealed payload panics Open.
func FuzzOpen(f *testing.F) {
	var key [KeySize]byte
	sealed, _ := Seal(&key, ann, kind.Custom(1, 1), []byte("Ann"))
	f.Add(sealed)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Open(&key, ann, kind.Custom(1, 1), b)
	})
}

// BenchmarkSealOpen measures what sealing adds to an append and opening
// to a read, for a 128-byte payload.
func BenchmarkSealOpen(b *testing.B) {
	var key [KeySize]byte
	payload := bytes.Repeat([]byte{'x'}, 128)
	k := kind.Custom(1, 1)
	sealed, _ := Seal(&key, ann, k, payload)
	b.Run("seal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Seal(&key, ann, k, payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Open(&key, ann, k, sealed); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkKeyring measures sealing and opening through a keyring, which
// keeps each key's cipher: what an append and a read of a sealed event
// pay, for a 128-byte payload.
func BenchmarkKeyring(b *testing.B) {
	ctx := context.Background()
	kr := NewKeyring(NewMemoryKeys(), true)
	payload := bytes.Repeat([]byte{'x'}, 128)
	k := kind.Custom(1, 1)
	sealed, meta, err := kr.Seal(ctx, ann.Scope, ann.ID, k, payload, nil, 1<<20)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("seal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := kr.Seal(ctx, ann.Scope, ann.ID, k, payload, nil, 1<<20); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open", func(b *testing.B) {
		b.ReportAllocs()
		rec := batpak.Record{Coordinate: batpak.Coordinate{Entity: "e", Scope: ann.Scope}, Kind: k, Metadata: meta}
		for b.Loop() {
			rec.Payload = sealed
			if err := kr.Open(ctx, &rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}
