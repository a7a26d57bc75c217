package causal_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/causal"
)

func TestAncestors(t *testing.T) {
	s, ids := orderStore(t)
	tests := []struct {
		seq  uint64
		want []uint64
	}{
		{1, nil},
		{2, []uint64{1}},
		{3, []uint64{1}},
		{4, []uint64{2, 1}},
		{5, []uint64{2, 1}},
		{6, []uint64{3, 1}},
		{7, nil},
		{12, []uint64{9, 7}},
	}
	for _, tt := range tests {
		got, err := causal.Ancestors(context.Background(), s, ids[tt.seq-1])
		if err != nil {
			t.Errorf("Ancestors(#%d): %v", tt.seq, err)
			continue
		}
		if !slices.Equal(seqs(got), tt.want) {
			t.Errorf("Ancestors(#%d) = %v, want %v", tt.seq, seqs(got), tt.want)
		}
	}
	if _, err := causal.Ancestors(context.Background(), s, uuid.New()); !errors.Is(err, batpak.ErrNotFound) {
		t.Errorf("Ancestors(unknown) error = %v, want ErrNotFound", err)
	}
}

func TestDescendants(t *testing.T) {
	s, ids := orderStore(t)
	tests := []struct {
		name    string
		seq     uint64
		opts    []causal.Option
		want    []uint64
		wantErr error
	}{
		{"root", 1, nil, []uint64{2, 3, 4, 5, 6}, nil},
		{"other group", 7, nil, []uint64{8, 9, 10, 11, 12}, nil},
		{"subtree", 2, nil, []uint64{4, 5}, nil},
		{"leaf", 6, nil, nil, nil},
		{"depth 1", 1, []causal.Option{causal.MaxDepth(1)}, []uint64{2, 3}, nil},
		{"depth 0", 1, []causal.Option{causal.MaxDepth(0)}, nil, nil},
		{"negative depth", 1, []causal.Option{causal.MaxDepth(-1)}, []uint64{2, 3, 4, 5, 6}, nil},
		{"kinds", 1, []causal.Option{causal.Kinds(LedgerPosted, ShipmentScheduled)}, []uint64{5, 6}, nil},
		{"kinds and depth", 1, []causal.Option{causal.Kinds(LedgerPosted, StockReserved), causal.MaxDepth(1)}, []uint64{3}, nil},
		{"up is ignored", 1, []causal.Option{causal.Up()}, []uint64{2, 3, 4, 5, 6}, nil},
		{"enough nodes", 1, []causal.Option{causal.MaxNodes(6)}, []uint64{2, 3, 4, 5, 6}, nil},
		{"too many nodes", 1, []causal.Option{causal.MaxNodes(3)}, []uint64{2, 3}, causal.ErrTooManyNodes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := causal.Descendants(context.Background(), s, ids[tt.seq-1], tt.opts...)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if !slices.Equal(seqs(got), tt.want) {
				t.Errorf("Descendants(#%d) = %v, want %v", tt.seq, seqs(got), tt.want)
			}
		})
	}
}

// stepString formats a step as "seq@depth<-from" with from as a sequence.
func stepString(t *testing.T, s causal.Source, st causal.Step) string {
	from := uint64(0)
	if st.From != uuid.Nil {
		r, err := s.Get(context.Background(), st.From)
		if err != nil {
			t.Fatal(err)
		}
		from = r.Sequence
	}
	return fmt.Sprintf("%d@%d<-%d", st.Record.Sequence, st.Depth, from)
}

func TestWalk(t *testing.T) {
	s, ids := orderStore(t)
	tests := []struct {
		name    string
		seq     uint64
		opts    []causal.Option
		want    string
		wantErr error
	}{
		{"down", 1, nil, "1@0<-0 2@1<-1 3@1<-1 4@2<-2 5@2<-2 6@2<-3", nil},
		{"down explicitly", 1, []causal.Option{causal.Down()}, "1@0<-0 2@1<-1 3@1<-1 4@2<-2 5@2<-2 6@2<-3", nil},
		{"down depth 1", 1, []causal.Option{causal.MaxDepth(1)}, "1@0<-0 2@1<-1 3@1<-1", nil},
		{"down kinds", 1, []causal.Option{causal.Kinds(PaymentCaptured, ShipmentScheduled)}, "4@2<-2 6@2<-3", nil},
		{"up", 4, []causal.Option{causal.Up()}, "4@0<-0 2@1<-4 1@2<-2", nil},
		{"up depth 1", 4, []causal.Option{causal.Up(), causal.MaxDepth(1)}, "4@0<-0 2@1<-4", nil},
		{"up depth 0", 4, []causal.Option{causal.Up(), causal.MaxDepth(0)}, "4@0<-0", nil},
		{"up kinds", 6, []causal.Option{causal.Up(), causal.Kinds(OrderPlaced)}, "1@2<-3", nil},
		{"up from root", 1, []causal.Option{causal.Up()}, "1@0<-0", nil},
		{"up guard", 4, []causal.Option{causal.Up(), causal.MaxNodes(2)}, "4@0<-0 2@1<-4", causal.ErrTooManyNodes},
		{"down guard", 1, []causal.Option{causal.MaxNodes(1)}, "1@0<-0", causal.ErrTooManyNodes},
		{"last option wins", 4, []causal.Option{causal.Down(), causal.Up()}, "4@0<-0 2@1<-4 1@2<-2", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			var err error
			for st, e := range causal.Walk(context.Background(), s, ids[tt.seq-1], tt.opts...) {
				if e != nil {
					if err != nil {
						t.Fatalf("second error after %v: %v", err, e)
					}
					err = e
					continue
				}
				if err != nil {
					t.Fatalf("step after error %v", err)
				}
				got = append(got, stepString(t, s, st))
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Errorf("steps = %q, want %q", g, tt.want)
			}
		})
	}
}

