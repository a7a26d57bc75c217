package eventstore

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
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
