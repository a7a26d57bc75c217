package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/explorer"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/projection"
)

type serveOptions struct {
	addr        string
	token       string
	tlsCert     string
	tlsKey      string
	interval    time.Duration
	verify      bool
	projections string
	kindNames   []string
}

func (a *app) serveCmd() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve DIR",
		Short: "Serve a read-only web explorer of the store",
		Long: `serve opens the store read-only and serves a web explorer of it until
interrupted (Ctrl-C): health, streams, events with decoded payloads, each
event's full record and hash-chain check, causal graphs drawn in the page,
a live tail, and projections. docs/explorer.md lists the addresses.

Nothing it serves can write, repair or delete. It works alongside a writer
in another process: every --interval it looks at the segment files and,
when they changed, reopens the store read-only so pages and live tails see
the new events. At start it verifies the files in the background (as
'batpak verify' does) and shows the result on the health page.

It listens on 127.0.0.1 unless --addr says otherwise. An address other
than a loopback one needs --token (every request must present it: open
the page once with ?token=... in a browser) or --tls-cert and --tls-key.
The token can also come from the BATPAK_EXPLORER_TOKEN environment
variable, which keeps it out of the process list.

Exit codes: 0 it served until interrupted; 1 the store does not open or it
cannot listen; 2 usage error.`,
		Example: `  batpak serve ./data
  batpak serve ./data --addr 127.0.0.1:9000 --projections ./data/checkpoints
  BATPAK_EXPLORER_TOKEN=s3cret batpak serve ./data --addr 0.0.0.0:8080
  batpak serve ./data --kind-name 1:004=TransferSent --kind-name 1:005=TransferReceived`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if o.token == "" {
				o.token = os.Getenv("BATPAK_EXPLORER_TOKEN")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return a.serve(ctx, args[0], o)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "127.0.0.1:8080", "address to listen on (host:port; port 0 picks a free one)")
	f.StringVar(&o.token, "token", "", "require this token on every request (default $BATPAK_EXPLORER_TOKEN)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "serve HTTPS with this certificate file (PEM)")
	f.StringVar(&o.tlsKey, "tls-key", "", "the private key of --tls-cert (PEM)")
	f.DurationVar(&o.interval, "interval", time.Second, "how often to look for new events")
	f.BoolVar(&o.verify, "verify", true, "verify the files in the background at start and show the result")
	f.StringVar(&o.projections, "projections", "", "a directory of projection checkpoint files (projection.FileCheckpoints) to show with their lag")
	f.StringArrayVar(&o.kindNames, "kind-name", nil, "name a kind: KIND=NAME, the kind as category:type in hex (1:004=TransferSent); repeatable")
	return cmd
}

// check validates the options before anything is opened.
func (o *serveOptions) check() (map[kind.Kind]string, error) {
	if o.interval <= 0 {
		return nil, usagef("--interval must be positive")
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, usagef("--tls-cert and --tls-key go together")
	}
	host, _, err := net.SplitHostPort(o.addr)
	if err != nil {
		return nil, usagef("--addr %q: %v", o.addr, err)
	}
	if !isLoopback(host) && o.token == "" && o.tlsCert == "" {
		return nil, usagef("--addr %s is reachable from other machines: give --token (or $BATPAK_EXPLORER_TOKEN) or --tls-cert and --tls-key", o.addr)
	}
	names := make(map[kind.Kind]string)
	for _, kn := range o.kindNames {
		ks, n, ok := strings.Cut(kn, "=")
		if !ok || strings.TrimSpace(n) == "" {
			return nil, usagef("--kind-name %q: want KIND=NAME, like 1:004=TransferSent", kn)
		}
		k, err := parseKind(strings.TrimSpace(ks))
		if err != nil {
			return nil, usagef("--kind-name: %v", err)
		}
		names[k] = strings.TrimSpace(n)
	}
	return names, nil
}

