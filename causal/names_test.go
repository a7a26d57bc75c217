package causal_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/causal"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/memstore"
)

// TestRenderersShowTypeNames: the text, DOT, JSON and SVG renderings name
// each event by the store's type name, without the app's registry; a kind
// the store has no name for shows as its number.
func TestRenderersShowTypeNames(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	defer s.Close()
	order := batpak.Coordinate{Entity: "order:1", Scope: "shop"}
	rs, err := s.Append(ctx, order, []batpak.Event{{Kind: kind.Custom(1, 1), Type: "shop.Ordered"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, order, []batpak.Event{{Kind: kind.Custom(1, 2), Type: "shop.Paid"}, {Kind: kind.Custom(1, 3)}},
		batpak.WithCausation(rs[0].EventID)); err != nil {
		t.Fatal(err)
	}
	g, err := causal.Trace(ctx, s, rs[0].EventID)
	if err != nil {
		t.Fatal(err)
	}
	render := map[string]func(*bytes.Buffer) error{
		"text": func(b *bytes.Buffer) error { return g.WriteText(b) },
		"dot":  func(b *bytes.Buffer) error { return g.WriteDOT(b) },
		"json": func(b *bytes.Buffer) error { return g.WriteJSON(b) },
		"svg":  func(b *bytes.Buffer) error { return g.WriteSVG(b, causal.SVGOptions{}) },
	}
	for name, fn := range render {
		var b bytes.Buffer
		if err := fn(&b); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		for _, want := range []string{"shop.Ordered", "shop.Paid", "1:003"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s rendering lacks %q:\n%s", name, want, out)
			}
		}
	}
}
