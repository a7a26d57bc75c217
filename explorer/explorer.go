package explorer

import (
	"crypto/subtle"
	"embed"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

//go:embed static
var staticFiles embed.FS

// Explorer serves the pages and the JSON API of one store. It is an
// [http.Handler]; see the package documentation for its addresses.
type Explorer struct {
	cfg   config
	mux   *http.ServeMux
	pages *pages
	names *kindNamer
	tails chan struct{} // one token per live tail being served
	check sync.Mutex    // one full chain check at a time

	mu  sync.Mutex // protects cur
	cur *generation
}

// generation is one store the explorer reads. [Explorer.Swap] replaces it;
// the requests that took it hold it until they end, and live tails move to
// the next one when swapped is closed.
type generation struct {
	store   Store
	users   sync.WaitGroup
	swapped chan struct{}
}

// New returns an explorer of s.
func New(s Store, opts ...Option) *Explorer {
	cfg := config{title: "batpak", maxTails: 32, heartbeat: 15 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	cfg.base = strings.TrimRight(cfg.base, "/")
	e := &Explorer{
		cfg:   cfg,
		cur:   &generation{store: s, swapped: make(chan struct{})},
		tails: make(chan struct{}, cfg.maxTails),
	}
	e.names = newKindNamer(cfg.registry, cfg.kindNames)
	e.pages = newPages(cfg)
	e.routes()
	return e
}

// Swap makes s the store that requests read from now on and returns once
// no request reads the previous one any more: live tails continue on s from
// where they were. The caller may then close the previous store. A program
// that serves a read-only view of a store another process writes swaps in
// a fresh view whenever the files change (as `batpak serve` does).
func (e *Explorer) Swap(s Store) {
	e.mu.Lock()
	old := e.cur
	e.cur = &generation{store: s, swapped: make(chan struct{})}
	e.mu.Unlock()
	close(old.swapped)
	old.users.Wait()
}

// acquire returns the current generation, held until release.
func (e *Explorer) acquire() *generation {
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.cur
	g.users.Add(1) // under mu: never after Swap's Wait began on g
	return g
}

func (g *generation) release() { g.users.Done() }

func (e *Explorer) routes() {
	m := http.NewServeMux()
	page := func(pattern, tmpl string, fn func(*http.Request, Store) (any, error)) {
		m.HandleFunc("GET "+pattern, func(w http.ResponseWriter, r *http.Request) {
			g := e.acquire()
			defer g.release()
			v, err := fn(r, g.store)
			e.render(w, r, tmpl, v, err)
		})
		m.HandleFunc("GET /api"+pattern, func(w http.ResponseWriter, r *http.Request) {
			g := e.acquire()
			defer g.release()
			v, err := fn(r, g.store)
			writeJSON(w, v, err)
		})
	}
	page("/{$}", "health", e.health)
	page("/health", "health", e.health)
	page("/streams", "streams", e.streams)
	page("/stream", "stream", e.stream)
	page("/log", "log", e.log)
	page("/event/{ref}", "event", e.event)
	page("/graph", "graph", e.graph)
	page("/projections", "projections", e.projectionsPage)
	m.HandleFunc("GET /graph.svg", e.graphSVG)
	m.HandleFunc("GET /tail", func(w http.ResponseWriter, r *http.Request) {
		v, err := e.tailPage(r)
		e.render(w, r, "tail", v, err)
	})
	m.HandleFunc("GET /api/tail", e.tail)
	m.HandleFunc("GET /find", e.find)
	static, _ := fs.Sub(staticFiles, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	e.mux = m
}

// ServeHTTP serves a request: GET and HEAD only, after the token check.
func (e *Explorer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "the explorer is read-only: only GET and HEAD", http.StatusMethodNotAllowed)
		return
	}
	if e.cfg.token != "" && !e.authorized(w, r) {
		return
	}
	e.mux.ServeHTTP(w, r)
}

const tokenCookie = "batpak_explorer_token"

// authorized checks the request's token. A token in the query string is
// swapped for a cookie and a redirect to the same address without it, so
// it stays out of the history and of the links.
func (e *Explorer) authorized(w http.ResponseWriter, r *http.Request) bool {
	same := func(s string) bool { return subtle.ConstantTimeCompare([]byte(s), []byte(e.cfg.token)) == 1 }
	if auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && same(auth) {
		return true
	}
	if c, err := r.Cookie(tokenCookie); err == nil && same(c.Value) {
		return true
	}
	q := r.URL.Query()
	if t := q.Get("token"); t != "" && same(t) {
		http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: e.cfg.token, Path: e.cfg.base + "/",
			HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
		q.Del("token")
		u := url.URL{Path: e.cfg.base + r.URL.Path, RawQuery: q.Encode()}
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
		return false
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="batpak explorer"`)
	http.Error(w, "a token is required: open the address with ?token=... once, or send Authorization: Bearer ...", http.StatusUnauthorized)
	return false
}

// inputError is a request the explorer refuses (400).
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

// notFoundError is a request for something the store does not hold (404).
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string { return e.msg }

func statusOf(err error) int {
	var ie *inputError
	var nf *notFoundError
	switch {
	case errors.As(err, &ie):
		return http.StatusBadRequest
	case errors.As(err, &nf):
		return http.StatusNotFound
	case errors.Is(err, errBusy):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

var errBusy = errors.New("explorer: busy, try again")
