package explorer_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/explorer"
	"github.com/batpak-go/batpak/natsstore"
)

// Both backends are explorer stores as they are.
var _ explorer.Store = (*natsstore.Store)(nil)

func TestPages(t *testing.T) {
	f := newFixture(t)
	_, srv := server(t, f.store, explorer.WithRegistry(f.reg))

	get(t, srv, "/").want(t, http.StatusOK, `id="events">21<`, `id="streams">7<`, "eventstore", "Cold start")
	get(t, srv, "/streams").want(t, http.StatusOK, "account:alice", "account:erin", "order:1", ">shop<")
	get(t, srv, "/streams?prefix=account:").want(t, http.StatusOK, "account:alice")
	r := get(t, srv, "/streams?scope=shop")
	r.want(t, http.StatusOK, "order:1")
	if strings.Contains(r.body, "account:alice") {
		t.Error("the scope filter let another scope through")
	}
	get(t, srv, "/stream?entity=account:alice").want(t, http.StatusOK, "#1", "v10", "Sent", `{&#34;To&#34;:&#34;bob&#34;}`, "Deposit")
	get(t, srv, "/log").want(t, http.StatusOK, "#21", "#1<")
	get(t, srv, seqPath(f.received.Sequence)).want(t, http.StatusOK,
		f.received.EventID.String(), f.sent.EventID.String(), "Received", "links to version 2", "matches the event&#39;s content", "OK")
	get(t, srv, idPath(f.sent.EventID)).want(t, http.StatusOK, "2 events caused by this one", "causal graph (3 events)")
	get(t, srv, idPath(f.sent.EventID)+"?chain=full").want(t, http.StatusOK, "every event of bank/account:alice up to version 10 verifies")
	get(t, srv, "/graph?event="+f.received.EventID.String()).want(t, http.StatusOK, "<svg", `class="causal-node"`, "3 events of correlation")
	get(t, srv, "/graph?correlation="+f.sent.EventID.String()).want(t, http.StatusOK, "<svg")
	get(t, srv, "/tail?prefix=account:").want(t, http.StatusOK, `data-source="/api/tail?prefix=account%3A"`, "tail.js")
	get(t, srv, "/projections").want(t, http.StatusOK, "without a list of projections")
	get(t, srv, "/static/style.css").want(t, http.StatusOK, "--accent")
	get(t, srv, "/static/tail.js").want(t, http.StatusOK, "EventSource")

	svg := get(t, srv, "/graph.svg?event="+f.sent.EventID.String())
	svg.want(t, http.StatusOK, "<svg", `href="/event/`+f.received.EventID.String()+`"`, "1:005 shop.Received")
	if ct := svg.header.Get("Content-Type"); ct != "image/svg+xml" {
		t.Errorf("graph.svg Content-Type %q", ct)
	}

	// The search box.
	for q, want := range map[string]string{
		f.sent.EventID.String(): "/event/" + f.sent.EventID.String(),
		"#3":                    "/event/%233",
		"account:bob":           "/stream?entity=account%3Abob&scope=bank",
		"account:":              "/streams?prefix=account%3A",
	} {
		r := get(t, srv, "/find?q="+url.QueryEscape(q))
		if r.status != http.StatusSeeOther || r.header.Get("Location") != want {
			t.Errorf("find %q: %d to %q, want %q", q, r.status, r.header.Get("Location"), want)
		}
	}
}

func TestHostileContentIsText(t *testing.T) {
	f := newFixture(t)
	_, srv := server(t, f.store, explorer.WithRegistry(f.reg))
	entity := "note:" + hostile
	for _, path := range []string{
		"/streams",
		"/streams?prefix=" + url.QueryEscape("note:<"),
		"/stream?entity=" + url.QueryEscape(entity),
		"/log",
		idPath(f.hostile.EventID),
		idPath(f.sent.EventID),
		"/graph?event=" + f.hostile.EventID.String(),
		"/tail?entity=" + url.QueryEscape(entity),
		"/find?q=" + url.QueryEscape(hostile),
		"/stream?entity=" + url.QueryEscape("<b>nope</b>"),
	} {
		r := get(t, srv, path)
		if r.status >= 500 {
			t.Fatalf("%s: %d\n%s", path, r.status, r.body)
		}
		for _, raw := range []string{"<script>alert", "<img src=x", "<b>nope"} {
			if strings.Contains(r.body, raw) {
				t.Errorf("%s: the stored text %q reached the page as markup:\n%s", path, raw, r.body)
			}
		}
	}
	// It is there, as text.
	get(t, srv, idPath(f.hostile.EventID)).want(t, http.StatusOK, "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;")
	// JSON carries it as data (escaped for HTML as well).
	get(t, srv, "/api"+idPath(f.hostile.EventID)).want(t, http.StatusOK, `\u003cscript\u003e`)

	csp := get(t, srv, "/").header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
}

