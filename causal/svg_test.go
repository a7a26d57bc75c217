package causal_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/causal"
	"github.com/batpak-go/batpak/kind"
)

// svgDoc is what a test reads back from an SVG drawing.
type svgDoc struct {
	boxes    map[string]svgRect // by data-sequence, or "x<n>" for outside causes in order
	texts    map[string][]string
	titles   map[string]string
	links    map[string]string
	edges    int
	cutEdges int
	bold     []string
}

type svgRect struct{ x, y, w, h float64 }

// parseSVG decodes src as XML (failing on anything malformed) and collects
// the boxes, their text, links and the edges.
func parseSVG(t *testing.T, src string) *svgDoc {
	t.Helper()
	d := &svgDoc{boxes: map[string]svgRect{}, texts: map[string][]string{}, titles: map[string]string{}, links: map[string]string{}}
	dec := xml.NewDecoder(strings.NewReader(src))
	var stack []string
	cur, outside := "", 0
	var text *strings.Builder
	attr := func(se xml.StartElement, name string) string {
		for _, a := range se.Attr {
			if a.Name.Local == name {
				return a.Value
			}
		}
		return ""
	}
	f := func(s string) float64 {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("bad number %q", s)
		}
		return v
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, src)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			stack = append(stack, tok.Name.Local)
			switch tok.Name.Local {
			case "g":
				switch attr(tok, "class") {
				case "causal-node":
					cur = attr(tok, "data-sequence")
				case "causal-outside":
					outside++
					cur = fmt.Sprintf("x%d", outside)
				}
			case "a":
				d.links[cur] = attr(tok, "href")
			case "rect":
				d.boxes[cur] = svgRect{f(attr(tok, "x")), f(attr(tok, "y")), f(attr(tok, "width")), f(attr(tok, "height"))}
			case "text", "title":
				text = &strings.Builder{}
				if attr(tok, "font-weight") == "bold" {
					d.bold = append(d.bold, cur)
				}
			case "path":
				if len(stack) == 2 { // not inside a marker
					if attr(tok, "stroke") == "#c0392b" {
						d.cutEdges++
					} else {
						d.edges++
					}
				}
			}
		case xml.CharData:
			if text != nil {
				text.Write(tok)
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
			switch tok.Name.Local {
			case "text":
				d.texts[cur] = append(d.texts[cur], text.String())
				text = nil
			case "title":
				if len(stack) > 0 && stack[len(stack)-1] != "path" {
					d.titles[cur] = text.String()
				}
				text = nil
			case "g":
				cur = ""
			}
		}
	}
	return d
}

