package segment

import "testing"

// A window's first read is reported once; a frame over two windows is a
// first read while either is new; frames too large, and mappings without
// marks, are never read with pread.
func TestPageMarks(t *testing.T) {
	const w = 1 << markShift
	m := newPageMarks(4 * w)
	for _, tc := range []struct {
		from, to int64
		first    bool
	}{
		{100, 400, true}, {500, 900, false}, {0, 8, false},
		{w - 10, w + 10, true}, {w + 20, w + 30, false},
		{3*w - 1, 3*w + 1, true}, {2 * w, 2*w + 1, false}, {3 * w, 3*w + 5, false},
		{0, firstReadMax + 1, false},
	} {
		if got := m.firstRead(tc.from, tc.to); got != tc.first {
			t.Errorf("[%d, %d): first read %v, want %v", tc.from, tc.to, got, tc.first)
		}
	}
	var none *pageMarks
	if none.firstRead(0, 10) {
		t.Error("a mapping without marks reads with pread")
	}
}
