package eventstore

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"
)

func TestSeqList(t *testing.T) {
	for _, tc := range []struct {
		name string
		seqs []uint64
	}{
		{"empty", nil},
		{"narrow", []uint64{1, 2, 7, 1000, math.MaxUint32}},
		{"widened", []uint64{3, 9, math.MaxUint32, math.MaxUint32 + 1, 1 << 40, math.MaxUint64}},
		{"wide from the first", []uint64{math.MaxUint32 + 5, math.MaxUint32 + 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l seqList
			var snaps []seqList
			for _, seq := range tc.seqs {
				snaps = append(snaps, l)
				l.add(seq)
			}
			check := func(what string, l seqList, want []uint64) {
				t.Helper()
				if l.len() != len(want) || !slices.Equal(l.appendTo(nil), want) {
					t.Fatalf("%s: %v, want %v", what, l.appendTo(nil), want)
				}
				for i, seq := range want {
					if l.at(i) != seq || l.search(seq) != i {
						t.Fatalf("%s: at(%d) = %d, search(%d) = %d", what, i, l.at(i), seq, l.search(seq))
					}
				}
				if len(want) > 0 && l.last() != want[len(want)-1] {
					t.Fatalf("%s: last %d", what, l.last())
				}
			}
			check("built", l, tc.seqs)
			check("seqListOf", seqListOf(tc.seqs), tc.seqs)
			for i, s := range snaps { // a list taken before an add never changes
				check("snapshot", s, tc.seqs[:i])
			}
			if wide := len(tc.seqs) > 0 && tc.seqs[len(tc.seqs)-1] > math.MaxUint32; l.wide != wide {
				t.Fatalf("wide %v, want %v", l.wide, wide)
			}
		})
	}
}

func TestSeqListRandom(t *testing.T) {
	seed := rand.Uint64()
	r := rand.New(rand.NewPCG(seed, 0))
	for range 200 {
		var l seqList
		var want []uint64
		seq := uint64(0)
		if r.IntN(4) == 0 {
			seq = math.MaxUint32 - uint64(r.IntN(50))
		}
		for range r.IntN(300) {
			seq += 1 + uint64(r.IntN(3))
			l.add(seq)
			want = append(want, seq)
		}
		if !slices.Equal(l.appendTo(nil), want) {
			t.Fatalf("seed %d: %v, want %v", seed, l.appendTo(nil), want)
		}
	}
}

// TestStreamRecord: a stream's packed fields give back its entity and its
// sequences, narrow then widened, and a list taken before an add keeps
// what it held.
func TestStreamRecord(t *testing.T) {
	var st stream
	if n := unsafe.Sizeof(st); n != 40 && unsafe.Sizeof(uintptr(0)) == 8 {
		t.Fatalf("a stream takes %d bytes, its doc says 40", n)
	}
	st.setEntity("account:42")
	seqs := []uint64{1, 5, math.MaxUint32, math.MaxUint32 + 1, 1 << 40}
	var snaps []seqList
	for i, seq := range seqs {
		snaps = append(snaps, st.list())
		st.add(seq)
		if st.version() != uint64(i+1) || st.list().last() != seq {
			t.Fatalf("after %d adds: version %d, last %d", i+1, st.version(), st.list().last())
		}
	}
	if st.entity() != "account:42" || !slices.Equal(st.list().appendTo(nil), seqs) || !st.list().wide {
		t.Fatalf("entity %q, sequences %v (wide %v)", st.entity(), st.list().appendTo(nil), st.list().wide)
	}
	for i, l := range snaps {
		if !slices.Equal(l.appendTo(nil), seqs[:i]) {
			t.Fatalf("list taken after %d adds holds %v", i, l.appendTo(nil))
		}
	}
	st.setList(seqListOf([]uint64{2, 3}))
	if st.state.Load()&stateWide != 0 || !slices.Equal(st.list().appendTo(nil), []uint64{2, 3}) {
		t.Fatalf("after setList: %v, wide %v", st.list().appendTo(nil), st.state.Load()&stateWide != 0)
	}
}
