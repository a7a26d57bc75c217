package causal_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/causal"
	"github.com/batpak-go/batpak/kind"
)

// fakeSource is an in-memory Source whose links are whatever the test
// says, cycles included, with deterministic ids and timestamps.
type fakeSource struct {
	recs     []batpak.Record // recs[i] has sequence i+1
	versions map[string]uint64
	fail     map[uuid.UUID]error // Get of these ids fails
	failSeq  map[uint64]error    // GetSequence of these sequences fails
}

func newFake() *fakeSource {
	return &fakeSource{versions: map[string]uint64{}, fail: map[uuid.UUID]error{}, failSeq: map[uint64]error{}}
}

// fid returns the deterministic id number n.
func fid(n int) uuid.UUID { return uuid.MustParse(fmt.Sprintf("01900000-0000-7000-8000-%012d", n)) }

// add appends an event with id fid(n), sequence len+1.
func (f *fakeSource) add(n int, entity string, k kind.Kind, cause, corr uuid.UUID) {
	f.versions[entity]++
	seq := uint64(len(f.recs) + 1)
	f.recs = append(f.recs, batpak.Record{
		Coordinate:    batpak.Coordinate{Entity: entity, Scope: "test"},
		ID:            fid(n),
		CorrelationID: corr,
		CausationID:   cause,
		Kind:          k,
		Timestamp:     time.Date(2025, 1, 2, 3, 4, 5, int(seq)*1000, time.UTC),
		Sequence:      seq,
		Version:       f.versions[entity],
	})
}

func (f *fakeSource) Get(_ context.Context, id uuid.UUID) (batpak.Record, error) {
	if err := f.fail[id]; err != nil {
		return batpak.Record{}, err
	}
	for _, r := range f.recs {
		if r.ID == id {
			return r, nil
		}
	}
	return batpak.Record{}, fmt.Errorf("%w: event %s", batpak.ErrNotFound, id)
}

func (f *fakeSource) GetSequence(_ context.Context, seq uint64) (batpak.Record, error) {
	if err := f.failSeq[seq]; err != nil {
		return batpak.Record{}, err
	}
	if seq == 0 || seq > uint64(len(f.recs)) {
		return batpak.Record{}, fmt.Errorf("%w: sequence %d", batpak.ErrNotFound, seq)
	}
	return f.recs[seq-1], nil
}

func (f *fakeSource) Correlated(id uuid.UUID) []uint64 {
	var out []uint64
	for _, r := range f.recs {
		if r.CorrelationID == id && r.ID != id {
			out = append(out, r.Sequence)
		}
	}
	return out
}

func (f *fakeSource) CausedBy(id uuid.UUID) []uint64 {
	var out []uint64
	for _, r := range f.recs {
		if r.CausationID == id {
			out = append(out, r.Sequence)
		}
	}
	return out
}

var kindA = kind.Custom(1, 1)

// cyclic returns a source whose group fid(1) holds:
//
//	#1 a caused by #2, #2 b caused by #1 (a cycle), #3 c caused by #2,
//	#4 d caused by itself, #5 r a root, #6 s caused by #5.
func cyclic() *fakeSource {
	f := newFake()
	g := fid(1)
	f.add(1, "a", kindA, fid(2), g)
	f.add(2, "b", kindA, fid(1), g)
	f.add(3, "c", kindA, fid(2), g)
	f.add(4, "d", kindA, fid(4), g)
	f.add(5, "r", kindA, uuid.Nil, g)
	f.add(6, "s", kindA, fid(5), g)
	return f
}

