package eventstore

import (
	"math"
	"sort"
)

// seqList is a stream's global sequences, ascending: version v is at(v-1).
// A sequence takes 4 bytes while it fits in 32 bits, as every sequence of a
// store of fewer than 2^32 events does; a stream that gets a larger one is
// widened to two words a sequence. A seqList taken under the index's lock
// is a snapshot: its elements are never modified.
type seqList struct {
	w    []uint32
	wide bool // two words a sequence, high word first
}

// seqListOf returns the list of the ascending sequences seqs.
func seqListOf(seqs []uint64) seqList {
	var l seqList
	if n := len(seqs); n > 0 && seqs[n-1] > math.MaxUint32 {
		l.w, l.wide = make([]uint32, 0, 2*n), true
	} else {
		l.w = make([]uint32, 0, n)
	}
	for _, seq := range seqs {
		l.add(seq)
	}
	return l
}

func (l seqList) len() int {
	if l.wide {
		return len(l.w) / 2
	}
	return len(l.w)
}

// at returns the sequence of version i+1.
func (l seqList) at(i int) uint64 {
	if l.wide {
		return uint64(l.w[2*i])<<32 | uint64(l.w[2*i+1])
	}
	return uint64(l.w[i])
}

// last returns the last sequence; the list must not be empty.
func (l seqList) last() uint64 { return l.at(l.len() - 1) }

// search returns the index of the first sequence ≥ seq (len() if none).
func (l seqList) search(seq uint64) int {
	return sort.Search(l.len(), func(i int) bool { return l.at(i) >= seq })
}

// add appends seq, which is above every sequence in the list.
func (l *seqList) add(seq uint64) {
	if seq > math.MaxUint32 && !l.wide {
		w := make([]uint32, 2*len(l.w), 2*cap(l.w)+2)
		for i, s := range l.w {
			w[2*i+1] = s
		}
		l.w, l.wide = w, true
	}
	if l.wide {
		l.w = append(l.w, uint32(seq>>32), uint32(seq))
		return
	}
	l.w = append(l.w, uint32(seq))
}

// appendTo appends the sequences to dst.
func (l seqList) appendTo(dst []uint64) []uint64 {
	for i := range l.len() {
		dst = append(dst, l.at(i))
	}
	return dst
}
