package natsstore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/batpak-go/batpak"
)

// fmtClient returns a plain JetStream client of ns, closed with the test.
func fmtClient(t *testing.T, ns *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL(), nats.Timeout(time.Until(ckTestDeadline(t))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// subjects returns the subjects of stream that hold messages, with their
// counts.
func subjects(t *testing.T, js jetstream.JetStream, stream string) map[string]uint64 {
	t.Helper()
	ctx, cancel := context.WithDeadline(context.Background(), ckTestDeadline(t))
	defer cancel()
	str, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := str.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects
}

// v1Writer writes events as a client of store format 1 did (format.go):
// on "<prefix>.<entity>", the scope in Batpak-Scope, one chain per
// entity whatever the scope, keys global.
type v1Writer struct {
	t      *testing.T
	js     jetstream.JetStream
	prefix string // with its trailing dot
	tips   map[string]*event
}

// append publishes one event of c, keyed if key is not "", and returns it.
func (w *v1Writer) append(c batpak.Coordinate, payload byte, key string) event {
	w.t.Helper()
	ev := event{
		entity: c.Entity, scope: c.Scope, id: uuid.Must(uuid.NewV7()), kind: uint16(ckKindA),
		ts: time.Now().UnixMicro(), version: 1, payload: []byte{payload}, part: 1, parts: 1,
	}
	ev.corr = ev.id
	if tip := w.tips[c.Entity]; tip != nil {
		ev.version, ev.prev = tip.version+1, tip.hash
	}
	ev.hash = eventHash(&ev)
	m := nats.NewMsg(w.prefix + escapeToken(c.Entity))
	if err := encodeHeader(m.Header, &ev); err != nil {
		w.t.Fatal(err)
	}
	m.Header.Set(hdrScope, escapeToken(c.Scope))
	ev.msgID = eventMsgID(ev.id)
	if key != "" {
		ev.msgID = keyMsgID(key)
	}
	m.Header.Set(hdrMsgID, ev.msgID)
	m.Data = ev.payload
	ctx, cancel := context.WithDeadline(context.Background(), ckTestDeadline(w.t))
	defer cancel()
	ack, err := w.js.PublishMsg(ctx, m)
	if err != nil {
		w.t.Fatal(err)
	}
	ev.seq = ack.Sequence
	w.tips[c.Entity] = &ev
	return ev
}

// createV1Stream creates stream as a version of store format 1 did: the
// same configuration, no format marker.
func createV1Stream(t *testing.T, js jetstream.JetStream, stream string) {
	t.Helper()
	ctx, cancel := context.WithDeadline(context.Background(), ckTestDeadline(t))
	defer cancel()
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: stream, Subjects: []string{"batpak." + stream + ".>"}, Storage: jetstream.FileStorage,
		MaxMsgs: -1, MaxBytes: -1, MaxMsgsPerSubject: -1, Duplicates: time.Minute,
		DenyDelete: true, DenyPurge: true, AllowAtomicPublish: true, AllowDirect: true,
		Metadata: map[string]string{"batpak": "event store v1"},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestScopesHaveTheirOwnSubjects: the same entity in two scopes is two
// streams on two subjects, "<prefix>.<scope>.<entity>", each with its own
// versions and subject sequence; a stream the store creates carries the
// format marker, and an empty stream without it gets it at Open.
func TestScopesHaveTheirOwnSubjects(t *testing.T) {
	ns := ckServer(t)
	_, js := fmtClient(t, ns)
	s := ckOpen(t, ns, "SCOPES")
	defer s.Close()
	ctx := context.Background()
	a := batpak.Coordinate{Entity: "user:7", Scope: "tenantA"}
	b := batpak.Coordinate{Entity: "user:7", Scope: "tenant B.eu"}
	for i, c := range []batpak.Coordinate{a, b, a} {
		if _, err := s.Append(ctx, c, []batpak.Event{{Kind: ckKindA, Payload: i}}); err != nil {
			t.Fatal(err)
		}
	}
	// Each stream expects its own subject's sequence: b's append after
	// a's and a's after b's would be refused by the server otherwise.
	if _, err := s.Append(ctx, b, []batpak.Event{{Kind: ckKindA}}, batpak.ExpectVersion(batpak.Exactly(1))); err != nil {
		t.Fatal(err)
	}
	got := subjects(t, js, "SCOPES")
	want := map[string]uint64{"batpak.SCOPES.tenantA.user:7": 2, "batpak.SCOPES.tenant%20B%2Eeu.user:7": 2}
	if len(got) != len(want) {
		t.Fatalf("subjects %v, want %v", got, want)
	}
	for subj, n := range want {
		if got[subj] != n {
			t.Fatalf("subjects %v, want %v", got, want)
		}
	}
	if m := formatMarker(&s.stream.CachedInfo().Config); m != "2" {
		t.Fatalf("format marker %q, want \"2\"", m)
	}

	// An empty stream without the marker, made by hand, is marked.
	createV1Stream(t, js, "EMPTYV1")
	e := ckOpen(t, ns, "EMPTYV1")
	defer e.Close()
	if m := formatMarker(&e.stream.CachedInfo().Config); m != "2" {
		t.Fatalf("format marker of an empty stream after Open: %q, want \"2\"", m)
	}
}

// TestOldFormatRefused: a stream of store format 1 (events on
// "<prefix>.<entity>", no marker) is refused by Open and OpenReadOnly with
// a *FormatError that names CopyValid, and left as it was; CopyValid
// copies it into a stream of format 2, where user:7 of two scopes, one
// stream in format 1, is two streams with chains of their own, and keys
// belong to their scope.
func TestOldFormatRefused(t *testing.T) {
	ns := ckServer(t)
	nc, js := fmtClient(t, ns)
	ctx, cancel := context.WithDeadline(context.Background(), ckTestDeadline(t))
	defer cancel()
	createV1Stream(t, js, "OLD")
	w := &v1Writer{t: t, js: js, prefix: "batpak.OLD.", tips: make(map[string]*event)}
	a := batpak.Coordinate{Entity: "user:7", Scope: "tenantA"}
	b := batpak.Coordinate{Entity: "user:7", Scope: "tenantB"}
	acct := batpak.Coordinate{Entity: "acct:1", Scope: "tenantA"}
	a1 := w.append(a, 1, "")
	b1 := w.append(b, 2, "") // version 2 of user:7 in format 1
	a2 := w.append(a, 3, "")
	k1 := w.append(acct, 4, "k1")
	if _, err := js.Publish(ctx, "batpak.OLD.noise", []byte("not an event")); err != nil {
		t.Fatal(err)
	}

	_, err := ckTryOpen(t, ns, "OLD")
	var fe *FormatError
	if !errors.As(err, &fe) || !errors.Is(err, ErrStreamFormat) || !errors.Is(err, ErrStreamConfig) {
		t.Fatalf("Open of a format 1 stream: %v, want a *FormatError", err)
	}
	if fe.Stream != "OLD" || fe.Marker != "" || fe.Messages != 5 || !strings.Contains(err.Error(), "CopyValid") {
		t.Fatalf("format error %+v: %v", fe, err)
	}
	str, err := js.Stream(ctx, "OLD")
	if err != nil {
		t.Fatal(err)
	}
	if md := str.CachedInfo().Config.Metadata; md[formatKey] != "" {
		t.Fatalf("Open marked the refused stream: %v", md)
	}
	ro, err := OpenConnReadOnly(ctx, nc, WithStream("OLD"), WithTimeout(time.Until(ckTestDeadline(t))))
	if !errors.As(err, &fe) {
		if ro != nil {
			ro.Close()
		}
		t.Fatalf("OpenReadOnly of a format 1 stream: %v, want a *FormatError", err)
	}

	rep, err := CopyValid(ctx, nc, "OLD", "NEW", WithTimeout(time.Until(ckTestDeadline(t))))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Format != 1 || rep.Events != 4 || rep.Requests != 4 || rep.Skipped != 1 || rep.Rechained != 2 {
		t.Fatalf("copy report %+v: want 4 events of format 1, 2 rechained, 1 message left", rep)
	}
	s := ckOpen(t, ns, "NEW", WithCacheBytes(0))
	defer s.Close()
	if got := subjects(t, js, "NEW"); len(got) != 3 || got["batpak.NEW.tenantA.user:7"] != 2 || got["batpak.NEW.tenantB.user:7"] != 1 ||
		got["batpak.NEW.tenantA.acct:1"] != 1 {
		t.Fatalf("subjects of the copy: %v", got)
	}
	for _, tc := range []struct {
		c    batpak.Coordinate
		evs  []event
		kept []bool // keeps its format 1 version and hash
	}{{a, []event{a1, a2}, []bool{true, false}}, {b, []event{b1}, []bool{false}}, {acct, []event{k1}, []bool{true}}} {
		if v := s.StreamVersion(tc.c); v != uint64(len(tc.evs)) {
			t.Fatalf("%v at version %d, want %d", tc.c, v, len(tc.evs))
		}
		if err := s.VerifyChain(ctx, tc.c); err != nil {
			t.Fatal(err)
		}
		i := 0
		for rec, err := range s.ReadStream(ctx, tc.c, 0) {
			if err != nil {
				t.Fatal(err)
			}
			want := tc.evs[i]
			if rec.ID != want.id || rec.Coordinate != tc.c || rec.Version != uint64(i+1) || rec.Payload[0] != want.payload[0] ||
				(rec.Hash == want.hash) != tc.kept[i] {
				t.Fatalf("%v version %d: %+v, from %+v", tc.c, i+1, rec, want)
			}
			i++
		}
	}
	// k1 belongs to tenantA now: there it returns the original receipt, in
	// tenantB it is another request.
	rs, err := s.Append(ctx, acct, []batpak.Event{{Kind: ckKindA}}, batpak.WithIdempotencyKey("k1"))
	if err != nil || len(rs) != 1 || rs[0].EventID != k1.id {
		t.Fatalf("k1 in tenantA: %+v, %v; want event %s", rs, err, k1.id)
	}
	rs, err = s.Append(ctx, batpak.Coordinate{Entity: "acct:1", Scope: "tenantB"}, []batpak.Event{{Kind: ckKindA}}, batpak.WithIdempotencyKey("k1"))
	if err != nil || len(rs) != 1 || rs[0].EventID == k1.id || rs[0].Version != 1 {
		t.Fatalf("k1 in tenantB: %+v, %v; want a new event", rs, err)
	}
}

// TestFormatMarkers: a stream marked with another format is refused
// whether it is older or newer; a stream marked "2" opens.
func TestFormatMarkers(t *testing.T) {
	ns := ckServer(t)
	_, js := fmtClient(t, ns)
	ctx, cancel := context.WithDeadline(context.Background(), ckTestDeadline(t))
	defer cancel()
	for i, marker := range []string{"1", "3", "x"} {
		stream := "MARKED_" + string(rune('A'+i))
		createV1Stream(t, js, stream)
		str, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		cfg := str.CachedInfo().Config
		cfg.Metadata = map[string]string{formatKey: marker}
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, "batpak."+stream+".tenantA.user:7", []byte("a message")); err != nil {
			t.Fatal(err)
		}
		_, err = ckTryOpen(t, ns, stream)
		var fe *FormatError
		if !errors.As(err, &fe) || fe.Marker != marker || fe.older() != (marker == "1") {
			t.Fatalf("Open of a stream marked %q: %v", marker, err)
		}
		t.Logf("marked %q: %v", marker, err)
	}
}