func TestWalkStopsEarly(t *testing.T) {
	s, ids := orderStore(t)
	for i, dir := range []causal.Option{causal.Down(), causal.Up()} {
		n := 0
		for _, err := range causal.Walk(context.Background(), s, ids[3], dir) {
			if err != nil {
				t.Fatal(err)
			}
			n++
			break // a yield after this would panic
		}
		if n != 1 {
			t.Errorf("direction %d: %d steps, want 1", i, n)
		}
	}
	for _, err := range causal.Walk(context.Background(), s, uuid.New()) {
		if !errors.Is(err, batpak.ErrNotFound) {
			t.Errorf("Walk(unknown) error = %v, want ErrNotFound", err)
		}
	}
}

func TestCorrelation(t *testing.T) {
	s, ids := orderStore(t)
	for i, id := range ids {
		want := []uint64{1, 2, 3, 4, 5, 6}
		if i >= 6 {
			want = []uint64{7, 8, 9, 10, 11, 12}
		}
		got, err := causal.Correlation(context.Background(), s, id)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(seqs(got), want) {
			t.Errorf("Correlation(#%d) = %v, want %v", i+1, seqs(got), want)
		}
	}
	if _, err := causal.Correlation(context.Background(), s, uuid.New()); !errors.Is(err, batpak.ErrNotFound) {
		t.Errorf("Correlation(unknown) error = %v, want ErrNotFound", err)
	}
}

func TestPath(t *testing.T) {
	s, ids := orderStore(t)
	unknown := uuid.New()
	id := func(seq uint64) uuid.UUID {
		if seq == 0 {
			return unknown
		}
		return ids[seq-1]
	}
	tests := []struct {
		a, b    uint64 // 0: an unknown id
		want    []uint64
		wantErr error
	}{
		{1, 4, []uint64{1, 2, 4}, nil},
		{4, 1, []uint64{4, 2, 1}, nil},
		{1, 6, []uint64{1, 3, 6}, nil},
		{6, 3, []uint64{6, 3}, nil},
		{2, 2, []uint64{2}, nil},
		{2, 3, nil, causal.ErrNoPath},  // siblings
		{4, 6, nil, causal.ErrNoPath},  // cousins
		{4, 5, nil, causal.ErrNoPath},  // siblings in one subtree
		{1, 7, nil, causal.ErrNoPath},  // two groups
		{12, 1, nil, causal.ErrNoPath}, // two groups
		{0, 1, nil, batpak.ErrNotFound},
		{1, 0, nil, batpak.ErrNotFound},
	}
	for _, tt := range tests {
		got, err := causal.Path(context.Background(), s, id(tt.a), id(tt.b))
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("Path(#%d, #%d) error = %v, want %v", tt.a, tt.b, err, tt.wantErr)
			continue
		}
		if !slices.Equal(seqs(got), tt.want) {
			t.Errorf("Path(#%d, #%d) = %v, want %v", tt.a, tt.b, seqs(got), tt.want)
		}
	}
}

// shape returns "seq:[child seqs]" for every node and the root sequences.
func shape(g *causal.Graph) (nodes string, roots []uint64) {
	var b []string
	for _, n := range g.Nodes {
		var cs []string
		for _, c := range n.Children {
			cs = append(cs, fmt.Sprint(c.Record.Sequence))
			if c.Parent != n {
				panic("child without its parent")
			}
		}
		b = append(b, fmt.Sprintf("%d:[%s]", n.Record.Sequence, strings.Join(cs, " ")))
	}
	for _, r := range g.Roots {
		roots = append(roots, r.Record.Sequence)
	}
	return strings.Join(b, " "), roots
}

