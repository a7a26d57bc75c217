package causal

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"
)

// label is a node's line in the text tree: sequence, entity, version,
// type name (or kind) and short id.
func (n *Node) label() string {
	r := &n.Record
	return fmt.Sprintf("#%d %s v%d %s %s", r.Sequence, r.Coordinate.Entity, r.Version, r.KindName(), ShortID(r.ID))
}

// notes explains why a node is a root although it has a causation id.
func (g *Graph) notes(n *Node) string {
	cause := n.Record.CausationID
	switch {
	case n.Dangling:
		return " (cause " + ShortID(cause) + " missing)"
	case n.External:
		return " (cause " + ShortID(cause) + " in another group)"
	case n.CycleCut:
		if p := g.byID[cause]; p != nil {
			return fmt.Sprintf(" (cycle: caused by #%d)", p.Record.Sequence)
		}
		return " (cycle)"
	}
	return ""
}

// WriteText writes the graph as a text tree, one line per event in
// commit order under its cause:
//
//	#1 order:7 v1 shop.Ordered 5f1c02ab
//	├─ #2 payment:7 v1 shop.Charged 93d0e4c1
//	│  └─ #4 payment:7 v2 shop.Refunded 0b7a9e55 ◀ traced
//	└─ #3 stock:7 v1 1:004 c4e2a810
//
// Each line holds the sequence, entity, stream version, type name (the
// kind, for a kind the store has no name for) and short id
// ([ShortID]) of the event. The traced event is marked with "◀ traced"; a
// root with a causation id says why it is a root (its cause is missing, in
// another group, or on a cycle).
func (g *Graph) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	type item struct {
		n      *Node
		prefix string // drawn before the branch of n
		branch string // "", "├─ " or "└─ "
		indent string // prefix of n's children
	}
	var stack []item
	push := func(children []*Node, indent string) {
		for i := len(children) - 1; i >= 0; i-- {
			branch, next := "├─ ", indent+"│  "
			if i == len(children)-1 {
				branch, next = "└─ ", indent+"   "
			}
			stack = append(stack, item{children[i], indent, branch, next})
		}
	}
	for i := len(g.Roots) - 1; i >= 0; i-- {
		stack = append(stack, item{n: g.Roots[i]})
	}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		bw.WriteString(it.prefix)
		bw.WriteString(it.branch)
		bw.WriteString(it.n.label())
		bw.WriteString(g.notes(it.n))
		if it.n.Record.ID == g.Traced {
			bw.WriteString(" ◀ traced")
		}
		bw.WriteByte('\n')
		push(it.n.Children, it.indent)
	}
	return bw.Flush()
}

// dotString quotes s as a DOT string; "\n" inside it is a line break.
func dotString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// dotLabel joins lines, each escaped, with DOT line breaks.
func dotLabel(lines ...string) string {
	for i, l := range lines {
		l = dotString(l)
		lines[i] = l[1 : len(l)-1]
	}
	return `"` + strings.Join(lines, `\n`) + `"`
}

// WriteDOT writes the graph in the graphviz DOT language: a digraph with
// one box per event (sequence, entity, version, kind and short id; the
// traced event in bold) and an edge from each cause to its effects. Missing
// causes and causes in other groups are dashed and dotted boxes; an edge
// cut to break a cycle is drawn dashed in red.
func (g *Graph) WriteDOT(w io.Writer) error {
	bw := bufio.NewWriter(w)
	name := func(n *Node) string { return fmt.Sprintf(`"n%d"`, n.Record.Sequence) }
	fmt.Fprintln(bw, "digraph causal {")
	fmt.Fprintln(bw, `  node [shape=box, fontname="monospace"];`)
	for _, n := range g.Nodes {
		r := &n.Record
		fmt.Fprintf(bw, "  %s [label=%s", name(n), dotLabel(
			fmt.Sprintf("#%d %s v%d", r.Sequence, r.Coordinate.Entity, r.Version),
			fmt.Sprintf("%s %s", r.KindName(), ShortID(r.ID))))
		if r.ID == g.Traced {
			fmt.Fprint(bw, `, style=bold, penwidth=2`)
		}
		fmt.Fprintln(bw, "];")
	}
	outside := make(map[uuid.UUID]string)
	for _, n := range g.Nodes {
		for _, c := range n.Children {
			fmt.Fprintf(bw, "  %s -> %s;\n", name(n), name(c))
		}
		cause := n.Record.CausationID
		switch {
		case n.Dangling, n.External:
			style, what := "dashed", "missing"
			if n.External {
				style, what = "dotted", "in another group"
			}
			o, ok := outside[cause]
			if !ok {
				o = fmt.Sprintf(`"x%d"`, len(outside)+1)
				outside[cause] = o
				fmt.Fprintf(bw, "  %s [label=%s, style=%s];\n", o, dotLabel(ShortID(cause), what), style)
			}
			fmt.Fprintf(bw, "  %s -> %s [style=%s];\n", o, name(n), style)
		case n.CycleCut:
			if p := g.byID[cause]; p != nil {
				fmt.Fprintf(bw, "  %s -> %s [style=dashed, color=red, label=\"cycle\"];\n", name(p), name(n))
			}
		}
	}
	fmt.Fprintln(bw, "}")
	return bw.Flush()
}