func TestCycleTrace(t *testing.T) {
	f := cyclic()
	for _, traced := range []int{1, 3, 4, 6} {
		g, err := causal.Trace(context.Background(), f, fid(traced))
		if err != nil {
			t.Fatal(err)
		}
		nodes, roots := shape(g)
		if want := "1:[2] 2:[3] 3:[] 4:[] 5:[6] 6:[]"; nodes != want {
			t.Errorf("nodes = %s, want %s", nodes, want)
		}
		if !slices.Equal(roots, []uint64{1, 4, 5}) {
			t.Errorf("roots = %v", roots)
		}
		var cycles []string
		for _, c := range g.Cycles {
			var s []string
			for _, n := range c {
				s = append(s, fmt.Sprint(n.Record.Sequence))
			}
			cycles = append(cycles, strings.Join(s, ">"))
		}
		if got := strings.Join(cycles, " "); got != "1>2 4" {
			t.Errorf("cycles = %q, want %q", got, "1>2 4")
		}
		if !g.Node(fid(1)).CycleCut || !g.Node(fid(4)).CycleCut || g.Node(fid(5)).CycleCut {
			t.Error("CycleCut flags")
		}
	}
	g, _ := causal.Trace(context.Background(), f, fid(1))
	var b strings.Builder
	if err := g.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := `#1 a v1 1:001 00000001 (cycle: caused by #2) ◀ traced
└─ #2 b v1 1:001 00000002
   └─ #3 c v1 1:001 00000003
#4 d v1 1:001 00000004 (cycle: caused by #4)
#5 r v1 1:001 00000005
└─ #6 s v1 1:001 00000006
`
	if b.String() != want {
		t.Errorf("text:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := g.WriteDOT(&b); err != nil {
		t.Fatal(err)
	}
	checkDOT(t, b.String())
	if !strings.Contains(b.String(), `"n2" -> "n1" [style=dashed, color=red, label="cycle"];`) {
		t.Errorf("DOT without the cut edge:\n%s", b.String())
	}
}

func TestCycleWalks(t *testing.T) {
	f := cyclic()
	tests := []struct {
		name      string
		run       func() ([]batpak.Record, error)
		want      []uint64
		wantCycle []uint64 // nil: no error
	}{
		{"ancestors in cycle", func() ([]batpak.Record, error) { return causal.Ancestors(context.Background(), f, fid(1)) }, []uint64{2}, []uint64{1, 2}},
		{"ancestors off cycle", func() ([]batpak.Record, error) { return causal.Ancestors(context.Background(), f, fid(3)) }, []uint64{2, 1}, []uint64{1, 2}},
		{"ancestors self", func() ([]batpak.Record, error) { return causal.Ancestors(context.Background(), f, fid(4)) }, nil, []uint64{4}},
		{"ancestors no cycle", func() ([]batpak.Record, error) { return causal.Ancestors(context.Background(), f, fid(6)) }, []uint64{5}, nil},
		{"descendants in cycle", func() ([]batpak.Record, error) { return causal.Descendants(context.Background(), f, fid(1)) }, []uint64{2}, []uint64{1, 2}},
		{"descendants from b", func() ([]batpak.Record, error) { return causal.Descendants(context.Background(), f, fid(2)) }, []uint64{1, 3}, []uint64{1, 2}},
		{"descendants self", func() ([]batpak.Record, error) { return causal.Descendants(context.Background(), f, fid(4)) }, nil, []uint64{4}},
		{"descendants no cycle", func() ([]batpak.Record, error) { return causal.Descendants(context.Background(), f, fid(5)) }, []uint64{6}, nil},
		{"path into cycle", func() ([]batpak.Record, error) { return causal.Path(context.Background(), f, fid(3), fid(1)) }, []uint64{3, 2, 1}, nil},
		{"path out of cycle", func() ([]batpak.Record, error) { return causal.Path(context.Background(), f, fid(1), fid(3)) }, []uint64{1, 2, 3}, nil},
		{"correlation", func() ([]batpak.Record, error) { return causal.Correlation(context.Background(), f, fid(4)) }, []uint64{1, 2, 3, 4, 5, 6}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.run()
			if tt.wantCycle == nil {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				var ce *causal.CycleError
				if !errors.As(err, &ce) || !errors.Is(err, causal.ErrCycle) {
					t.Fatalf("error = %v, want a *CycleError", err)
				}
				if !slices.Equal(ce.Sequences, tt.wantCycle) || len(ce.IDs) != len(ce.Sequences) {
					t.Errorf("cycle = %v %v, want %v", ce.Sequences, ce.IDs, tt.wantCycle)
				}
				if ce.IDs[0] != f.recs[ce.Sequences[0]-1].ID {
					t.Errorf("cycle ids %v do not match sequences %v", ce.IDs, ce.Sequences)
				}
			}
			if !slices.Equal(seqs(got), tt.want) {
				t.Errorf("records = %v, want %v", seqs(got), tt.want)
			}
		})
	}
	// Neither of two events on unrelated cycles causes the other.
	if _, err := causal.Path(context.Background(), f, fid(1), fid(4)); !errors.Is(err, causal.ErrNoPath) {
		t.Errorf("Path(a, d) error = %v", err)
	}
	if got := (&causal.CycleError{Sequences: []uint64{1, 2}}).Error(); got != "causal: causation cycle through events #1 #2" {
		t.Errorf("message %q", got)
	}
}