func TestReadOnly(t *testing.T) {
	f := newFixture(t)
	_, srv := server(t, f.store)
	last := f.store.LastSequence()
	for _, path := range []string{"/", "/streams", "/stream?entity=account:alice", idPath(f.sent.EventID), "/api/tail", "/graph?event=1", "/static/style.css", "/nothing"} {
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
			r := do(t, srv, m, path)
			if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: %d (Allow %q), want 405", m, path, r.status, r.header.Get("Allow"))
			}
		}
	}
	for _, path := range []string{"/", "/api/tail"} {
		if r := do(t, srv, http.MethodHead, path); r.status != http.StatusOK || r.body != "" {
			t.Errorf("HEAD %s: %d %q", path, r.status, r.body)
		}
	}
	if got := f.store.LastSequence(); got != last {
		t.Errorf("the store moved from %d to %d", last, got)
	}
}

func TestInputsChecked(t *testing.T) {
	f := newFixture(t)
	_, srv := server(t, f.store)
	long := strings.Repeat("x", 513)
	for _, tc := range []struct {
		path   string
		status int
		says   string
	}{
		{"/stream", 400, "entity is required"},
		{"/stream?entity=account%01x", 400, "control character"},
		{"/stream?entity=%ff", 400, "not valid UTF-8"},
		{"/stream?entity=" + long, 400, "longer than 512 bytes"},
		{"/stream?entity=account:alice&limit=0", 400, "limit must be"},
		{"/stream?entity=account:alice&limit=501", 400, "limit must be"},
		{"/stream?entity=account:alice&limit=ten", 400, "limit must be"},
		{"/stream?entity=account:alice&from=-1", 400, "from must be"},
		{"/stream?entity=account:alice&from=99999999999999999999999", 400, "from must be"},
		{"/stream?entity=account:alice&order=sideways", 400, "order must be"},
		{"/stream?entity=account:zed", 404, "no stream"},
		{"/streams?prefix=%00", 400, "control character"},
		{"/streams?scope=" + long, 400, "scope is longer"},
		{"/streams?after=x", 400, "after must be"},
		{"/log?from=1e3", 400, "from must be"},
		{"/event/nonsense", 400, "neither an event id"},
		{"/event/0", 400, "sequences start at 1"},
		{"/event/999", 404, "no event 999"},
		{"/event/0195a7c4-8d2e-7b41-9c3a-2f6e1d0b5a77", 404, "no event"},
		{idPath(f.sent.EventID) + "?chain=maybe", 400, "chain must be"},
		{"/graph", 400, "event or correlation is required"},
		{"/graph?event=1&correlation=x", 400, "not both"},
		{"/graph?correlation=x", 400, "correlation must be"},
		{"/graph?correlation=0195a7c4-8d2e-7b41-9c3a-2f6e1d0b5a77", 404, "no correlation group"},
		{"/graph.svg?event=x", 400, "neither an event id"},
		{"/tail?from=x", 400, "from must be"},
		{"/api/tail?entity=%01", 400, "control character"},
		{"/find?q=%01", 400, "control character"},
		{"/api/stream?entity=%ff", 400, `"error"`},
		{"/nothing", 404, ""},
	} {
		r := get(t, srv, tc.path)
		if r.status != tc.status || !strings.Contains(r.body, tc.says) {
			t.Errorf("%s: %d %q, want %d with %q", tc.path, r.status, r.body, tc.status, tc.says)
		}
	}
	r := get(t, srv, "/api/tail", "Last-Event-ID", "x")
	if r.status != 400 {
		t.Errorf("a bad Last-Event-ID: %d %q", r.status, r.body)
	}
}

func TestPaging(t *testing.T) {
	f := newFixture(t)
	_, srv := server(t, f.store)

	// The stream list, two at a time, lists every stream once.
	var entities []string
	after := uint64(0)
	for pages := 0; ; pages++ {
		p := getJSON[explorer.StreamsPage](t, srv, fmt.Sprintf("/api/streams?limit=2&after=%d", after))
		for _, s := range p.Streams {
			entities = append(entities, s.Entity)
		}
		if p.Next == 0 {
			break
		}
		if pages > 10 || p.Next <= after {
			t.Fatalf("the stream cursor does not advance: %d after %d", p.Next, after)
		}
		after = p.Next
	}
	if len(entities) != 7 || entities[0] != "account:alice" || entities[5] != "order:1" {
		t.Errorf("streams paged: %q", entities)
	}

	// A stream, three at a time, both ways.
	for _, order := range []string{"asc", "desc"} {
		var versions []uint64
		from := uint64(0)
		for {
			p := getJSON[explorer.StreamPage](t, srv, fmt.Sprintf("/api/stream?entity=account:alice&limit=3&order=%s&from=%d", order, from))
			for _, e := range p.Events {
				versions = append(versions, e.Version)
			}
			if p.Next == 0 {
				break
			}
			from = p.Next
		}
		want := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
		if order == "desc" {
			slices.Reverse(want)
		}
		if !slices.Equal(versions, want) {
			t.Errorf("account:alice %s: versions %v", order, versions)
		}
	}

	// The log, five at a time, both ways.
	for _, order := range []string{"asc", "desc"} {
		var seqs []uint64
		from := uint64(0)
		for {
			p := getJSON[explorer.LogPage](t, srv, fmt.Sprintf("/api/log?limit=5&order=%s&from=%d", order, from))
			for _, e := range p.Events {
				seqs = append(seqs, e.Sequence)
			}
			if p.Next == 0 {
				break
			}
			from = p.Next
		}
		if len(seqs) != 21 || (order == "asc") != (seqs[0] == 1) {
			t.Errorf("log %s: %v", order, seqs)
		}
	}
}