func TestWriteSVG(t *testing.T) {
	s := openStore(t)
	ids, err := placeOrder(s, 1)
	if err != nil {
		t.Fatal(err)
	}
	odd := `<script>alert("x")</script> & 'quotes' ` + strings.Repeat("long", 20)
	if _, err := appendOne(s, odd, LedgerPosted, batpak.WithCausation(ids[5])); err != nil {
		t.Fatal(err)
	}
	g, err := causal.Trace(context.Background(), s, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	err = g.WriteSVG(&b, causal.SVGOptions{
		Link:     func(n *causal.Node) string { return "/event/" + n.Record.ID.String() + "?a=1&b=2" },
		KindName: func(k kind.Kind) string { return kindNames[k] },
	})
	if err != nil {
		t.Fatal(err)
	}
	src := b.String()
	if strings.Contains(src, "<script") {
		t.Fatalf("an entity name reached the SVG unescaped:\n%s", src)
	}
	d := parseSVG(t, src)
	if len(d.boxes) != 7 || d.edges != 6 || d.cutEdges != 0 {
		t.Fatalf("%d boxes, %d edges, %d cut edges:\n%s", len(d.boxes), d.edges, d.cutEdges, src)
	}
	if got := d.texts["2"]; len(got) != 2 || got[0] != "#2 payment:1 v1" || got[1] != "1:002 PaymentRequested "+causal.ShortID(ids[1]) {
		t.Errorf("texts of #2 = %q", got)
	}
	if want := "/event/" + ids[1].String() + "?a=1&b=2"; d.links["2"] != want {
		t.Errorf("link of #2 = %q, want %q", d.links["2"], want)
	}
	if len(d.bold) != 1 || d.bold[0] != "2" {
		t.Errorf("bold boxes %v, want the traced #2", d.bold)
	}
	// The odd entity is cut to fit, and whole in the tooltip.
	if got := d.texts["7"][0]; !strings.HasPrefix(got, `#7 <script>alert("x")</script> & 'quotes' `) || !strings.HasSuffix(got, "…") {
		t.Errorf("text of #7 = %q", got)
	}
	if !strings.Contains(d.titles["7"], odd) {
		t.Errorf("tooltip of #7 = %q", d.titles["7"])
	}
	// Left to right by depth; a cause is level with the middle of its effects.
	depth := map[string]int{"1": 0, "2": 1, "3": 1, "4": 2, "5": 2, "6": 2, "7": 3}
	for seq, dep := range depth {
		if want := d.boxes["1"].x + float64(dep)*(d.boxes["1"].w+48); d.boxes[seq].x != want {
			t.Errorf("box #%s at x %v, want %v", seq, d.boxes[seq].x, want)
		}
	}
	if mid := (d.boxes["4"].y + d.boxes["5"].y) / 2; d.boxes["2"].y != mid {
		t.Errorf("#2 at y %v, not between its effects (%v)", d.boxes["2"].y, mid)
	}
	if d.boxes["4"].y == d.boxes["5"].y || d.boxes["5"].y == d.boxes["6"].y {
		t.Error("leaf boxes overlap")
	}
}

func TestWriteSVGOutsideAndCycles(t *testing.T) {
	f := newFake()
	f.add(1, "a", kindA, fid(50), fid(1)) // dangling
	f.add(2, "b", kindA, fid(50), fid(1)) // same missing cause: one box
	f.add(3, "c", kindA, fid(9), fid(1))  // external
	f.add(9, "x", kindA, uuid.Nil, fid(9))
	g, err := causal.Trace(context.Background(), f, fid(1))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := g.WriteSVG(&b, causal.SVGOptions{}); err != nil {
		t.Fatal(err)
	}
	d := parseSVG(t, b.String())
	if len(d.boxes) != 5 || d.edges != 3 || len(d.links) != 0 {
		t.Fatalf("%d boxes, %d edges, %d links:\n%s", len(d.boxes), d.edges, len(d.links), b.String())
	}
	if got := d.texts["x1"]; len(got) != 2 || got[0] != "00000050" || got[1] != "missing" {
		t.Errorf("first outside box %q", got)
	}
	if got := d.texts["x2"]; len(got) != 2 || got[1] != "in another group" {
		t.Errorf("second outside box %q", got)
	}
	if d.boxes["1"].x <= d.boxes["x1"].x {
		t.Error("an effect is not to the right of its missing cause")
	}

	g, err = causal.Trace(context.Background(), cyclic(), fid(1))
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := g.WriteSVG(&b, causal.SVGOptions{}); err != nil {
		t.Fatal(err)
	}
	d = parseSVG(t, b.String())
	if len(d.boxes) != 6 || d.cutEdges != 2 {
		t.Errorf("%d boxes, %d cut edges:\n%s", len(d.boxes), d.cutEdges, b.String())
	}
	if !strings.Contains(d.titles["4"], "cycle") {
		t.Errorf("tooltip of the self-caused #4 = %q", d.titles["4"])
	}
}

func TestWriteSVGErrors(t *testing.T) {
	s, ids := orderStore(t)
	g, err := causal.Trace(context.Background(), s, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Errorf("disk full")
	if err := g.WriteSVG(failWriter{want}, causal.SVGOptions{}); err != want {
		t.Errorf("WriteSVG to a failing writer = %v, want %v", err, want)
	}
}
