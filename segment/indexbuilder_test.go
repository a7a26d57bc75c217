package segment_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/batpak-go/batpak/segment"
)

// TestIndexBuilderMatchesAppendFooter builds footers an entry at a time
// and checks that they are the bytes AppendFooter writes for the whole
// index, for the sample index and for seeded random segments.
func TestIndexBuilderMatchesAppendFooter(t *testing.T) {
	indexes := []*segment.Index{sampleIndex(), {}}
	seed := rand.Uint64()
	r := rand.New(rand.NewPCG(seed, 0))
	for range 20 {
		indexes = append(indexes, internedIndex(r))
	}
	for i, ix := range indexes {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			want, err := segment.AppendFooter(nil, 7, 1<<20, ix)
			if err != nil {
				t.Fatal(err)
			}
			var b segment.IndexBuilder
			for j := range ix.Entries {
				e := ix.Entries[j]
				// Intern as the entries come, in the order a
				// store does: the builder's strings are then the
				// index's strings.
				e.Entity, e.Scope = b.Strings.ID(ix.Strings[e.Entity]), b.Strings.ID(ix.Strings[e.Scope])
				b.Add(&e)
			}
			if b.Len() != len(ix.Entries) {
				t.Fatalf("Len = %d, want %d", b.Len(), len(ix.Entries))
			}
			rest := *ix
			rest.Tails = append([]segment.StreamTail(nil), ix.Tails...)
			for k := range rest.Tails {
				tl := &rest.Tails[k]
				tl.Entity, tl.Scope = b.Strings.ID(ix.Strings[tl.Entity]), b.Strings.ID(ix.Strings[tl.Scope])
			}
			rest.Deleted = append([]segment.StreamRef(nil), ix.Deleted...)
			for k := range rest.Deleted {
				d := &rest.Deleted[k]
				d.Entity, d.Scope = b.Strings.ID(ix.Strings[d.Entity]), b.Strings.ID(ix.Strings[d.Scope])
			}
			got, err := b.AppendFooter(nil, 7, 1<<20, &rest)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("seed %d: the built footer (%d bytes) differs from AppendFooter's (%d bytes)", seed, len(got), len(want))
			}
		})
	}
}

// internedIndex returns an index of up to 300 entries over a few streams
// whose strings are interned in the order the entries, tails and deleted
// streams name them, as a store interns them.
func internedIndex(r *rand.Rand) *segment.Index {
	var st segment.StringTable
	ix := &segment.Index{}
	off := uint32(segment.HeaderSize)
	versions := map[[2]string]uint64{}
	seq := uint64(r.IntN(1000) + 1)
	for range r.IntN(300) {
		name := [2]string{fmt.Sprint("e", r.IntN(20)), fmt.Sprint("s", r.IntN(3))}
		versions[name]++
		e := segment.IndexEntry{
			Seq: seq, Version: versions[name], Timestamp: int64(r.Uint64() >> 12),
			ID: id16(byte(r.IntN(256))), Kind: uint16(r.IntN(3)), Segment: 7, Offset: off, Length: uint32(r.IntN(400) + 10),
			Entity: st.ID(name[0]), Scope: st.ID(name[1]),
		}
		e.Correlation = e.ID
		if r.IntN(3) == 0 {
			e.Correlation, e.Causation = id16(byte(r.IntN(4))), id16(byte(r.IntN(4)))
		}
		if r.IntN(10) == 0 {
			e.Flags = segment.EntryDeleted
		}
		if r.IntN(10) != 0 {
			off += e.Length
		}
		seq += uint64(1 + r.IntN(2))
		ix.Entries = append(ix.Entries, e)
	}
	for name, v := range versions {
		ix.Tails = append(ix.Tails, segment.StreamTail{Entity: st.ID(name[0]), Scope: st.ID(name[1]), Version: v, LastHash: [32]byte{byte(v)}})
	}
	ix.Deleted = append(ix.Deleted, segment.StreamRef{Entity: st.ID("gone"), Scope: st.ID("s0")})
	ix.Keys = []segment.IdempotencyRecord{{Key: "k", First: 1, Count: 1}}
	ix.Strings = st.Strings
	return ix
}
