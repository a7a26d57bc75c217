package causal

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak/kind"
)

// SVGOptions configures [Graph.WriteSVG]. The zero value draws plain boxes.
type SVGOptions struct {
	// Link returns the address a node links to; "" (or a nil Link) draws
	// the node without a link. The address is written as an attribute
	// value, escaped, and is otherwise the caller's.
	Link func(*Node) string
	// KindName returns a name for a kind (the registered type's name, say),
	// shown after the kind's number; where it returns "" (or is nil), the
	// record's type name from the store's catalog is shown, if it has one.
	KindName func(kind.Kind) string
}

// Geometry of the drawing, in pixels. Text is 12 px monospace, whose
// advance is about 0.6 em in every common monospace font.
const (
	svgCharWidth = 7.2
	svgMaxChars  = 44 // longer lines are cut with an ellipsis (the tooltip has them whole)
	svgMinWidth  = 150
	svgBoxHeight = 40
	svgGapX      = 48
	svgGapY      = 14
	svgMargin    = 12
)

// svgBox is one box of the drawing: an event, or a cause outside the group
// (missing, or in another correlation group) drawn to the left of its
// effects.
type svgBox struct {
	node     *Node  // nil for an outside cause
	outside  string // "missing" or "in another group"
	cause    uuid.UUID
	children []*svgBox
	col      int
	row      float64
}

// WriteSVG draws the graph as a standalone SVG image: one box per event
// (sequence, entity, version on the first line; kind and short id on the
// second), laid out left to right by causal depth, each box over the middle
// of its effects, with an arrow from each cause to its effects. The traced
// event is drawn bold on a yellow ground. Causes outside the group are
// boxes of their own, dashed when missing and dotted when in another
// group; an edge cut to break a cycle is a dashed red arrow. Each event's
// box carries a tooltip with its full id, entity, scope and time and,
// with opt.Link, is a link.
//
// Everything is drawn with presentation attributes (no style sheet, no
// script), so the image can be inlined into an HTML page under a strict
// content security policy; all text is XML-escaped.
func (g *Graph) WriteSVG(w io.Writer, opt SVGOptions) error {
	roots, boxes := g.svgForest()
	rows := 0.0
	var place func(b *svgBox, col int)
	place = func(b *svgBox, col int) {
		b.col = col
		if len(b.children) == 0 {
			b.row = rows
			rows++
			return
		}
		for _, c := range b.children {
			place(c, col+1)
		}
		b.row = (b.children[0].row + b.children[len(b.children)-1].row) / 2
	}
	for _, r := range roots {
		place(r, 0)
	}
	lines := make(map[*svgBox][2]string, len(boxes))
	chars, cols := 0, 0
	for _, b := range boxes {
		l := g.svgLines(b, opt.KindName)
		lines[b] = l
		chars = max(chars, utf8.RuneCountInString(l[0]), utf8.RuneCountInString(l[1]))
		cols = max(cols, b.col+1)
	}
	boxW := max(float64(svgMinWidth), float64(chars)*svgCharWidth+16)
	x := func(b *svgBox) float64 { return svgMargin + float64(b.col)*(boxW+svgGapX) }
	y := func(b *svgBox) float64 { return svgMargin + b.row*(svgBoxHeight+svgGapY) }
	width := 2*svgMargin + float64(cols)*boxW + float64(max(cols-1, 0))*svgGapX
	height := 2*svgMargin + rows*svgBoxHeight + max(rows-1, 0)*svgGapY

	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" class="causal-graph" width="%s" height="%s" viewBox="0 0 %s %s" font-family="monospace" font-size="12">`+"\n",
		num(width), num(height), num(width), num(height))
	bw.WriteString(`<defs><marker id="causal-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#555"/></marker>` +
		`<marker id="causal-arrow-cut" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#c0392b"/></marker></defs>` + "\n")
	// Edges first, so boxes are drawn over their ends.
	edge := func(from, to *svgBox, attrs string) {
		x1, y1 := x(from)+boxW, y(from)+svgBoxHeight/2
		x2, y2 := x(to), y(to)+svgBoxHeight/2
		mid := (x1 + x2) / 2
		fmt.Fprintf(bw, `<path d="M%s,%sC%s,%s %s,%s %s,%s" fill="none" %s/>`+"\n",
			num(x1), num(y1), num(mid), num(y1), num(mid), num(y2), num(x2), num(y2), attrs)
	}
	byNode := make(map[*Node]*svgBox, len(boxes))
	for _, b := range boxes {
		if b.node != nil {
			byNode[b.node] = b
		}
	}
	for _, b := range boxes {
		attrs := `stroke="#555" stroke-width="1.2" marker-end="url(#causal-arrow)"`
		if b.node == nil {
			attrs += ` stroke-dasharray="4 3"`
		}
		for _, c := range b.children {
			edge(b, c, attrs)
		}
	}
	for _, b := range boxes {
		if b.node == nil || !b.node.CycleCut {
			continue
		}
		if p := byNode[g.byID[b.node.Record.CausationID]]; p != nil {
			// A cut edge may run backwards: bend it below the boxes.
			x1, y1 := x(p)+boxW/2, y(p)+svgBoxHeight
			x2, y2 := x(b)+boxW/2, y(b)+svgBoxHeight
			low := max(y1, y2) + svgGapY*1.5
			fmt.Fprintf(bw, `<path d="M%s,%sC%s,%s %s,%s %s,%s" fill="none" stroke="#c0392b" stroke-width="1.2" stroke-dasharray="5 3" marker-end="url(#causal-arrow-cut)"><title>cycle: cut to draw the group as a tree</title></path>`+"\n",
				num(x1), num(y1), num(x1), num(low), num(x2), num(low), num(x2), num(y2))
		}
	}
	for _, b := range boxes {
		g.svgBox(bw, b, lines[b], x(b), y(b), boxW, opt.Link)
	}
	bw.WriteString("</svg>\n")
	return bw.Flush()
}

