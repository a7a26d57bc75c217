package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

// inRegion is the suite's own statement of what a region selects, kept
// apart from batpak.Region.Match so the two check each other.
func inRegion(r batpak.Region, rec *batpak.Record) bool {
	switch {
	case r.Entity != "" && rec.Coordinate.Entity != r.Entity,
		!strings.HasPrefix(rec.Coordinate.Entity, r.EntityPrefix),
		r.Scope != "" && rec.Coordinate.Scope != r.Scope,
		len(r.Kinds) > 0 && !slices.Contains(r.Kinds, rec.Kind),
		rec.Sequence < r.FromSequence,
		r.ToSequence != 0 && rec.Sequence > r.ToSequence,
		!r.After.IsZero() && rec.Timestamp.Before(r.After),
		!r.Before.IsZero() && !rec.Timestamp.Before(r.Before):
		return false
	}
	return true
}

func filter(all []batpak.Record, r batpak.Region) []batpak.Record {
	var out []batpak.Record
	for i := range all {
		if inRegion(r, &all[i]) {
			out = append(out, all[i])
		}
	}
	return out
}

// queryData appends 48 events over entities acct:1, acct:2, acct:10 and
// user:1 in scopes eu and us, with three kinds.
func queryData(t *testing.T, s Store) {
	entities := []string{"acct:1", "acct:2", "acct:10", "user:1"}
	kinds := []kind.Kind{kindDeposited, kindWithdrawn, kindNoted}
	for i := range 12 {
		if i == 6 {
			time.Sleep(2 * time.Millisecond) // two distinct timestamps at least
		}
		items := make([]batpak.BatchItem, 0, 2)
		for j, entity := range entities {
			c := batpak.Coordinate{Entity: entity, Scope: []string{"eu", "us"}[(i+j)%2]}
			k := kinds[(i*len(entities)+j)%len(kinds)]
			if j < 2 {
				mustAppend(t, s, c, []batpak.Event{ev(k, i)})
			} else {
				items = append(items, batpak.BatchItem{Coordinate: c, Event: ev(k, i)})
			}
		}
		mustBatch(t, s, items)
	}
}

// testQuery: Query and cursors select exactly the events of a region, in
// commit order, for every kind of region.
func testQuery(t *testing.T, e *env) {
	s := e.s
	queryData(t, s)
	s = e.settle()
	all := collect(t, s.ReadAll(bgctx, 0))
	if len(all) != 48 {
		t.Fatalf("%d events, want 48", len(all))
	}
	checkSameRecords(t, "Query(Region{})", collect(t, s.Query(bgctx, batpak.Region{})), all)
	mid := all[len(all)/2].Timestamp
	tests := []struct {
		name string
		r    batpak.Region
		n    int // events selected, -1: not checked by count
	}{
		{"everything", batpak.Region{}, 48},
		{"entity", batpak.Region{Entity: "acct:1"}, 12},
		{"prefix", batpak.Region{EntityPrefix: "acct:1"}, 24},
		{"wide prefix", batpak.Region{EntityPrefix: "acct:"}, 36},
		{"scope", batpak.Region{Scope: "eu"}, 24},
		{"unknown scope", batpak.Region{Scope: "asia"}, 0},
		{"kind", batpak.Region{Kinds: []kind.Kind{kindDeposited}}, 16},
		{"kinds", batpak.Region{Kinds: []kind.Kind{kindDeposited, kindWithdrawn}}, 32},
		{"absent kind", batpak.Region{Kinds: []kind.Kind{kindOpened}}, 0},
		{"from sequence", batpak.Region{FromSequence: 10}, 39},
		{"to sequence", batpak.Region{ToSequence: 15}, 15},
		{"sequence range", batpak.Region{FromSequence: 10, ToSequence: 15}, 6},
		{"past the end", batpak.Region{FromSequence: 49}, 0},
		{"entity and range", batpak.Region{Entity: "acct:10", FromSequence: 5, ToSequence: 30}, -1},
		{"entity, scope and kinds", batpak.Region{Entity: "acct:2", Scope: "us", Kinds: []kind.Kind{kindNoted, kindDeposited}}, -1},
		{"prefix and scope", batpak.Region{EntityPrefix: "acct:", Scope: "us"}, 18},
		{"entity outside prefix", batpak.Region{Entity: "acct:1", EntityPrefix: "user"}, 0},
		{"unknown entity", batpak.Region{Entity: "acct:3"}, 0},
		{"after", batpak.Region{After: mid}, -1},
		{"before", batpak.Region{Before: mid}, -1},
		{"after and before", batpak.Region{After: all[0].Timestamp, Before: mid, Scope: "eu"}, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := filter(all, tc.r)
			if tc.n >= 0 && len(want) != tc.n {
				t.Fatalf("the suite's own filter selects %d events, want %d", len(want), tc.n)
			}
			for i := range all {
				if tc.r.Match(&all[i]) != inRegion(tc.r, &all[i]) {
					t.Fatalf("Region.Match(sequence %d) = %v", all[i].Sequence, tc.r.Match(&all[i]))
				}
			}
			checkSameRecords(t, "Query", collect(t, s.Query(bgctx, tc.r)), want)
			checkSameRecords(t, "Cursor from 0", drainCursor(t, s.Cursor(tc.r, 0)), want)
			for _, from := range []uint64{7, 30} {
				r := tc.r
				r.FromSequence = max(r.FromSequence, from)
				checkSameRecords(t, fmt.Sprintf("Cursor from %d", from), drainCursor(t, s.Cursor(tc.r, from)), filter(all, r))
			}
		})
	}
}
