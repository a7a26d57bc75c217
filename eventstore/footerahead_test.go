package eventstore

import (
	"context"
	"os"
	"reflect"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/segment"
)

// footersAhead hands each footer over in order, as segment.ReadFooter
// reads it; a segment taken out of turn, or one whose footer is damaged,
// gets nil (the recovery reads it itself); close returns whether or not
// every footer was taken.
func TestFootersAhead(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, WithSegmentMaxBytes(4096), WithSyncMode(SyncNone))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		ev := []batpak.Event{{Kind: kind.Custom(1, 1), Payload: batpak.RawPayload(make([]byte, 100))}}
		if _, err := s.Append(context.Background(), batpak.Coordinate{Entity: string(rune('a' + i%7)), Scope: "t"}, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	ids, err := ro.listSegments()
	if err != nil {
		t.Fatal(err)
	}
	sealed := ids[:len(ids)-1]
	if len(sealed) < 6 {
		t.Fatalf("%d sealed segments", len(sealed))
	}
	want := func(id uint32) *segment.Index {
		data, err := os.ReadFile(ro.segmentPath(id))
		if err != nil {
			t.Fatal(err)
		}
		ix, _, err := segment.ReadFooter(data, id)
		if err != nil {
			t.Fatal(err)
		}
		return ix
	}
	a := ro.readFootersAhead(sealed)
	for _, id := range sealed {
		if got := a.take(id); !reflect.DeepEqual(got, want(id)) {
			t.Fatalf("segment %d: the footer read ahead differs", id)
		}
	}
	a.close()

	// Out of turn: the skipped ones are dropped, a past one gets nil.
	a = ro.readFootersAhead(sealed)
	if got := a.take(sealed[3]); !reflect.DeepEqual(got, want(sealed[3])) {
		t.Fatal("a later segment's footer differs")
	}
	if got := a.take(sealed[1]); got != nil {
		t.Fatal("a footer for a segment already passed")
	}
	a.close() // with footers not taken

	// A damaged footer is nil.
	path := ro.segmentPath(sealed[2])
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-segment.TrailerSize-3] ^= 0xff
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	a = ro.readFootersAhead(sealed)
	for i, id := range sealed {
		got := a.take(id)
		if (got == nil) != (i == 2) {
			t.Fatalf("segment %d (damaged: %v): footer %v", id, i == 2, got != nil)
		}
	}
	a.close()
}
