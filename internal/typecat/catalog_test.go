package typecat

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"reflect"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

var (
	k1 = kind.Custom(1, 1)
	k2 = kind.Custom(1, 2)
)

func TestCheck(t *testing.T) {
	c := (*Catalog)(nil).With(Entry{k1, "bank.Opened"})
	tests := []struct {
		name   string
		k      kind.Kind
		typ    string
		isNew  bool
		target error
	}{
		{"known", k1, "bank.Opened", false, nil},
		{"new", k2, "bank.Deposited", true, nil},
		{"kind renamed", k1, "bank.AccountOpened", false, batpak.ErrTypeConflict},
		{"name moved", k2, "bank.Opened", false, batpak.ErrTypeConflict},
		{"system kind", kind.Kind(1), "sys", false, batpak.ErrReservedKind},
		{"bad name", k2, "has space", false, batpak.ErrInvalidTypeName},
		{"empty name", k2, "", false, batpak.ErrInvalidTypeName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isNew, err := c.Check(tt.k, tt.typ)
			if isNew != tt.isNew || !errors.Is(err, tt.target) || (tt.target == nil) != (err == nil) {
				t.Errorf("Check = %v, %v; want %v, %v", isNew, err, tt.isNew, tt.target)
			}
		})
	}
}

func TestAdditions(t *testing.T) {
	c := (*Catalog)(nil).With(Entry{k1, "a"})
	evs := []batpak.Event{{Kind: k1, Type: "a"}, {Kind: k2, Type: "b"}, {Kind: k2, Type: "b"}, {Kind: k2}}
	add, err := c.Additions(evs)
	if err != nil || !reflect.DeepEqual(add, []Entry{{k2, "b"}}) {
		t.Fatalf("Additions = %v, %v", add, err)
	}
	// Two events of one append that disagree with each other.
	_, err = c.Additions([]batpak.Event{{Kind: k2, Type: "b"}, {Kind: k2, Type: "c"}})
	if !errors.Is(err, batpak.ErrTypeConflict) {
		t.Fatalf("conflicting events: %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, c := range []*Catalog{nil, (*Catalog)(nil).With(Entry{k2, "bank.Deposited"}, Entry{k1, "bank.Opened"})} {
		got, err := Unmarshal(Marshal(c))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Map(), c.Map()) {
			t.Errorf("round trip: %v, want %v", got.Map(), c.Map())
		}
	}
}

func TestUnmarshalRefuses(t *testing.T) {
	good := Marshal((*Catalog)(nil).With(Entry{k1, "a"}, Entry{k2, "b"}))
	flip := func(i int) []byte {
		b := append([]byte(nil), good...)
		b[i] ^= 1
		return b
	}
	tests := []struct {
		name   string
		b      []byte
		target error
	}{
		{"empty", nil, ErrCorrupt},
		{"cut", good[:len(good)-1], ErrCorrupt},
		{"flipped name", flip(len(good) - 5), ErrCorrupt},
		{"other version", reseal(good, func(b []byte) { b[5] = 9 }), ErrUnsupportedVersion},
		{"count too big", reseal(good, func(b []byte) { b[9] = 200 }), ErrCorrupt},
		{"out of order", reseal(good, func(b []byte) { b[11] = 0x03 }), ErrCorrupt},
		{"same name twice", reseal(good, func(b []byte) { b[len(b)-1] = 'a' }), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Unmarshal(tt.b); !errors.Is(err, tt.target) {
				t.Errorf("Unmarshal: %v, want %v", err, tt.target)
			}
			if tt.target == ErrCorrupt && !errors.Is(ErrCorrupt, batpak.ErrCorrupt) {
				t.Error("ErrCorrupt does not match batpak.ErrCorrupt")
			}
		})
	}
}

// reseal returns a copy of b changed by edit, with its checksum fixed.
func reseal(b []byte, edit func([]byte)) []byte {
	c := append([]byte(nil), b[:len(b)-4]...)
	edit(c)
	return binary.BigEndian.AppendUint32(c, crc32.Checksum(c, castagnoli))
}
