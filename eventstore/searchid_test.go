package eventstore

import (
	"errors"
	"testing"
)

// TestSearchID binary searches ids that increase with the sequence, some of
// whose frames cannot be read.
func TestSearchID(t *testing.T) {
	errDamaged := errors.New("damaged")
	idOf := func(n uint64) [16]byte { return [16]byte{14: byte(n >> 8), 15: byte(n)} }
	const n = 200
	ids := func(damaged ...[2]uint64) func(seq uint64) ([16]byte, error) {
		return func(seq uint64) ([16]byte, error) {
			if seq == 0 || seq > n {
				t.Fatalf("read of sequence %d", seq)
			}
			for _, d := range damaged {
				if seq >= d[0] && seq <= d[1] {
					return [16]byte{}, errDamaged
				}
			}
			return idOf(seq * 2), nil // even ids: odd ones are not stored
		}
	}
	tests := []struct {
		name     string
		id       [16]byte
		damaged  [][2]uint64
		want     uint64
		from, to uint64 // of an unreadableError; 0 if none
	}{
		{name: "first", id: idOf(2), want: 1},
		{name: "last", id: idOf(2 * n), want: n},
		{name: "middle", id: idOf(2 * 77), want: 77},
		{name: "absent between", id: idOf(2*77 + 1)},
		{name: "absent before", id: idOf(1)},
		{name: "absent after", id: idOf(2*n + 1)},
		{name: "beside damage", id: idOf(2 * 101), damaged: [][2]uint64{{95, 100}}, want: 101},
		{name: "below damage", id: idOf(2 * 94), damaged: [][2]uint64{{95, 110}}, want: 94},
		{name: "far from damage", id: idOf(2 * 180), damaged: [][2]uint64{{1, 150}}, want: 180},
		{name: "inside damage", id: idOf(2 * 100), damaged: [][2]uint64{{95, 105}}, from: 95, to: 105},
		{name: "absent inside damage", id: idOf(2*100 + 1), damaged: [][2]uint64{{95, 105}}, from: 95, to: 105},
		{name: "damage at the start", id: idOf(2 * 3), damaged: [][2]uint64{{1, 10}}, from: 1, to: 10},
		{name: "damage at the end", id: idOf(2 * n), damaged: [][2]uint64{{190, n}}, from: 190, to: n},
		{name: "all damaged", id: idOf(2 * 50), damaged: [][2]uint64{{1, n}}, from: 1, to: n},
		{name: "two runs", id: idOf(2 * 60), damaged: [][2]uint64{{20, 40}, {100, 120}}, want: 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := searchID(tt.id, 1, n, ids(tt.damaged...))
			var u *unreadableError
			switch {
			case tt.from != 0:
				if !errors.As(err, &u) || u.from != tt.from || u.to != tt.to || !errors.Is(err, errDamaged) {
					t.Fatalf("got %d, %v; want unreadable %d…%d", got, err, tt.from, tt.to)
				}
			case err != nil || got != tt.want:
				t.Fatalf("got %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}
