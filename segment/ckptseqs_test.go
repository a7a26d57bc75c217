package segment

import (
	"bytes"
	"slices"
	"testing"
)

// TestSeqWriterWidths: the section holds every list in its own width,
// whatever the list's: narrow lists widen in a wide checkpoint, and wide
// lists of small sequences narrow in a narrow one. Parts are whole chunks
// of seqChunk bytes, then the rest, then one checksum per chunk.
func TestSeqWriterWidths(t *testing.T) {
	for _, tc := range []struct {
		name       string
		wide, list bool
		in, want   []uint32
	}{
		{"narrow in narrow", false, false, []uint32{1, 5, 9}, []uint32{1, 5, 9}},
		{"narrow in wide", true, false, []uint32{1, 5}, []uint32{0, 1, 0, 5}},
		{"wide in wide", true, true, []uint32{0, 1, 2, 7}, []uint32{0, 1, 2, 7}},
		{"wide in narrow", false, true, []uint32{0, 3, 0, 8}, []uint32{3, 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var parts [][]byte
			w := seqWriter{wide: tc.wide, chunkWriter: chunkWriter{yield: func(b []byte) bool { parts = append(parts, bytes.Clone(b)); return true }}}
			w.write(tc.in, tc.list)
			w.finish()
			if len(parts) != 2 || len(parts[1]) != 4 {
				t.Fatalf("%d parts", len(parts))
			}
			var got []uint32
			for i := 0; i < len(parts[0]); i += 4 {
				got = append(got, uint32(parts[0][i])|uint32(parts[0][i+1])<<8|uint32(parts[0][i+2])<<16|uint32(parts[0][i+3])<<24)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("words %v, want %v", got, tc.want)
			}
		})
	}
	var parts [][]byte
	w := seqWriter{chunkWriter: chunkWriter{yield: func(b []byte) bool { parts = append(parts, bytes.Clone(b)); return true }}}
	w.write(make([]uint32, seqChunk/4+3), false)
	w.finish()
	if len(parts) != 3 || len(parts[0]) != seqChunk || len(parts[1]) != 12 || len(parts[2]) != 8 {
		t.Fatalf("parts of %d, %d, %d bytes", len(parts[0]), len(parts[1]), len(parts[2]))
	}
}
