package explorer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/explorer"
	"github.com/batpak-go/batpak/kind"
)

var (
	kindOpened   = kind.Custom(1, 1)
	kindDeposit  = kind.Custom(1, 2)
	kindSent     = kind.Custom(1, 4)
	kindReceived = kind.Custom(1, 5)
	kindNote     = kind.Custom(2, 1)
)

type (
	Opened   struct{ Owner string }
	Deposit  struct{ Amount int64 }
	Sent     struct{ To string }
	Received struct{ From string }
)

// hostile is a payload, an entity and metadata an attacker could have put
// in the store: every page must show them as text.
const hostile = `<script>alert("pwned")</script><img src=x onerror=alert(1)>`

// fixture is a store with a few accounts, a transfer (sent causes
// received) and events holding hostile text.
type fixture struct {
	store    *eventstore.Store
	reg      *batpak.Registry
	sent     batpak.Receipt
	received batpak.Receipt
	hostile  batpak.Receipt
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s, err := eventstore.Open(t.TempDir(), eventstore.WithSyncMode(eventstore.SyncNone))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	f := &fixture{store: s, reg: batpak.NewRegistry()}
	batpak.MustRegister[Opened](f.reg, kindOpened, "shop.Opened")
	batpak.MustRegister[Deposit](f.reg, kindDeposit, "shop.Deposit")
	batpak.MustRegister[Sent](f.reg, kindSent, "shop.Sent")
	batpak.MustRegister[Received](f.reg, kindReceived, "shop.Received")
	for i, who := range []string{"alice", "bob", "carol", "dave", "erin"} {
		f.append(t, "account:"+who, "bank", kindOpened, Opened{Owner: who})
		f.append(t, "account:"+who, "bank", kindDeposit, Deposit{Amount: int64(100 * (i + 1))})
	}
	for i := range 7 {
		f.append(t, "account:alice", "bank", kindDeposit, Deposit{Amount: int64(i)})
	}
	f.sent = f.append(t, "account:alice", "bank", kindSent, Sent{To: "bob"})
	f.received = f.append(t, "account:bob", "bank", kindReceived, Received{From: "alice"}, batpak.WithCausation(f.sent.EventID))
	f.append(t, "order:1", "shop", kindNote, map[string]any{"items": 3})
	rs, err := s.Append(context.Background(), batpak.Coordinate{Entity: "note:" + hostile, Scope: "evil" + hostile},
		[]batpak.Event{{Kind: kindNote, Payload: map[string]string{"text": hostile}, Metadata: map[string]string{hostile: hostile}}},
		batpak.WithCausation(f.sent.EventID))
	if err != nil {
		t.Fatal(err)
	}
	f.hostile = rs[0]
	return f
}

func (f *fixture) append(t *testing.T, entity, scope string, k kind.Kind, payload any, opts ...batpak.AppendOption) batpak.Receipt {
	t.Helper()
	rs, err := f.store.Append(context.Background(), batpak.Coordinate{Entity: entity, Scope: scope},
		[]batpak.Event{{Kind: k, Payload: payload}}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return rs[0]
}

// server serves an explorer of s for the test.
func server(t *testing.T, s explorer.Store, opts ...explorer.Option) (*explorer.Explorer, *httptest.Server) {
	t.Helper()
	e := explorer.New(s, opts...)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return e, srv
}

type response struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, srv *httptest.Server, path string, hdr ...string) response {
	t.Helper()
	return do(t, srv, http.MethodGet, path, hdr...)
}

func do(t *testing.T, srv *httptest.Server, method, path string, hdr ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}

func (r response) want(t *testing.T, status int, subs ...string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d:\n%s", r.status, status, r.body)
	}
	for _, s := range subs {
		if !strings.Contains(r.body, s) {
			t.Errorf("response lacks %q:\n%s", s, r.body)
		}
	}
}

func getJSON[T any](t *testing.T, srv *httptest.Server, path string) T {
	t.Helper()
	r := get(t, srv, path)
	r.want(t, http.StatusOK)
	var v T
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, r.body)
	}
	return v
}

// hangContext ends shortly before the test binary's deadline: a guard
// against hangs, not a performance budget.
func hangContext(t *testing.T) context.Context {
	end := time.Now().Add(time.Hour)
	if d, ok := t.Deadline(); ok {
		end = d.Add(-min(time.Until(d)/10, time.Minute))
	}
	ctx, cancel := context.WithDeadline(t.Context(), end)
	t.Cleanup(cancel)
	return ctx
}

func idPath(id uuid.UUID) string { return "/event/" + id.String() }

func seqPath(seq uint64) string { return fmt.Sprintf("/event/%d", seq) }