func TestTrace(t *testing.T) {
	s, ids := orderStore(t)
	for _, traced := range []int{0, 3, 5} {
		g, err := causal.Trace(context.Background(), s, ids[traced])
		if err != nil {
			t.Fatal(err)
		}
		nodes, roots := shape(g)
		if want := "1:[2 3] 2:[4 5] 3:[6] 4:[] 5:[] 6:[]"; nodes != want {
			t.Errorf("nodes = %s, want %s", nodes, want)
		}
		if !slices.Equal(roots, []uint64{1}) {
			t.Errorf("roots = %v, want [1]", roots)
		}
		if g.Traced != ids[traced] || g.Correlation != ids[0] || g.Len() != 6 {
			t.Errorf("traced %v correlation %v len %d", g.Traced, g.Correlation, g.Len())
		}
		if g.Node(ids[4]).Record.Kind != LedgerPosted || g.Node(ids[6]) != nil {
			t.Error("Node lookup")
		}
		if len(g.Dangling) != 0 || len(g.Cycles) != 0 {
			t.Errorf("dangling %v cycles %v", g.Dangling, g.Cycles)
		}
	}
	if _, err := causal.Trace(context.Background(), s, uuid.New()); !errors.Is(err, batpak.ErrNotFound) {
		t.Errorf("Trace(unknown) error = %v, want ErrNotFound", err)
	}
}

