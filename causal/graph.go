package causal

import (
	"context"
	"slices"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
)

// Graph is the causal tree (or forest) of one correlation group, made by
// [Trace]. Each event of the group is a [Node] hanging under its cause.
// An event is a root of the graph when it has no cause, or when its cause is
// not in the group: it names no event ([Node.Dangling], listed in
// [Graph.Dangling]) or an event of another group ([Node.External]); and,
// to break a causation cycle, the cycle's earliest event ([Node.CycleCut],
// the cycle listed in [Graph.Cycles]).
type Graph struct {
	// Traced is the id of the event the graph was traced from.
	Traced uuid.UUID
	// Correlation is the group's correlation id, the id of its root event.
	Correlation uuid.UUID
	// Nodes holds every event of the group in commit order.
	Nodes []*Node
	// Roots holds the nodes without a parent in the graph, in commit order.
	Roots []*Node
	// Dangling lists the causation ids of the group that name no event.
	Dangling []Dangling
	// Cycles lists the causation cycles of the group, each in causal
	// order (every node the cause of the next, the last the cause of the
	// first) starting with its earliest event, which was cut from its cause.
	Cycles [][]*Node

	byID map[uuid.UUID]*Node
}

// Node is one event of a [Graph].
type Node struct {
	Record batpak.Record
	// Parent is the node of the event's cause, nil for a root.
	Parent *Node
	// Children are the nodes of the event's direct effects in the group,
	// in commit order.
	Children []*Node
	// Dangling is set on a root whose causation id names no event.
	Dangling bool
	// External is set on a root whose cause belongs to another
	// correlation group.
	External bool
	// CycleCut is set on a root whose causation link was cut to break a
	// cycle; its cause is the last node of the cycle.
	CycleCut bool
}

// Node returns the node of event id, or nil if it is not in the graph.
func (g *Graph) Node(id uuid.UUID) *Node { return g.byID[id] }

// Len returns the number of events in the graph.
func (g *Graph) Len() int { return len(g.Nodes) }

// Trace builds the causal tree of the correlation group of event id: it
// reads the group through the correlation index (see [Correlation]) and
// hangs every event under its cause. Causes outside the group are looked
// up by id only to tell a dangling causation id from an external cause.
func Trace(ctx context.Context, src Source, id uuid.UUID) (*Graph, error) {
	focus, corr, members, err := group(ctx, src, id)
	if err != nil {
		return nil, err
	}
	g := &Graph{
		Traced:      focus.ID,
		Correlation: corr,
		Nodes:       make([]*Node, len(members)),
		Dangling:    []Dangling{},
		Cycles:      [][]*Node{},
		byID:        make(map[uuid.UUID]*Node, len(members)),
	}
	for i := range members {
		n := &Node{Record: members[i]}
		g.Nodes[i] = n
		g.byID[n.Record.ID] = n
	}
	for _, n := range g.Nodes { // commit order, so children end up in it too
		cause := n.Record.CausationID
		if cause == uuid.Nil {
			continue
		}
		if p := g.byID[cause]; p != nil {
			n.Parent = p
			p.Children = append(p.Children, n)
			continue
		}
		switch _, err := src.Get(ctx, cause); {
		case err == nil:
			n.External = true
		case notFound(err):
			n.Dangling = true
			g.Dangling = append(g.Dangling, Dangling{Missing: cause, Effect: n.Record.ID, Sequence: n.Record.Sequence})
		default:
			return nil, err
		}
	}
	g.breakCycles()
	for _, n := range g.Nodes {
		if n.Parent == nil {
			g.Roots = append(g.Roots, n)
		}
	}
	return g, nil
}

// breakCycles finds the nodes that no root reaches: each has a parent, and
// following parents from it ends in a cycle. It cuts every cycle at its
// earliest node, which becomes a root.
func (g *Graph) breakCycles() {
	reached := make(map[*Node]bool, len(g.Nodes))
	mark := func(n *Node) {
		stack := []*Node{n}
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if !reached[n] {
				reached[n] = true
				stack = append(stack, n.Children...)
			}
		}
	}
	for _, n := range g.Nodes {
		if n.Parent == nil {
			mark(n)
		}
	}
	for _, n := range g.Nodes {
		if reached[n] {
			continue
		}
		// Follow the parents until one repeats: the loop from there is a cycle.
		pos := make(map[*Node]int)
		var path []*Node
		at := n
		for {
			if _, ok := pos[at]; ok {
				break
			}
			pos[at] = len(path)
			path = append(path, at)
			at = at.Parent
		}
		cycle := slices.Clone(path[pos[at]:]) // effects first
		slices.Reverse(cycle)                 // causes first
		earliest := slices.MinFunc(cycle, func(a, b *Node) int { return bySequence(a.Record, b.Record) })
		first := slices.Index(cycle, earliest)
		cycle = append(cycle[first:], cycle[:first]...)
		cut := cycle[0]
		p := cut.Parent
		p.Children = slices.DeleteFunc(p.Children, func(c *Node) bool { return c == cut })
		cut.Parent = nil
		cut.CycleCut = true
		g.Cycles = append(g.Cycles, cycle)
		mark(cut)
	}
}