// isLoopback reports whether host (an address to listen on, or a Host
// header's name) is this machine only.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (a *app) serve(ctx context.Context, dir string, o serveOptions) error {
	names, err := o.check()
	if err != nil {
		return err
	}
	if o.projections != "" {
		if fi, err := os.Stat(o.projections); err != nil || !fi.IsDir() {
			return failf("--projections %s is not a directory", o.projections)
		}
	}
	state := readDirState(dir) // before opening: a later change is seen
	s, err := openView(dir)
	if err != nil {
		return err
	}
	v := &serveView{dir: dir, store: s, state: state}
	opts := []explorer.Option{
		explorer.WithHealth(v.health),
		explorer.WithKindNames(func(k kind.Kind) string { return names[k] }),
	}
	if o.token != "" {
		opts = append(opts, explorer.WithToken(o.token))
	}
	if o.projections != "" {
		opts = append(opts, explorer.WithProjections(projectionsIn(o.projections)))
	}
	e := explorer.New(s, opts...)
	v.explorer = e
	defer func() { _ = v.close() }()

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	var h http.Handler = e
	if host, _, _ := net.SplitHostPort(o.addr); isLoopback(host) && o.token == "" {
		h = loopbackHosts(e)
	}
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
	}
	scheme := "http"
	if o.tlsCert != "" {
		scheme = "https"
	}
	fmt.Fprintf(a.stdout, "batpak explorer of %s on %s://%s/\n", dir, scheme, ln.Addr())
	if o.tlsCert != "" && o.token == "" {
		fmt.Fprintf(a.stderr, "batpak serve: no --token: anyone who reaches %s can read the store\n", ln.Addr())
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if o.verify {
		wg.Go(func() { v.verify() })
	}
	wg.Go(func() { v.watch(watchCtx, o.interval, a.stderr) })

	served := make(chan error, 1)
	go func() {
		if o.tlsCert != "" {
			served <- srv.ServeTLS(ln, o.tlsCert, o.tlsKey)
		} else {
			served <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	cancelBase() // ends the live tails, which never go idle
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		_ = srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// loopbackHosts refuses requests whose Host is not a name of this machine:
// a web page elsewhere cannot reach a loopback explorer through a domain
// name it rebinds to 127.0.0.1 (DNS rebinding).
func loopbackHosts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !isLoopback(strings.Trim(host, "[]")) {
			http.Error(w, "this explorer answers requests to localhost only", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// serveView is the read-only view being served, reopened when the files
// change, and the result of the background verify.
type serveView struct {
	dir      string
	explorer *explorer.Explorer

	mu       sync.Mutex // protects the fields below
	store    *eventstore.Store
	state    dirState
	reopened time.Time
	check    *explorer.Check
}

// watch reopens the store whenever its segment files change, until ctx
// ends; trouble opening is reported once per distinct error and the old
// view stays. A reopen of a large store takes a while (its index is
// rebuilt from the checkpoint and what follows it), so the files are
// looked at no more often than every four times the last reopen took:
// serve spends at most a fifth of its time reopening.
func (v *serveView) watch(ctx context.Context, interval time.Duration, stderr io.Writer) {
	var lastErr string
	wait := interval
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		v.mu.Lock()
		prev := v.state
		v.mu.Unlock()
		state := readDirState(v.dir)
		if state.unchangedSince(prev) {
			continue
		}
		start := time.Now()
		s, err := openView(v.dir)
		if err != nil {
			if msg := err.Error(); msg != lastErr {
				fmt.Fprintf(stderr, "batpak serve: %v (still serving the view opened before; retrying every %s)\n", err, interval)
				lastErr = msg
			}
			continue
		}
		wait = max(interval, 4*time.Since(start))
		lastErr = ""
		v.explorer.Swap(s) // returns when no request reads the old view
		v.mu.Lock()
		old := v.store
		v.store, v.state, v.reopened = s, state, time.Now()
		v.mu.Unlock()
		_ = old.Close()
	}
}

// openView opens the store read-only and builds its causation and
// correlation index, which the store builds on first use (seconds for
// millions of events): the explorer's first page needs it, and the view
// being replaced serves requests meanwhile.
func openView(dir string) (*eventstore.Store, error) {
	s, err := openReadOnly(dir)
	if err != nil {
		return nil, err
	}
	s.CausedBy(uuid.Nil)
	return s, nil
}

func (v *serveView) close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.store.Close()
}

// verify checks the files once, as 'batpak verify' does.
func (v *serveView) verify() {
	c := &explorer.Check{What: "verify (batpak serve, at start)", Running: true, Started: time.Now()}
	v.setCheck(c)
	rep, err := eventstore.Verify(v.dir)
	done := *c
	done.Running, done.Finished = false, time.Now()
	if err != nil {
		done.Err = err.Error()
	} else {
		done.Events, done.Segments = rep.Events, rep.Segments
		for _, p := range rep.Problems {
			done.Problems = append(done.Problems, p.String())
		}
		for _, p := range rep.Warnings {
			done.Warnings = append(done.Warnings, p.String())
		}
		if rep.Checkpoint != "valid" && rep.Checkpoint != "absent" {
			done.Warnings = append(done.Warnings, "checkpoint: "+rep.Checkpoint)
		}
	}
	v.setCheck(&done)
}

func (v *serveView) setCheck(c *explorer.Check) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.check = c
}

// health adds what serve knows to the explorer's health page.
func (v *serveView) health(h *explorer.Health) {
	v.mu.Lock()
	defer v.mu.Unlock()
	h.Location = v.dir
	if abs, err := filepath.Abs(v.dir); err == nil {
		h.Location = abs
	}
	if v.check != nil {
		h.Checks = append(h.Checks, *v.check)
	}
	if n := quarantined(v.dir); n > 0 {
		h.Notes = append(h.Notes, fmt.Sprintf("%d files in %s/, moved aside by an earlier repair", n, eventstore.QuarantineDir))
	}
	if !v.reopened.IsZero() {
		h.Notes = append(h.Notes, "read-only view, reopened at "+v.reopened.UTC().Format(time.TimeOnly)+" UTC when the files changed")
	}
}

// projectionsIn lists the projection checkpoints in dir: one file
// NAME.checkpoint per projection (projection.FileCheckpoints).
func projectionsIn(dir string) func(context.Context) ([]explorer.Projection, error) {
	return func(ctx context.Context) ([]explorer.Projection, error) {
		des, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		cps, err := projection.NewFileCheckpoints(dir)
		if err != nil {
			return nil, err
		}
		var out []explorer.Projection
		for _, de := range des {
			n, ok := strings.CutSuffix(de.Name(), ".checkpoint")
			if !ok || de.IsDir() {
				continue
			}
			p := explorer.Projection{Name: n}
			if p.Next, err = cps.Load(ctx, n); err != nil {
				p.State = err.Error()
			}
			out = append(out, p)
		}
		slices.SortFunc(out, func(x, y explorer.Projection) int { return strings.Compare(x.Name, y.Name) })
		return out, nil
	}
}