// The source's own errors are returned, not taken for missing events.
func TestSourceErrors(t *testing.T) {
	boom := errors.New("boom")
	f := newFake()
	f.add(1, "a", kindA, uuid.Nil, fid(1))
	f.add(2, "b", kindA, fid(1), fid(1))
	f.add(3, "c", kindA, fid(9), fid(1)) // cause outside the group
	f.fail[fid(9)] = boom
	f.failSeq[2] = boom

	if _, err := causal.Trace(context.Background(), f, fid(1)); !errors.Is(err, boom) {
		t.Errorf("Trace error = %v", err)
	}
	if _, err := causal.Correlation(context.Background(), f, fid(1)); !errors.Is(err, boom) {
		t.Errorf("Correlation error = %v", err)
	}
	if _, err := causal.Descendants(context.Background(), f, fid(1)); !errors.Is(err, boom) {
		t.Errorf("Descendants error = %v", err)
	}
	if _, err := causal.Ancestors(context.Background(), f, fid(3)); !errors.Is(err, boom) || errors.Is(err, causal.ErrDangling) {
		t.Errorf("Ancestors error = %v", err)
	}
	if _, err := causal.Path(context.Background(), f, fid(1), fid(3)); !errors.Is(err, boom) {
		t.Errorf("Path error = %v", err)
	}
	delete(f.failSeq, 2)
	g, err := causal.Trace(context.Background(), f, fid(2))
	if !errors.Is(err, boom) || g != nil {
		t.Errorf("Trace = %v, %v", g, err)
	}
	delete(f.fail, fid(9))
	if g, err = causal.Trace(context.Background(), f, fid(2)); err != nil || len(g.Dangling) != 1 || g.Dangling[0].Missing != fid(9) {
		t.Errorf("Trace = %+v, %v", g, err)
	}
}

// An event without a correlation id is a group of its own; a correlation
// id whose root does not exist still makes a group.
func TestOddCorrelations(t *testing.T) {
	f := newFake()
	f.add(1, "a", kindA, uuid.Nil, uuid.Nil)
	f.add(2, "b", kindA, fid(1), fid(99))
	f.add(3, "c", kindA, fid(2), fid(99))
	f.add(4, "d", kindA, uuid.Nil, fid(1)) // claims a's id as correlation
	got, err := causal.Correlation(context.Background(), f, fid(1))
	if err != nil || !slices.Equal(seqs(got), []uint64{1}) {
		t.Errorf("Correlation(a) = %v, %v", seqs(got), err)
	}
	got, err = causal.Correlation(context.Background(), f, fid(3))
	if err != nil || !slices.Equal(seqs(got), []uint64{2, 3}) {
		t.Errorf("Correlation(c) = %v, %v", seqs(got), err)
	}
	got, err = causal.Correlation(context.Background(), f, fid(4))
	if err != nil || !slices.Equal(seqs(got), []uint64{4}) {
		t.Errorf("Correlation(d) = %v, %v", seqs(got), err)
	}
	g, err := causal.Trace(context.Background(), f, fid(3))
	if err != nil {
		t.Fatal(err)
	}
	if nodes, roots := shape(g); nodes != "2:[3] 3:[]" || !slices.Equal(roots, []uint64{2}) || !g.Node(fid(2)).External {
		t.Errorf("nodes %s roots %v", nodes, roots)
	}
}

