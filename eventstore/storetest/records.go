package storetest

import (
	"reflect"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
)

// testGet: Get finds every event by id, unknown ids and sequences are
// ErrNotFound, and ids are distinct UUIDv7s.
func testGet(t *testing.T, e *env) {
	s := e.s
	var rs []batpak.Receipt
	for i := range 5 {
		rs = append(rs, mustAppend(t, s, coord("get:a"), evs(kindDeposited, 1+i%2))...)
		rs = append(rs, mustBatch(t, s, []batpak.BatchItem{{Coordinate: coord("get:b"), Event: ev(kindNoted, i)}})...)
	}
	s = e.settle()
	all := collect(t, s.ReadAll(bgctx, 0))
	ids := make(map[uuid.UUID]bool)
	for i, r := range rs {
		rec, err := s.Get(bgctx, r.EventID)
		if err != nil {
			t.Fatalf("Get(%s): %v", r.EventID, err)
		}
		checkReceipt(t, &rec, &rs[i])
		if d := diffRecord(&rec, &all[r.Sequence-1]); d != "" {
			t.Fatalf("Get(%s) differs from ReadAll: %s", r.EventID, d)
		}
		if rec.ID.Version() != 7 || ids[rec.ID] {
			t.Fatalf("event id %s is not a new UUIDv7", rec.ID)
		}
		ids[rec.ID] = true
	}
	for _, id := range []uuid.UUID{uuid.Nil, uuid.New(), uuid.Must(uuid.NewV7())} {
		_, err := s.Get(bgctx, id)
		wantErrIs(t, err, batpak.ErrNotFound, "Get of an unknown id")
	}
	for _, seq := range []uint64{0, s.LastSequence() + 1, 1 << 62} {
		_, err := s.GetSequence(bgctx, seq)
		wantErrIs(t, err, batpak.ErrNotFound, "GetSequence out of range")
	}
}