func TestGraphJSON(t *testing.T) {
	f := newFixture(t)
	_, srv := server(t, f.store)
	g := getJSON[explorer.GraphPage](t, srv, "/api/graph?event="+f.received.EventID.String())
	if g.Traced != f.received.EventID.String() || len(g.Events) != 3 {
		t.Fatalf("graph: %+v", g)
	}
	if g.Parents[f.received.EventID.String()] != f.sent.EventID.String() || g.Parents[f.hostile.EventID.String()] != f.sent.EventID.String() {
		t.Errorf("parents: %v", g.Parents)
	}
}

func TestToken(t *testing.T) {
	f := newFixture(t)
	_, srv := server(t, f.store, explorer.WithToken("s3cret"))
	get(t, srv, "/").want(t, http.StatusUnauthorized, "token is required")
	get(t, srv, "/api/health", "Authorization", "Bearer wrong").want(t, http.StatusUnauthorized)
	get(t, srv, "/api/health", "Authorization", "Bearer s3cret").want(t, http.StatusOK, `"Events": 21`)
	get(t, srv, "/streams?token=nope").want(t, http.StatusUnauthorized)

	r := get(t, srv, "/streams?prefix=account:&token=s3cret")
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/streams?prefix=account%3A" {
		t.Fatalf("token in the query: %d to %q", r.status, r.header.Get("Location"))
	}
	cookie := r.header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "s3cret"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("cookie %q lacks %s", cookie, want)
		}
	}
	name, value, _ := strings.Cut(strings.Split(cookie, ";")[0], "=")
	get(t, srv, "/streams?prefix=account:", "Cookie", name+"="+value).want(t, http.StatusOK, "account:alice")
}

func TestHealthAndProjections(t *testing.T) {
	f := newFixture(t)
	region := &batpak.Region{EntityPrefix: "account:"}
	_, srv := server(t, f.store,
		explorer.WithHealth(func(h *explorer.Health) {
			h.Location = "/data/bank"
			h.Checks = append(h.Checks, explorer.Check{What: "verify", Events: 21, Segments: 1, Problems: []string{"0000000001.seg at offset 7: frame: " + hostile}})
		}),
		explorer.WithProjections(func(context.Context) ([]explorer.Projection, error) {
			return []explorer.Projection{
				{Name: "balances", Next: 5, Region: region, State: "running"},
				{Name: "all", Next: 22},
			}, nil
		}))
	r := get(t, srv, "/")
	r.want(t, http.StatusOK, "/data/bank", "1 problem(s) found", "0000000001.seg at offset 7")
	if strings.Contains(r.body, "<script>alert") {
		t.Error("a problem's text reached the page as markup")
	}
	// The store's own scrub shows beside the application's check.
	if _, err := f.store.Scrub(t.Context()); err != nil {
		t.Fatal(err)
	}
	h := getJSON[explorer.HealthPage](t, srv, "/api/health")
	if len(h.Checks) != 2 || !strings.HasPrefix(h.Checks[0].What, "scrub") || len(h.Checks[0].Problems) != 0 || h.Checks[1].What != "verify" {
		t.Errorf("checks: %+v", h.Checks)
	}
	get(t, srv, "/").want(t, http.StatusOK, "scrub of the sealed segments", "OK: no damage")

	p := getJSON[explorer.ProjectionsPage](t, srv, "/api/projections")
	if !p.Exposed || len(p.Projections) != 2 {
		t.Fatalf("projections: %+v", p)
	}
	// balances has seen 1-4 of 21: 17 sequences behind, of which the
	// account events (5 to 19) are pending.
	if b := p.Projections[0]; b.Behind != 17 || b.Pending != 15 || b.Region != "prefix account:" {
		t.Errorf("balances: %+v", b)
	}
	if a := p.Projections[1]; a.Behind != 0 || a.Pending != -1 {
		t.Errorf("all: %+v", a)
	}
	get(t, srv, "/projections").want(t, http.StatusOK, "balances", "17 sequences", "caught up")
}