func TestWriteJSON(t *testing.T) {
	f := newFake()
	f.add(1, "order:1", kind.Custom(1, 1), uuid.Nil, fid(1))
	f.add(2, "pay:1", kind.Custom(1, 2), fid(1), fid(1))
	f.add(3, "audit:1", kind.Custom(2, 1), fid(77), fid(1))
	f.add(4, "loop", kind.Custom(2, 1), fid(4), fid(1))
	g, err := causal.Trace(context.Background(), f, fid(2))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := g.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	want := `{
  "traced": "01900000-0000-7000-8000-000000000002",
  "correlation": "01900000-0000-7000-8000-000000000001",
  "roots": [
    "01900000-0000-7000-8000-000000000001",
    "01900000-0000-7000-8000-000000000003",
    "01900000-0000-7000-8000-000000000004"
  ],
  "nodes": [
    {
      "id": "01900000-0000-7000-8000-000000000001",
      "sequence": 1,
      "entity": "order:1",
      "scope": "test",
      "version": 1,
      "kind": "1:001",
      "type": "",
      "causation": null,
      "correlation": "01900000-0000-7000-8000-000000000001",
      "timestamp": "2025-01-02T03:04:05.000001Z",
      "children": [
        "01900000-0000-7000-8000-000000000002"
      ]
    },
    {
      "id": "01900000-0000-7000-8000-000000000002",
      "sequence": 2,
      "entity": "pay:1",
      "scope": "test",
      "version": 1,
      "kind": "1:002",
      "type": "",
      "causation": "01900000-0000-7000-8000-000000000001",
      "correlation": "01900000-0000-7000-8000-000000000001",
      "timestamp": "2025-01-02T03:04:05.000002Z",
      "children": []
    },
    {
      "id": "01900000-0000-7000-8000-000000000003",
      "sequence": 3,
      "entity": "audit:1",
      "scope": "test",
      "version": 1,
      "kind": "2:001",
      "type": "",
      "causation": "01900000-0000-7000-8000-000000000077",
      "correlation": "01900000-0000-7000-8000-000000000001",
      "timestamp": "2025-01-02T03:04:05.000003Z",
      "children": []
    },
    {
      "id": "01900000-0000-7000-8000-000000000004",
      "sequence": 4,
      "entity": "loop",
      "scope": "test",
      "version": 1,
      "kind": "2:001",
      "type": "",
      "causation": "01900000-0000-7000-8000-000000000004",
      "correlation": "01900000-0000-7000-8000-000000000001",
      "timestamp": "2025-01-02T03:04:05.000004Z",
      "children": []
    }
  ],
  "dangling": [
    {
      "missing": "01900000-0000-7000-8000-000000000077",
      "id": "01900000-0000-7000-8000-000000000003",
      "sequence": 3
    }
  ],
  "cycles": [
    [
      "01900000-0000-7000-8000-000000000004"
    ]
  ]
}
`
	if b.String() != want {
		t.Errorf("JSON:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestWriteJSONEmptyLists(t *testing.T) {
	f := newFake()
	f.add(1, "a", kindA, uuid.Nil, fid(1))
	g, err := causal.Trace(context.Background(), f, fid(1))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := g.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"dangling": []`, `"cycles": []`, `"children": []`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("JSON lacks %s:\n%s", want, b.String())
		}
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

func TestWriteErrors(t *testing.T) {
	g, err := causal.Trace(context.Background(), cyclic(), fid(1))
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk full")
	for name, write := range map[string]func(w failWriter) error{
		"text": func(w failWriter) error { return g.WriteText(w) },
		"dot":  func(w failWriter) error { return g.WriteDOT(w) },
		"json": func(w failWriter) error { return g.WriteJSON(w) },
	} {
		if err := write(failWriter{boom}); !errors.Is(err, boom) {
			t.Errorf("%s: error = %v", name, err)
		}
	}
}
