package storetest

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

// Three releases of one app's event type: release 1 wrote an amount in
// whole units with msgpack; release 2 counts cents; release 3 adds a
// currency and writes JSON.
type (
	depositV1 struct{ Amount int }
	depositV2 struct{ Cents int }
	depositV3 struct {
		Cents    int
		Currency string
	}
)

var kindDeposit = kind.Custom(3, 1)

// releases returns the registries of the three releases.
func releases() [3]*batpak.Registry {
	v1to2 := batpak.Upcast(func(v depositV1) (depositV2, error) { return depositV2{Cents: v.Amount * 100}, nil })
	v2to3 := batpak.Upcast(func(v depositV2) (depositV3, error) { return depositV3{Cents: v.Cents, Currency: "EUR"}, nil })
	var r [3]*batpak.Registry
	for i := range r {
		r[i] = batpak.NewRegistry()
	}
	batpak.MustRegister[depositV1](r[0], kindDeposit, "test.Deposited")
	batpak.MustRegister[depositV2](r[1], kindDeposit, "test.Deposited", v1to2)
	batpak.MustRegister[depositV3](r[2], kindDeposit, "test.Deposited", v1to2, v2to3, batpak.WithCodec(batpak.JSON))
	return r
}

// testSchemaEvolution: events of one type written by three releases of
// an app (three registries: three schema versions, two codecs) keep the
// schema version and codec they were written with, on every read path
// and after a reopen, so the latest release's registry decodes every one
// of them to its current type, and an older release refuses what a newer
// one wrote instead of misreading it.
func testSchemaEvolution(t *testing.T, e *env) {
	s := e.s
	rel := releases()
	c := coord("evolve:a")
	writes := []any{depositV1{Amount: 1}, depositV2{Cents: 250}, depositV3{Cents: 399, Currency: "CHF"}}
	for i, v := range writes {
		ev, err := rel[i].Event(v)
		if err != nil {
			t.Fatal(err)
		}
		mustAppend(t, s, c, []batpak.Event{ev})
		mustBatch(t, s, []batpak.BatchItem{{Coordinate: coord("evolve:b"), Event: ev}})
	}
	// The library's metadata keys are checked on every backend: another
	// "batpak." key, or a schema that does not parse, is refused.
	for _, meta := range []map[string]string{{"batpak.other": "x"}, {batpak.MetaSchema: "0"}, {batpak.MetaCodec: "A B"}} {
		_, err := s.Append(bgctx, c, []batpak.Event{{Kind: kindDeposit, Metadata: meta}})
		wantErrIs(t, err, batpak.ErrInvalidMetadata, fmt.Sprintf("an append with metadata %v", meta))
	}
	want := []depositV3{{100, "EUR"}, {250, "EUR"}, {399, "CHF"}}
	s = e.settle()
	check := func(s Store, when string) {
		t.Helper()
		reads := map[string][]batpak.Record{
			"ReadStream": collect(t, s.ReadStream(bgctx, c, 0)),
			"ReadAll":    ofStream(collect(t, s.ReadAll(bgctx, 0)), c),
			"Query":      collect(t, s.Query(bgctx, batpak.Region{Entity: c.Entity, Kinds: []kind.Kind{kindDeposit}})),
			"Cursor":     drainCursor(t, s.Cursor(batpak.Region{Entity: c.Entity}, 0)),
		}
		for path, recs := range reads {
			if len(recs) != len(want) {
				t.Fatalf("%s: %s read %d events, want %d", when, path, len(recs), len(want))
			}
			for i := range recs {
				got, err := rel[2].Decode(&recs[i])
				if err != nil {
					t.Fatalf("%s: %s: release 3 decodes event %d: %v", when, path, i, err)
				}
				if !reflect.DeepEqual(got, want[i]) {
					t.Fatalf("%s: %s: event %d decodes to %#v, want %#v", when, path, i, got, want[i])
				}
				sch, err := batpak.ParseSchema(recs[i].Metadata)
				if err != nil || int(sch.Version) != i+1 {
					t.Fatalf("%s: %s: event %d records schema %+v (%v), want version %d", when, path, i, sch, err, i+1)
				}
			}
		}
		recs := reads["ReadStream"]
		// Release 2 reads versions 1 and 2 and refuses 3.
		if got, err := rel[1].Decode(&recs[0]); err != nil || got != (depositV2{Cents: 100}) {
			t.Fatalf("%s: release 2 decodes version 1 as %#v, %v", when, got, err)
		}
		_, err := rel[1].Decode(&recs[2])
		wantErrIs(t, err, batpak.ErrSchema, fmt.Sprintf("%s: release 2 decoding what release 3 wrote", when))
	}
	check(s, "as written")
	if e.h.Reopen != nil {
		check(e.reopen(), "after a reopen")
	}
}

// ofStream returns the records of the stream c.
func ofStream(recs []batpak.Record, c batpak.Coordinate) []batpak.Record {
	var out []batpak.Record
	for _, r := range recs {
		if r.Coordinate == c {
			out = append(out, r)
		}
	}
	return out
}
