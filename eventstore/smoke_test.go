package eventstore_test

import (
	"context"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
)

func TestSmoke(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := eventstore.Open(dir, eventstore.WithSegmentMaxBytes(8<<10))
	if err != nil {
		t.Fatal(err)
	}
	k := kind.Custom(1, 1)
	c := batpak.Coordinate{Entity: "a:1", Scope: "s"}
	for i := range 200 {
		_, err := s.Append(ctx, c, []batpak.Event{{Kind: k, Payload: map[string]int{"i": i}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	rs, err := s.Append(ctx, c, []batpak.Event{{Kind: k, Payload: 1}, {Kind: k, Payload: 2}}, batpak.ExpectVersion(batpak.Exactly(200)), batpak.WithIdempotencyKey("x"))
	if err != nil || len(rs) != 2 || rs[1].Version != 202 {
		t.Fatal(rs, err)
	}
	n := 0
	for r, err := range s.ReadStream(context.Background(), batpak.Coordinate{Entity: "a:1", Scope: "s"}, 0) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if r.Version != uint64(n) {
			t.Fatal(r)
		}
	}
	if n != 202 {
		t.Fatal(n)
	}
	t.Log(s.Stats())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = eventstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", s.Stats().ColdStart)
	rs2, err := s.Append(ctx, c, []batpak.Event{{Kind: k, Payload: 1}, {Kind: k, Payload: 2}}, batpak.WithIdempotencyKey("x"))
	if err != nil || rs2[1] != rs[1] {
		t.Fatal(rs2, err)
	}
	if err := s.VerifyChain(context.Background(), batpak.Coordinate{Entity: "a:1", Scope: "s"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
}
