package huge_test

import (
	"testing"

	"github.com/batpak-go/batpak/internal/huge"
)

// TestMake: a slice of every size, huge-page-aligned parts or none, is
// zeroed, of the length asked for, and holds what is written to it.
func TestMake(t *testing.T) {
	for _, n := range []int{0, 1, 4095, 3 << 20, 5<<20 + 7} {
		s := huge.Make[uint32](n)
		if len(s) != n {
			t.Fatalf("Make(%d): length %d", n, len(s))
		}
		for i, v := range s {
			if v != 0 {
				t.Fatalf("Make(%d): element %d is %d", n, i, v)
			}
		}
		for i := range s {
			s[i] = uint32(i)
		}
		for i, v := range s {
			if v != uint32(i) {
				t.Fatalf("Make(%d): element %d reads %d", n, i, v)
			}
		}
	}
}
