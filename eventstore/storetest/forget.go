package storetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

// personal is a payload with personal data.
type personal struct {
	Name string
	N    int
}

// testForget: an event with a subject reads back as it was written;
// after Forget every read path returns the subject's events erased (nil
// payload, Erased set, an Erased value from a registry) while other
// subjects, the same subject ID in another scope and events without a
// subject are untouched; hash chains still verify; an append for a
// forgotten subject is refused; and all of it survives a reopen.
func testForget(t *testing.T, e *env) {
	s := e.s
	reg := batpak.NewRegistry()
	batpak.MustRegister[personal](reg, kindOpened, "test.Personal")
	mk := func(name string, n int, subject string) batpak.Event {
		ev, err := reg.Event(personal{Name: name, N: n})
		if err != nil {
			t.Fatal(err)
		}
		ev.Subject = subject
		return ev
	}
	sub, err := s.Subscribe(batpak.Region{Scope: "test"}, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ann, bob := coord("person:ann"), coord("person:bob")
	other := batpak.Coordinate{Entity: "person:ann", Scope: "other"}
	mustAppend(t, s, ann, []batpak.Event{mk("Ann", 1, "ann"), mk("Ann", 2, "ann")})
	mustAppend(t, s, bob, []batpak.Event{mk("Bob", 1, "bob")})
	mustBatch(t, s, []batpak.BatchItem{
		{Coordinate: ann, Event: mk("Ann", 3, "ann")},
		{Coordinate: bob, Event: mk("public", 2, "")},
		{Coordinate: other, Event: mk("Other Ann", 1, "ann")},
	})
	for i := range 5 { // the subscription gets the events opened
		select {
		case rec := <-sub.Events():
			var p personal
			if err := rec.Decode(&p); err != nil || p.Name == "" || rec.Erased {
				t.Fatalf("subscription event %d: %+v, %v", i, p, err)
			}
		case <-hangTimer(t):
			t.Fatal("subscription: no event")
		}
	}

	refused := []struct {
		what   string
		ev     batpak.Event
		target error
	}{
		{"a subject with a control character", mk("x", 0, "a\x00b"), batpak.ErrInvalidCoordinate},
		{"the subject key set by hand", batpak.Event{Kind: kindNoted, Metadata: map[string]string{batpak.MetaSubject: "ann"}}, batpak.ErrInvalidMetadata},
	}
	for _, r := range refused {
		_, err := s.Append(bgctx, ann, []batpak.Event{r.ev})
		wantErrIs(t, err, r.target, r.what)
	}

	// name returns what a read shows of rec: the name, or "erased".
	name := func(rec *batpak.Record) string {
		t.Helper()
		v, err := reg.Decode(rec)
		if err != nil {
			t.Fatalf("decode event %d: %v", rec.Sequence, err)
		}
		switch v := v.(type) {
		case personal:
			if rec.Erased {
				t.Fatalf("event %d is erased and decodes to %+v", rec.Sequence, v)
			}
			return v.Name
		case batpak.Erased:
			if !rec.Erased || rec.Payload != nil || v.Subject != (batpak.Subject{Scope: rec.Coordinate.Scope, ID: "ann"}) || v.Type != "test.Personal" {
				t.Fatalf("event %d: erased %+v, record %+v", rec.Sequence, v, rec)
			}
			if _, err := batpak.DecodeAs[personal](rec); !errors.Is(err, batpak.ErrErased) {
				t.Fatalf("DecodeAs of an erased event: %v", err)
			}
			return "erased"
		}
		t.Fatalf("event %d decodes to %T", rec.Sequence, v)
		return ""
	}
	check := func(s Store, annName string, when string) {
		t.Helper()
		want := map[string]string{"test/person:ann": annName, "test/person:bob": "Bob", "other/person:ann": "Other Ann"}
		reads := map[string][]batpak.Record{
			"ReadAll": collect(t, s.ReadAll(bgctx, 0)),
			"Query":   collect(t, s.Query(bgctx, batpak.Region{Kinds: []kind.Kind{kindOpened}})),
			"Cursor":  drainCursor(t, s.Cursor(batpak.Region{}, 0)),
		}
		for _, c := range []batpak.Coordinate{ann, bob, other} {
			reads["ReadStream "+c.String()] = collect(t, s.ReadStream(bgctx, c, 0))
		}
		for path, recs := range reads {
			for i := range recs {
				rec := &recs[i]
				got := name(rec)
				switch {
				case got == "public":
				case got != want[rec.Coordinate.String()]:
					t.Fatalf("%s: %s: event %d of %s reads as %q, want %q", when, path, rec.Sequence, rec.Coordinate, got, want[rec.Coordinate.String()])
				}
				g, err := s.Get(bgctx, rec.ID)
				if err != nil || name(&g) != got {
					t.Fatalf("%s: Get of event %d: %v", when, rec.Sequence, err)
				}
			}
		}
		if cv, ok := s.(ChainVerifier); ok {
			for _, c := range []batpak.Coordinate{ann, bob, other} {
				if err := cv.VerifyChain(bgctx, c); err != nil {
					t.Fatalf("%s: the chain of %s: %v", when, c, err)
				}
			}
		}
	}
	check(s, "Ann", "before Forget")
	if err := s.Forget(bgctx, batpak.Subject{Scope: "test", ID: "ann"}); err != nil {
		t.Fatal(err)
	}
	check(s, "erased", "after Forget")
	for _, subject := range []string{"ann", "carl"} {
		if subject == "carl" { // never had an event: forgetting it still holds
			if err := s.Forget(bgctx, batpak.Subject{Scope: "test", ID: subject}); err != nil {
				t.Fatal(err)
			}
		}
		_, err := s.Append(bgctx, ann, []batpak.Event{mk("again", 9, subject)})
		wantErrIs(t, err, batpak.ErrForgotten, fmt.Sprintf("an append for the forgotten %s", subject))
	}
	if err := s.Forget(bgctx, batpak.Subject{Scope: "test", ID: "ann"}); err != nil {
		t.Fatalf("a second Forget: %v", err)
	}
	wantErrIs(t, s.Forget(bgctx, batpak.Subject{Scope: "test"}), batpak.ErrInvalidCoordinate, "Forget of an empty subject")
	mustAppend(t, s, bob, []batpak.Event{mk("Bob", 3, "bob")}) // others write on
	if e.h.Reopen != nil {
		check(e.reopen(), "erased", "after a reopen")
		_, err := e.s.Append(bgctx, ann, []batpak.Event{mk("again", 9, "ann")})
		wantErrIs(t, err, batpak.ErrForgotten, "an append for a forgotten subject after a reopen")
	}
	// A scoped view forgets subjects of its scope only.
	view, err := batpak.Scoped(e.s, "test")
	if err != nil {
		t.Fatal(err)
	}
	wantErrIs(t, view.Forget(bgctx, batpak.Subject{Scope: "other", ID: "ann"}), batpak.ErrOutOfScope, "a view's Forget in another scope")
	if err := view.Forget(bgctx, batpak.Subject{ID: "bob"}); err != nil {
		t.Fatal(err)
	}
	for rec, err := range e.s.ReadStream(bgctx, bob, 0) {
		if err != nil || (rec.Metadata[batpak.MetaSubject] == "bob") != rec.Erased {
			t.Fatalf("after the view forgot bob: event %d erased %v, %v", rec.Sequence, rec.Erased, err)
		}
	}
	if recs := collect(t, e.s.ReadStream(bgctx, other, 0)); len(recs) != 1 || recs[0].Erased {
		t.Fatalf("ann of scope other after forgetting test's: %+v", recs)
	}
}