// testCorrelation: the first event of an append is the root of a new
// correlation group unless the append names a correlation or a known cause,
// whose group it then joins.
func testCorrelation(t *testing.T, e *env) {
	s := e.s
	get := func(s Store, r batpak.Receipt) batpak.Record {
		t.Helper()
		rec, err := s.Get(bgctx, r.EventID)
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	a := mustAppend(t, s, coord("corr:x"), evs(kindOpened, 2))
	b := mustAppend(t, s, coord("corr:y"), evs(kindDeposited, 1), batpak.WithCausation(a[1].EventID))
	c := mustAppend(t, s, coord("corr:z"), evs(kindDeposited, 2), batpak.WithCausation(b[0].EventID))
	custom := uuid.Must(uuid.NewV7())
	d := mustAppend(t, s, coord("corr:x"), evs(kindNoted, 1), batpak.WithCorrelation(custom), batpak.WithCausation(a[0].EventID))
	unknown := uuid.Must(uuid.NewV7())
	u := mustAppend(t, s, coord("corr:w"), evs(kindNoted, 1), batpak.WithCausation(unknown))
	custom2 := uuid.Must(uuid.NewV7())
	f := mustBatch(t, s, []batpak.BatchItem{
		{Coordinate: coord("corr:p"), Event: ev(kindNoted, 0), CausationID: c[0].EventID},
		{Coordinate: coord("corr:q"), Event: ev(kindNoted, 1)},
		{Coordinate: coord("corr:r"), Event: ev(kindNoted, 2), CorrelationID: custom2},
	}, batpak.WithCausation(b[0].EventID))
	g := mustBatch(t, s, []batpak.BatchItem{
		{Coordinate: coord("corr:p"), Event: ev(kindNoted, 3)},
		{Coordinate: coord("corr:q"), Event: ev(kindNoted, 4)},
	})
	s = e.settle()

	root := a[0].EventID
	tests := []struct {
		name        string
		r           batpak.Receipt
		correlation uuid.UUID
		causation   uuid.UUID
	}{
		{"root", a[0], root, uuid.Nil},
		{"second event of the root's append", a[1], root, uuid.Nil},
		{"caused by the root's append", b[0], root, a[1].EventID},
		{"caused by an effect, first", c[0], root, b[0].EventID},
		{"caused by an effect, second", c[1], root, b[0].EventID},
		{"explicit correlation", d[0], custom, a[0].EventID},
		{"unknown cause", u[0], u[0].EventID, unknown},
		{"batch item with its own cause", f[0], root, c[0].EventID},
		{"batch item with the default cause", f[1], root, b[0].EventID},
		{"batch item with its own correlation", f[2], custom2, b[0].EventID},
		{"batch root", g[0], g[0].EventID, uuid.Nil},
		{"batch without options", g[1], g[0].EventID, uuid.Nil},
	}
	for _, tc := range tests {
		rec := get(s, tc.r)
		if rec.CorrelationID != tc.correlation || rec.CausationID != tc.causation {
			t.Errorf("%s: correlation %s causation %s, want %s and %s", tc.name, rec.CorrelationID, rec.CausationID, tc.correlation, tc.causation)
		}
	}
	ci, ok := s.(Causal)
	if !ok {
		return
	}
	seqs := func(rs ...batpak.Receipt) []uint64 {
		var out []uint64
		for _, r := range rs {
			out = append(out, r.Sequence)
		}
		return out
	}
	links := []struct {
		name string
		got  []uint64
		want []uint64
	}{
		{"Correlated(root)", ci.Correlated(root), seqs(a[1], b[0], c[0], c[1], f[0], f[1])},
		{"Correlated(custom)", ci.Correlated(custom), seqs(d[0])},
		{"Correlated(custom2)", ci.Correlated(custom2), seqs(f[2])},
		{"Correlated(batch root)", ci.Correlated(g[0].EventID), seqs(g[1])},
		{"Correlated(lone root)", ci.Correlated(u[0].EventID), nil},
		{"CausedBy(root)", ci.CausedBy(root), seqs(d[0])},
		{"CausedBy(a1)", ci.CausedBy(a[1].EventID), seqs(b[0])},
		{"CausedBy(b)", ci.CausedBy(b[0].EventID), seqs(c[0], c[1], f[1], f[2])},
		{"CausedBy(c0)", ci.CausedBy(c[0].EventID), seqs(f[0])},
		{"CausedBy(unknown)", ci.CausedBy(unknown), seqs(u[0])},
		{"CausedBy(leaf)", ci.CausedBy(f[2].EventID), nil},
		{"Correlated(nil)", ci.Correlated(uuid.Nil), nil},
	}
	for _, l := range links {
		if !slices.Equal(l.got, l.want) {
			t.Errorf("%s = %v, want %v", l.name, l.got, l.want)
		}
	}
}

// payloadDoc is a typical event payload.
type payloadDoc struct {
	Name   string
	Amount int64
	Ratio  float64
	Tags   []string
	Raw    []byte
	Attrs  map[string]int
	Nested struct {
		A uint16
		B bool
	}
	Pointer *string
	Skipped string `msgpack:"-"`
}

// testPayloadRoundTrip: payloads decode to what was appended, RawPayload is
// stored as it is, and metadata, kinds and coordinates come back unchanged.
func testPayloadRoundTrip(t *testing.T, e *env) {
	s := e.s
	note := "ünïcødé ✓"
	doc := payloadDoc{
		Name: "alice", Amount: -1 << 40, Ratio: 0.125,
		Tags: []string{"a", "", note}, Raw: []byte{0, 1, 2, 255},
		Attrs: map[string]int{"x": 1, "y": -2}, Pointer: &note,
	}
	doc.Nested.A, doc.Nested.B = 65535, true
	meta := map[string]string{"reason": "bypass: " + note, "trace": "0af7651916cd43dd8448eb211c80319c", "empty": ""}
	c := batpak.Coordinate{Entity: "account:42/sub account", Scope: "bänk:eu"}
	events := []batpak.Event{
		{Kind: kindOpened, Payload: doc, Metadata: meta},
		{Kind: kindDeposited, Payload: "plain string"},
		{Kind: kindWithdrawn, Payload: int64(-7)},
		{Kind: kindNoted, Payload: nil},
		{Kind: kindEffect, Payload: batpak.RawPayload{0x93, 0x01, 0x02, 0x03}},
		{Kind: kindNoted, Payload: map[string]any{"k": "v"}, Metadata: map[string]string{}},
	}
	rs := mustAppend(t, s, c, events)
	meta["reason"] = "changed after the append" // the store keeps its own copy
	doc.Raw[0] = 99
	s = e.settle()
	recs := collect(t, s.ReadStream(bgctx, c, 0))
	if len(recs) != len(events) {
		t.Fatalf("%d events read back, want %d", len(recs), len(events))
	}
	for i := range recs {
		checkReceipt(t, &recs[i], &rs[i])
		if recs[i].Kind != events[i].Kind || recs[i].Coordinate != c {
			t.Fatalf("event %d: kind %s at %v, want %s at %v", i, recs[i].Kind, recs[i].Coordinate, events[i].Kind, c)
		}
		if recs[i].Timestamp.IsZero() {
			t.Fatalf("event %d has no timestamp", i)
		}
	}
	var gotDoc payloadDoc
	if err := recs[0].Decode(&gotDoc); err != nil {
		t.Fatal(err)
	}
	doc.Raw[0] = 0
	if !reflect.DeepEqual(gotDoc, doc) {
		t.Errorf("struct payload decoded to %+v, want %+v", gotDoc, doc)
	}
	meta["reason"] = "bypass: " + note
	if !sameMeta(recs[0].Metadata, meta) {
		t.Errorf("metadata %q, want %q", recs[0].Metadata, meta)
	}
	for i := 1; i < len(recs); i++ {
		if len(recs[i].Metadata) != 0 {
			t.Errorf("event %d: metadata %q, want none", i, recs[i].Metadata)
		}
	}
	var str string
	if err := recs[1].Decode(&str); err != nil || str != "plain string" {
		t.Errorf("string payload decoded to %q, %v", str, err)
	}
	var n int64
	if err := recs[2].Decode(&n); err != nil || n != -7 {
		t.Errorf("integer payload decoded to %d, %v", n, err)
	}
	null := &payloadDoc{}
	if err := recs[3].Decode(&null); err != nil || null != nil {
		t.Errorf("nil payload decoded to %v, %v", null, err)
	}
	if !slices.Equal(recs[4].Payload, []byte{0x93, 0x01, 0x02, 0x03}) {
		t.Errorf("raw payload stored as %x", recs[4].Payload)
	}
	var ints []int
	if err := recs[4].Decode(&ints); err != nil || !slices.Equal(ints, []int{1, 2, 3}) {
		t.Errorf("raw payload decoded to %v, %v", ints, err)
	}
	var m map[string]any
	if err := recs[5].Decode(&m); err != nil || m["k"] != "v" || len(m) != 1 {
		t.Errorf("map payload decoded to %v, %v", m, err)
	}
	// Every read path returns the same record.
	for i := range recs {
		got, err := s.Get(bgctx, recs[i].ID)
		if err != nil {
			t.Fatal(err)
		}
		if d := diffRecord(&got, &recs[i]); d != "" {
			t.Errorf("Get of event %d: %s", i, d)
		}
	}
	checkSameRecords(t, "Query(scope)", collect(t, s.Query(bgctx, batpak.Region{Scope: c.Scope})), recs)
	checkSameRecords(t, "Cursor", drainCursor(t, s.Cursor(batpak.Region{}, 0)), recs)
}
