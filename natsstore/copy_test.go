package natsstore_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/natsstore"
)

// TestCopyValid: CopyValid copies the events of a stream that holds
// foreign messages and whose configuration Open refuses into a new stream:
// every event with its id, version, hash and payload, requests whole, keys
// still effective, the sequences dense again; the messages left behind are
// reported; a second run copies nothing more.
func TestCopyValid(t *testing.T) {
	ns := startServer(t)
	from, to := uniqueStream("COPYSRC"), uniqueStream("COPYDST")
	s := openStore(t, ns, natsstore.WithStream(from))
	ctx := hangContext(t)
	nc, js := jsClient(t, ns.ClientURL())
	p := "batpak." + from + ".test." // coord's subjects
	keyed, err := s.Append(ctx, coord("a"), one(kOpened, 1), batpak.WithIdempotencyKey("k1"))
	if err != nil {
		t.Fatal(err)
	}
	left := publishForeign(t, js, &nats.Msg{Subject: p + "a", Data: []byte("x")}, eventLike(p+"b", 3, 1, 1))
	if _, err := s.Append(ctx, coord("a"), []batpak.Event{{Kind: kNoted, Payload: 2}, {Kind: kNoted, Payload: 3}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendBatch(ctx, []batpak.BatchItem{
		{Coordinate: coord("a"), Event: batpak.Event{Kind: kNoted, Payload: 4, Metadata: map[string]string{"why": "batch"}}},
		{Coordinate: coord("b"), Event: batpak.Event{Kind: kOpened, Payload: 5}},
	}, batpak.WithCausation(keyed[0].EventID)); err != nil {
		t.Fatal(err)
	}
	left = append(left, publishForeign(t, js, eventLike(p+"c", 1, 2, 3))...)
	if _, err := s.Append(ctx, coord("c"), one(kOpened, 6)); err != nil {
		t.Fatal(err)
	}
	want := readAll(t, s)
	_ = s.Close()
	// Someone gave the stream a limit: Open refuses it from now on.
	str, err := js.Stream(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	cfg := str.CachedInfo().Config
	cfg.MaxAge = 24 * time.Hour
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := natsstore.Open(ctx, ns.ClientURL(), patient(t, natsstore.WithStream(from))...); !errors.Is(err, natsstore.ErrStreamConfig) {
		t.Fatalf("Open of the limited stream: %v", err)
	}

	rep, err := natsstore.CopyValid(ctx, nc, from, to, natsstore.WithTimeout(hangTimeout(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", rep)
	if rep.Events != uint64(len(want)) || rep.Requests != 4 || rep.Skipped != uint64(len(left)) || rep.Removed != 0 || len(rep.Left) != len(left) {
		t.Fatalf("report %+v: want %d events in 4 requests, %d messages left", rep, len(want), len(left))
	}
	for i, l := range rep.Left {
		if l.Sequence != left[i] || l.Reason == "" {
			t.Fatalf("left %+v, want sequence %d with a reason", l, left[i])
		}
	}
	d := openStore(t, ns, natsstore.WithStream(to))
	got := readAll(t, d)
	if len(got) != len(want) {
		t.Fatalf("the copy holds %d events, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Sequence != uint64(i+1) {
			t.Fatalf("copy: event %d at sequence %d", i, g.Sequence)
		}
		if g.ID != w.ID || g.Version != w.Version || g.Hash != w.Hash || g.PrevHash != w.PrevHash || g.Coordinate != w.Coordinate ||
			g.CorrelationID != w.CorrelationID || g.CausationID != w.CausationID || !g.Timestamp.Equal(w.Timestamp) ||
			g.Kind != w.Kind || !slices.Equal(g.Payload, w.Payload) || len(g.Metadata) != len(w.Metadata) {
			t.Fatalf("copy of %+v is %+v", w, g)
		}
	}
	for _, e := range []string{"a", "b", "c"} {
		if err := d.VerifyChain(ctx, coord(e)); err != nil {
			t.Fatal(err)
		}
	}
	if st := d.Stats(); st.Skipped != 0 {
		t.Fatalf("the copy skips %d messages", st.Skipped)
	}
	again, err := d.Append(ctx, coord("z"), one(kOpened, 9), batpak.WithIdempotencyKey("k1"))
	if err != nil || len(again) != 1 || again[0].EventID != keyed[0].EventID {
		t.Fatalf("key k1 on the copy: %+v, %v; want event %s", again, err, keyed[0].EventID)
	}
	// A multi-event request is still one: the copy's index checks that
	// parts come together, so reading it whole is the proof; and a new
	// append continues every chain.
	if _, err := d.Append(ctx, coord("a"), one(kNoted, 10), batpak.ExpectVersion(batpak.Exactly(4))); err != nil {
		t.Fatal(err)
	}

	rep, err = natsstore.CopyValid(ctx, nc, from, to, natsstore.WithTimeout(hangTimeout(t)))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events != 0 || rep.Present != 4 {
		t.Fatalf("second run: %+v, want the 4 requests present and nothing copied", rep)
	}
}