// The JSON form of a graph. Field names are part of the API.
type (
	jsonGraph struct {
		Traced      string         `json:"traced"`
		Correlation string         `json:"correlation"`
		Roots       []string       `json:"roots"`
		Nodes       []jsonNode     `json:"nodes"`
		Dangling    []jsonDangling `json:"dangling"`
		Cycles      [][]string     `json:"cycles"`
	}
	jsonNode struct {
		ID          string   `json:"id"`
		Sequence    uint64   `json:"sequence"`
		Entity      string   `json:"entity"`
		Scope       string   `json:"scope"`
		Version     uint64   `json:"version"`
		Kind        string   `json:"kind"`
		Type        string   `json:"type"`
		Causation   *string  `json:"causation"`
		Correlation string   `json:"correlation"`
		Timestamp   string   `json:"timestamp"`
		Children    []string `json:"children"`
	}
	jsonDangling struct {
		Missing  string `json:"missing"`
		ID       string `json:"id"`
		Sequence uint64 `json:"sequence"`
	}
)

// WriteJSON writes the graph as one indented JSON object:
//
//	{
//	  "traced": id, "correlation": id, "roots": [id, ...],
//	  "nodes": [{"id", "sequence", "entity", "scope", "version",
//	             "kind", "type", "causation", "correlation", "timestamp",
//	             "children": [id, ...]}, ...],
//	  "dangling": [{"missing": id, "id": id, "sequence": n}, ...],
//	  "cycles": [[id, ...], ...]
//	}
//
// Nodes are in commit order and children in commit order. Ids are UUID
// strings, kinds are formatted as kind.Kind.String ("1:002") and "type" is
// the store's name of the kind ("" if it has none), timestamps
// as RFC 3339 in UTC with up to microseconds, and causation is null for an
// event without a cause. Lists are empty, never null. "dangling" lists the
// causation ids that name no event ("id" and "sequence" are the event that
// holds it), "cycles" the causation cycles as in [Graph.Cycles].
func (g *Graph) WriteJSON(w io.Writer) error {
	out := jsonGraph{
		Traced:      g.Traced.String(),
		Correlation: g.Correlation.String(),
		Roots:       make([]string, 0, len(g.Roots)),
		Nodes:       make([]jsonNode, 0, len(g.Nodes)),
		Dangling:    make([]jsonDangling, 0, len(g.Dangling)),
		Cycles:      make([][]string, 0, len(g.Cycles)),
	}
	for _, n := range g.Roots {
		out.Roots = append(out.Roots, n.Record.ID.String())
	}
	for _, n := range g.Nodes {
		r := &n.Record
		jn := jsonNode{
			ID:          r.ID.String(),
			Sequence:    r.Sequence,
			Entity:      r.Coordinate.Entity,
			Scope:       r.Coordinate.Scope,
			Version:     r.Version,
			Kind:        r.Kind.String(),
			Type:        r.Type,
			Correlation: r.CorrelationID.String(),
			Timestamp:   r.Timestamp.UTC().Format(time.RFC3339Nano),
			Children:    make([]string, 0, len(n.Children)),
		}
		if r.CausationID != uuid.Nil {
			c := r.CausationID.String()
			jn.Causation = &c
		}
		for _, c := range n.Children {
			jn.Children = append(jn.Children, c.Record.ID.String())
		}
		out.Nodes = append(out.Nodes, jn)
	}
	for _, d := range g.Dangling {
		out.Dangling = append(out.Dangling, jsonDangling{Missing: d.Missing.String(), ID: d.Effect.String(), Sequence: d.Sequence})
	}
	for _, cycle := range g.Cycles {
		ids := make([]string, len(cycle))
		for i, n := range cycle {
			ids[i] = n.Record.ID.String()
		}
		out.Cycles = append(out.Cycles, ids)
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