// svgForest builds the boxes as a forest in the graph's order: the roots
// in commit order, each outside cause at the place of its first effect,
// with all the roots it caused under it.
func (g *Graph) svgForest() (roots, all []*svgBox) {
	byNode := make(map[*Node]*svgBox, len(g.Nodes))
	var build func(n *Node) *svgBox
	build = func(n *Node) *svgBox {
		b := &svgBox{node: n}
		byNode[n] = b
		all = append(all, b)
		for _, c := range n.Children {
			b.children = append(b.children, build(c))
		}
		return b
	}
	outside := make(map[uuid.UUID]*svgBox)
	for _, n := range g.Roots {
		if !n.Dangling && !n.External {
			roots = append(roots, build(n))
			continue
		}
		cause := n.Record.CausationID
		o := outside[cause]
		if o == nil {
			o = &svgBox{cause: cause, outside: "missing"}
			if n.External {
				o.outside = "in another group"
			}
			outside[cause] = o
			all = append(all, o)
			roots = append(roots, o)
		}
		o.children = append(o.children, build(n))
	}
	return roots, all
}

// svgLines returns the two lines of text of a box.
func (g *Graph) svgLines(b *svgBox, kindName func(kind.Kind) string) [2]string {
	if b.node == nil {
		return [2]string{ShortID(b.cause), b.outside}
	}
	r := &b.node.Record
	k, name := r.Kind.String(), ""
	if kindName != nil {
		name = kindName(r.Kind)
	}
	if name == "" {
		name = r.Type
	}
	if name != "" {
		k += " " + name
	}
	return [2]string{
		cut(fmt.Sprintf("#%d %s v%d", r.Sequence, r.Coordinate.Entity, r.Version)),
		cut(k + " " + ShortID(r.ID)),
	}
}

// cut shortens s to svgMaxChars runes, ending it with an ellipsis.
func cut(s string) string {
	if utf8.RuneCountInString(s) <= svgMaxChars {
		return s
	}
	r := []rune(s)
	return string(r[:svgMaxChars-1]) + "…"
}

func (g *Graph) svgBox(bw *bufio.Writer, b *svgBox, lines [2]string, x, y, w float64, link func(*Node) string) {
	fill, stroke, strokeW, dash := "#ffffff", "#444444", "1", ""
	var title, href string
	traced := b.node != nil && b.node.Record.ID == g.Traced
	if b.node == nil {
		fill, stroke = "#f4f4f4", "#888888"
		dash = ` stroke-dasharray="4 3"`
		if b.outside != "missing" {
			dash = ` stroke-dasharray="1 3"`
		}
		title = fmt.Sprintf("cause %s, %s", b.cause, b.outside)
		bw.WriteString(`<g class="causal-outside">`)
	} else {
		r := &b.node.Record
		if traced {
			fill, strokeW = "#fff5c2", "2.5"
		}
		title = fmt.Sprintf("#%d %s (scope %s) v%d\n%s %s\nid %s", r.Sequence, r.Coordinate.Entity, r.Coordinate.Scope, r.Version,
			r.Kind, r.Timestamp.UTC().Format("2006-01-02T15:04:05.000000Z"), r.ID)
		if note := strings.TrimPrefix(g.notes(b.node), " "); note != "" {
			title += "\n" + note
		}
		if traced {
			title += "\ntraced"
		}
		fmt.Fprintf(bw, `<g class="causal-node" id="ev-%d" data-sequence="%d" data-id="%s">`, r.Sequence, r.Sequence, r.ID)
		if link != nil {
			href = link(b.node)
		}
	}
	if href != "" {
		bw.WriteString(`<a href="`)
		escape(bw, href)
		bw.WriteString(`">`)
	}
	bw.WriteString("<title>")
	escape(bw, title)
	bw.WriteString("</title>")
	fmt.Fprintf(bw, `<rect x="%s" y="%s" width="%s" height="%d" rx="4" fill="%s" stroke="%s" stroke-width="%s"%s/>`,
		num(x), num(y), num(w), svgBoxHeight, fill, stroke, strokeW, dash)
	for i, l := range lines {
		weight := ""
		if i == 0 && traced {
			weight = ` font-weight="bold"`
		}
		fmt.Fprintf(bw, `<text x="%s" y="%s" fill="#111111"%s>`, num(x+8), num(y+16+float64(i)*15), weight)
		escape(bw, l)
		bw.WriteString("</text>")
	}
	if href != "" {
		bw.WriteString("</a>")
	}
	bw.WriteString("</g>\n")
}

// escape writes s XML-escaped (valid in text and in attribute values).
func escape(bw *bufio.Writer, s string) { _ = xml.EscapeText(bw, []byte(s)) }

// num formats a coordinate with at most one decimal.
func num(f float64) string {
	s := fmt.Sprintf("%.1f", f)
	return strings.TrimSuffix(s, ".0")
}
