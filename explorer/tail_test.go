package explorer_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/explorer"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/natsstore"
	"github.com/batpak-go/batpak/natsstore/embedded"
)

// sse reads a stream of server-sent events.
type sse struct {
	t    *testing.T
	resp *http.Response
	sc   *bufio.Scanner
}

type sseEvent struct {
	event, id, data string
}

func openTail(t *testing.T, ctx context.Context, srv *httptest.Server, path string, hdr ...string) *sse {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("tail: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sse{t: t, resp: resp, sc: bufio.NewScanner(resp.Body)}
}

// next returns the next event (comments skipped), waiting for it.
func (s *sse) next() sseEvent {
	s.t.Helper()
	var ev sseEvent
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "":
			if ev.event != "" {
				return ev
			}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			ev.event = line[len("event: "):]
		case strings.HasPrefix(line, "id: "):
			ev.id = line[len("id: "):]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[len("data: "):]
		}
	}
	s.t.Fatalf("the tail ended: %v", s.sc.Err())
	return ev
}

// record returns the next record event.
func (s *sse) record() explorer.EventRow {
	s.t.Helper()
	for {
		ev := s.next()
		if ev.event == "hello" {
			continue
		}
		if ev.event != "record" {
			s.t.Fatalf("tail sent %s: %s", ev.event, ev.data)
		}
		var row explorer.EventRow
		if err := json.Unmarshal([]byte(ev.data), &row); err != nil {
			s.t.Fatal(err)
		}
		if ev.id != itoa(row.Sequence) {
			s.t.Errorf("event id %q for sequence %d", ev.id, row.Sequence)
		}
		return row
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func TestTailLiveStore(t *testing.T) {
	f := newFixture(t)
	_, srv := server(t, f.store, explorer.WithRegistry(f.reg))
	ctx := hangContext(t)

	tail := openTail(t, ctx, srv, "/api/tail?prefix=account:bob&from=1")
	hello := tail.next()
	if hello.event != "hello" || !strings.Contains(hello.data, `"from":1`) {
		t.Fatalf("first event %+v", hello)
	}
	for _, want := range []uint64{3, 4, f.received.Sequence} {
		if row := tail.record(); row.Sequence != want || row.Entity != "account:bob" {
			t.Fatalf("tail gave #%d %s, want #%d", row.Sequence, row.Entity, want)
		}
	}
	// New events arrive as they are committed; others are filtered out.
	f.append(t, "account:carol", "bank", kindDeposit, Deposit{Amount: 1})
	r := f.append(t, "account:bob", "bank", kindDeposit, Deposit{Amount: 42})
	row := tail.record()
	if row.Sequence != r.Sequence || row.KindName != "shop.Deposit" || string(row.Payload) != `{"Amount":42}` {
		t.Errorf("new event %+v", row)
	}

	// A reconnecting browser resumes after Last-Event-ID; without a
	// cursor the tail starts with the recent events.
	again := openTail(t, ctx, srv, "/api/tail?prefix=account:bob", "Last-Event-ID", itoa(f.received.Sequence))
	if row := again.record(); row.Sequence != r.Sequence {
		t.Errorf("resumed at #%d, want #%d", row.Sequence, r.Sequence)
	}
	recent := openTail(t, ctx, srv, "/api/tail")
	if row := recent.record(); row.Sequence != f.store.LastSequence()-19 {
		t.Errorf("recent tail starts at #%d of %d", row.Sequence, f.store.LastSequence())
	}
}

func TestTailLimit(t *testing.T) {
	f := newFixture(t)
	_, srv := server(t, f.store, explorer.WithMaxTails(1))
	ctx := hangContext(t)
	first := openTail(t, ctx, srv, "/api/tail")
	first.next()
	get(t, srv, "/api/tail").want(t, http.StatusServiceUnavailable, "live tails are open")
}

// A read-only view sees the events durable when it was opened: Swap moves
// the pages and the open tails to a fresh view.
func TestSwapReadOnlyViews(t *testing.T) {
	dir := t.TempDir()
	w, err := eventstore.Open(dir, eventstore.WithSyncMode(eventstore.SyncNone))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	appendN := func(n int) {
		for range n {
			if _, err := w.Append(context.Background(), batpak.Coordinate{Entity: "account:a", Scope: "bank"},
				[]batpak.Event{{Kind: kindDeposit, Payload: Deposit{Amount: 1}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendN(3)
	view := func() *eventstore.Store {
		s, err := eventstore.OpenReadOnly(dir)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	v1 := view()
	e, srv := server(t, v1)
	ctx := hangContext(t)
	tail := openTail(t, ctx, srv, "/api/tail?from=1")
	for want := uint64(1); want <= 3; want++ {
		if row := tail.record(); row.Sequence != want {
			t.Fatalf("#%d, want #%d", row.Sequence, want)
		}
	}
	appendN(2)
	get(t, srv, "/api/health").want(t, http.StatusOK, `"Events": 3`)
	v2 := view()
	e.Swap(v2)
	if err := v1.Close(); err != nil { // no request reads it any more
		t.Fatal(err)
	}
	get(t, srv, "/api/health").want(t, http.StatusOK, `"Events": 5`)
	for want := uint64(4); want <= 5; want++ {
		if row := tail.record(); row.Sequence != want {
			t.Fatalf("after the swap #%d, want #%d", row.Sequence, want)
		}
	}
	e.Swap(view())
	_ = v2.Close()
}

// The explorer serves a JetStream store as it serves the embedded one.
func TestNATSBackend(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS server")
	}
	ns, err := embedded.Start(embedded.Options{Dir: filepath.Join(t.TempDir(), "nats")})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	ctx := hangContext(t)
	s, err := natsstore.Open(ctx, ns.ClientURL(), natsstore.WithStream("EXPLORER"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := batpak.Coordinate{Entity: "account:alice", Scope: "bank"}
	rs, err := s.Append(ctx, c, []batpak.Event{{Kind: kindSent, Payload: Sent{To: hostile}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, batpak.Coordinate{Entity: "account:bob", Scope: "bank"},
		[]batpak.Event{{Kind: kindReceived, Payload: Received{From: "alice"}}}, batpak.WithCausation(rs[0].EventID)); err != nil {
		t.Fatal(err)
	}
	_, srv := server(t, s, explorer.WithKindNames(func(k kind.Kind) string { return map[kind.Kind]string{kindSent: "Sent"}[k] }))
	get(t, srv, "/").want(t, http.StatusOK, `id="events">2<`)
	get(t, srv, "/streams").want(t, http.StatusOK, "account:alice", "account:bob")
	r := get(t, srv, "/stream?entity=account:alice")
	r.want(t, http.StatusOK, "Sent", "&lt;script&gt;")
	if strings.Contains(r.body, "<script>alert") {
		t.Error("payload reached the page as markup")
	}
	get(t, srv, "/event/2").want(t, http.StatusOK, "first event of the stream", ">OK<")
	get(t, srv, "/event/1?chain=full").want(t, http.StatusOK, "every event of bank/account:alice up to version 1 verifies")
	get(t, srv, "/graph?event=2").want(t, http.StatusOK, "<svg", "account:bob")

	tail := openTail(t, ctx, srv, "/api/tail?from=2")
	if row := tail.record(); row.Sequence != 2 {
		t.Fatalf("#%d", row.Sequence)
	}
	if _, err := s.Append(ctx, c, []batpak.Event{{Kind: kindDeposit, Payload: Deposit{Amount: 5}}}); err != nil {
		t.Fatal(err)
	}
	if row := tail.record(); row.Sequence != 3 || row.Entity != "account:alice" {
		t.Errorf("new event %+v", row)
	}
}
