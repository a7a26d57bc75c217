package memstore_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/memstore"
)

// TestClock: timestamps come from WithClock's clock, at the stored
// precision (microseconds), and ids keep increasing when it stands still
// or steps back.
func TestClock(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 123_456_789, time.UTC)
	steps := []time.Duration{0, 0, time.Second, -time.Hour, -time.Hour, time.Millisecond}
	i := 0
	s := newStore(t, memstore.WithClock(func() time.Time { return base.Add(steps[i]) }))
	var last batpak.Record
	for i = range steps {
		rs := mustAppend(t, s, co("t", "clock"), evs(kindA, 2))
		for _, r := range rs {
			rec, err := s.Get(bg, r.EventID)
			if err != nil {
				t.Fatal(err)
			}
			want := base.Add(steps[i]).Truncate(time.Microsecond)
			if !rec.Timestamp.Equal(want) {
				t.Fatalf("step %d: timestamp %v, want %v", i, rec.Timestamp, want)
			}
			if rec.Sequence > 1 && bytes.Compare(rec.ID[:], last.ID[:]) <= 0 {
				t.Fatalf("step %d: id %s does not follow %s", i, rec.ID, last.ID)
			}
			if i == 0 {
				if sec, _ := rec.ID.Time().UnixTime(); sec != base.Unix() {
					t.Fatalf("id %s carries time %d, want the clock's %d", rec.ID, sec, base.Unix())
				}
			}
			last = rec
		}
	}
}
