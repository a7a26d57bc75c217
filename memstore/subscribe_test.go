package memstore_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

// TestSubscribe: a subscription receives the new events of its region in
// commit order; one that does not read loses (and counts) what its buffer
// cannot hold, without slowing an append; Close closes the channel.
func TestSubscribe(t *testing.T) {
	s := newStore(t)
	mustAppend(t, s, co("t", "x"), evs(kindA, 3)) // before subscribing: not delivered
	tests := []struct {
		name    string
		r       batpak.Region
		buffer  int
		want    []uint64 // sequences it holds, in order
		dropped uint64
	}{
		{"everything", batpak.Region{}, 64, span(4, 13), 0},
		{"entity", batpak.Region{Entity: "x"}, 64, []uint64{4, 6, 8, 10, 12}, 0},
		{"kind", batpak.Region{Kinds: []kind.Kind{kindB}}, 64, []uint64{5, 7, 9, 11, 13}, 0},
		{"buffer of one", batpak.Region{}, 1, []uint64{4}, 9},
		{"buffer of zero is one", batpak.Region{}, 0, []uint64{4}, 9},
		{"buffer of three", batpak.Region{Entity: "y"}, 3, []uint64{5, 7, 9}, 2},
	}
	subs := make([]batpak.Subscription, len(tests))
	for i, tc := range tests {
		sub, err := s.Subscribe(tc.r, tc.buffer)
		if err != nil {
			t.Fatal(err)
		}
		subs[i] = sub
	}
	for range 5 {
		mustAppend(t, s, co("t", "x"), evs(kindA, 1))
		if _, err := s.AppendBatch(bg, []batpak.BatchItem{{Coordinate: co("t", "y"), Event: evs(kindB, 1)[0]}}); err != nil {
			t.Fatal(err)
		}
	}
	// Events are offered before Append returns: the buffers hold them now.
	for i, tc := range tests {
		sub := subs[i]
		var got []uint64
		for len(sub.Events()) > 0 {
			got = append(got, (<-sub.Events()).Sequence)
		}
		if !slices.Equal(got, tc.want) || sub.Dropped() != tc.dropped {
			t.Errorf("%s: received %v and dropped %d, want %v and %d", tc.name, got, sub.Dropped(), tc.want, tc.dropped)
		}
	}

	subs[0].Close()
	subs[0].Close() // a second Close is harmless
	if _, ok := <-subs[0].Events(); ok {
		t.Fatal("a closed subscription delivered an event")
	}
	mustAppend(t, s, co("t", "x"), evs(kindA, 1))
	if rec := <-subs[1].Events(); rec.Sequence != 14 {
		t.Fatalf("after another subscription closed: received sequence %d, want 14", rec.Sequence)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, sub := range subs {
		for range sub.Events() { // drains, and ends once the channel is closed
		}
		sub.Close()
	}
	if _, err := s.Subscribe(batpak.Region{}, 1); !errors.Is(err, batpak.ErrClosed) {
		t.Fatalf("Subscribe on a closed store: %v", err)
	}
}