func TestWriteText(t *testing.T) {
	s, ids := orderStore(t)
	g, err := causal.Trace(context.Background(), s, ids[3])
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := g.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	sh := func(i int) string { return causal.ShortID(ids[i]) }
	want := fmt.Sprintf(`#1 order:7 v1 1:001 %s
├─ #2 payment:7 v1 1:002 %s
│  ├─ #4 payment:7 v2 1:004 %s ◀ traced
│  └─ #5 ledger:7 v1 2:001 %s
└─ #3 stock:7 v1 1:003 %s
   └─ #6 shipment:7 v1 1:005 %s
`, sh(0), sh(1), sh(3), sh(4), sh(2), sh(5))
	if b.String() != want {
		t.Errorf("text:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestShortID(t *testing.T) {
	id := uuid.MustParse("01900000-0000-7000-8000-0000deadbeef")
	if got := causal.ShortID(id); got != "deadbeef" {
		t.Errorf("ShortID = %q", got)
	}
}

// A real store that holds a causation id naming no event.
func TestDanglingStore(t *testing.T) {
	s := openStore(t)
	missing := uuid.New()
	root, err := appendOne(s, "order:9", OrderPlaced) // #1
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := appendOne(s, "audit:1", LedgerPosted, batpak.WithCausation(missing)) // #2
	if err != nil {
		t.Fatal(err)
	}
	child, err := appendOne(s, "audit:2", LedgerPosted, batpak.WithCausation(orphan)) // #3
	if err != nil {
		t.Fatal(err)
	}
	// #4: in root's group, caused by another missing event.
	missing2 := uuid.New()
	stray, err := appendOne(s, "audit:3", LedgerPosted, batpak.WithCorrelation(root), batpak.WithCausation(missing2))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("Ancestors", func(t *testing.T) {
		got, err := causal.Ancestors(context.Background(), s, child)
		var de *causal.DanglingError
		if !errors.As(err, &de) || !errors.Is(err, causal.ErrDangling) {
			t.Fatalf("error = %v, want a *DanglingError", err)
		}
		if de.Missing != missing || de.Effect != orphan || de.Sequence != 2 {
			t.Errorf("DanglingError = %+v", de)
		}
		if !slices.Equal(seqs(got), []uint64{2}) {
			t.Errorf("ancestors = %v, want [2]", seqs(got))
		}
		if !strings.Contains(err.Error(), missing.String()) {
			t.Errorf("message %q does not name the missing id", err)
		}
	})
	t.Run("Walk", func(t *testing.T) {
		var got []uint64
		var err error
		for st, e := range causal.Walk(context.Background(), s, child, causal.Up()) {
			if e != nil {
				err = e
				break
			}
			got = append(got, st.Record.Sequence)
		}
		if !errors.Is(err, causal.ErrDangling) || !slices.Equal(got, []uint64{3, 2}) {
			t.Errorf("walk = %v, %v", got, err)
		}
		// Bounded before the missing cause: no error.
		for _, err := range causal.Walk(context.Background(), s, child, causal.Up(), causal.MaxDepth(1)) {
			if err != nil {
				t.Errorf("bounded walk: %v", err)
			}
		}
	})
	t.Run("Path", func(t *testing.T) {
		got, err := causal.Path(context.Background(), s, child, orphan)
		if err != nil || !slices.Equal(seqs(got), []uint64{3, 2}) {
			t.Errorf("Path = %v, %v", seqs(got), err)
		}
		if _, err := causal.Path(context.Background(), s, root, child); !errors.Is(err, causal.ErrNoPath) {
			t.Errorf("Path(root, child) error = %v", err)
		}
	})
	t.Run("Trace orphan group", func(t *testing.T) {
		// Without a known cause, the orphan started its own group.
		g, err := causal.Trace(context.Background(), s, child)
		if err != nil {
			t.Fatal(err)
		}
		nodes, roots := shape(g)
		if nodes != "2:[3] 3:[]" || !slices.Equal(roots, []uint64{2}) {
			t.Errorf("nodes %s roots %v", nodes, roots)
		}
		n := g.Node(orphan)
		if !n.Dangling || n.External || n.CycleCut {
			t.Errorf("orphan node %+v", n)
		}
		if want := []causal.Dangling{{Missing: missing, Effect: orphan, Sequence: 2}}; !slices.Equal(g.Dangling, want) {
			t.Errorf("Dangling = %v, want %v", g.Dangling, want)
		}
		var b strings.Builder
		if err := g.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		if want := "(cause " + causal.ShortID(missing) + " missing)"; !strings.Contains(b.String(), want) {
			t.Errorf("text does not say %q:\n%s", want, b.String())
		}
	})
	t.Run("Trace root group", func(t *testing.T) {
		g, err := causal.Trace(context.Background(), s, root)
		if err != nil {
			t.Fatal(err)
		}
		nodes, roots := shape(g)
		if nodes != "1:[] 4:[]" || !slices.Equal(roots, []uint64{1, 4}) {
			t.Errorf("nodes %s roots %v", nodes, roots)
		}
		if want := []causal.Dangling{{Missing: missing2, Effect: stray, Sequence: 4}}; !slices.Equal(g.Dangling, want) {
			t.Errorf("Dangling = %v, want %v", g.Dangling, want)
		}
	})
}

// Events of one Append share the first one's correlation id but only the
// first is a root of the group; the others have no cause, so they are roots
// of the graph too. An event with an explicit correlation id can be caused
// by an event of another group.
func TestTraceSeveralRootsAndExternalCause(t *testing.T) {
	s := openStore(t)
	rs, err := s.Append(t.Context(), batpak.Coordinate{Entity: "order:1", Scope: "shop"}, []batpak.Event{
		{Kind: OrderPlaced}, {Kind: PaymentRequested},
	})
	if err != nil {
		t.Fatal(err)
	}
	b := rs[1].EventID
	c, err := appendOne(s, "stock:1", StockReserved, batpak.WithCausation(b)) // #3, group a
	if err != nil {
		t.Fatal(err)
	}
	other := uuid.New() // a correlation id with no root event
	// #4, caused by c but in the group of other
	e, err := appendOne(s, "ledger:1", LedgerPosted, batpak.WithCausation(c), batpak.WithCorrelation(other))
	if err != nil {
		t.Fatal(err)
	}

	g, err := causal.Trace(context.Background(), s, b)
	if err != nil {
		t.Fatal(err)
	}
	nodes, roots := shape(g)
	if nodes != "1:[] 2:[3] 3:[]" || !slices.Equal(roots, []uint64{1, 2}) {
		t.Errorf("group of a: nodes %s roots %v", nodes, roots)
	}

	g, err = causal.Trace(context.Background(), s, e)
	if err != nil {
		t.Fatal(err)
	}
	nodes, roots = shape(g)
	if nodes != "4:[]" || !slices.Equal(roots, []uint64{4}) || g.Correlation != other {
		t.Errorf("group of e: nodes %s roots %v", nodes, roots)
	}
	if n := g.Node(e); !n.External || n.Dangling || len(g.Dangling) != 0 {
		t.Errorf("e: %+v, dangling %v", n, g.Dangling)
	}

	// Walks follow causation across groups.
	anc, err := causal.Ancestors(context.Background(), s, e)
	if err != nil || !slices.Equal(seqs(anc), []uint64{3, 2}) {
		t.Errorf("Ancestors(e) = %v, %v", seqs(anc), err)
	}
	desc, err := causal.Descendants(context.Background(), s, b)
	if err != nil || !slices.Equal(seqs(desc), []uint64{3, 4}) {
		t.Errorf("Descendants(b) = %v, %v", seqs(desc), err)
	}
	grp, err := causal.Correlation(context.Background(), s, c)
	if err != nil || !slices.Equal(seqs(grp), []uint64{1, 2, 3}) {
		t.Errorf("Correlation(c) = %v, %v", seqs(grp), err)
	}
	var out strings.Builder
	if err := g.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "in another group") {
		t.Errorf("text: %s", out.String())
	}
}
