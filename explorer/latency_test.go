package explorer_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
)

// The shape of the large store: accounts in two scopes, deposits and a hot
// ledger stream written in atomic batches (the events of a batch share a
// correlation group), transfers appended one by one (a sent event causing
// a received one: groups of two), and a few streams of a third scope
// created last.
const (
	largeEvents    = 1_000_000
	largeAccounts  = 10_000
	largeBatch     = 1_000
	largeTransfers = 50 // per batch, two events each
	largeShops     = 10
)

func accountName(i int) string { return fmt.Sprintf("account:%05d", i%largeAccounts) }

func accountCoord(i int) batpak.Coordinate {
	scope := "bank:us"
	if i%largeAccounts%2 == 0 {
		scope = "bank:eu"
	}
	return batpak.Coordinate{Entity: accountName(i), Scope: scope}
}

// buildLargeStore writes the large store into dir without syncs.
func buildLargeStore(t *testing.T, dir string) {
	t.Helper()
	s, err := eventstore.Open(dir, eventstore.WithSyncMode(eventstore.SyncNone))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	n, i := 0, 0
	for n < largeEvents-largeShops {
		for range min(largeTransfers, (largeEvents-largeShops-n)/2) {
			from, to := i, i*7+3
			i++
			rs, err := s.Append(ctx, accountCoord(from), []batpak.Event{{Kind: kindSent,
				Payload: map[string]any{"To": accountName(to), "Amount": 10 + to%90, "Day": "2026-01-02"}}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Append(ctx, accountCoord(to), []batpak.Event{{Kind: kindReceived,
				Payload: map[string]any{"From": accountName(from), "Amount": 10 + to%90}}}, batpak.WithCausation(rs[0].EventID)); err != nil {
				t.Fatal(err)
			}
			n += 2
		}
		size := min(largeBatch-2*largeTransfers, largeEvents-largeShops-n)
		if size <= 0 {
			break
		}
		items := make([]batpak.BatchItem, 0, size)
		for len(items) < size*9/10 {
			items = append(items, batpak.BatchItem{Coordinate: accountCoord(i),
				Event: batpak.Event{Kind: kindDeposit, Payload: Deposit{Amount: int64(i % 1000)}}})
			i++
		}
		for len(items) < size {
			items = append(items, batpak.BatchItem{Coordinate: batpak.Coordinate{Entity: "ledger:main", Scope: "bank:eu"},
				Event: batpak.Event{Kind: kindNote, Payload: map[string]any{"line": n + len(items), "text": "posted"}}})
		}
		if _, err := s.AppendBatch(ctx, items); err != nil {
			t.Fatal(err)
		}
		n += len(items)
	}
	for k := range largeShops {
		if _, err := s.Append(ctx, batpak.Coordinate{Entity: fmt.Sprintf("order:%d", k), Scope: "shop"},
			[]batpak.Event{{Kind: kindNote, Payload: map[string]any{"items": k}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("built a store of %d events in %s", s.LastSequence(), time.Since(start).Round(time.Millisecond))
}

// TestLatencyMillion measures the explorer's pages on a store of 1,000,000
// events and fails if a page's median exceeds 100 ms. It is for a person
// to run, without -race:
//
//	BATPAK_EXPLORER_LATENCY=1 go test -run TestLatencyMillion -v -timeout 30m ./explorer/
//
// BATPAK_EXPLORER_STORE=DIR keeps the store in DIR (built if DIR is
// empty) to measure again without rebuilding it. docs/explorer.md has the
// figures.
func TestLatencyMillion(t *testing.T) {
	if os.Getenv("BATPAK_EXPLORER_LATENCY") == "" {
		t.Skip("set BATPAK_EXPLORER_LATENCY=1 to build a 1,000,000-event store and measure the pages")
	}
	dir := os.Getenv("BATPAK_EXPLORER_STORE")
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "large")
	}
	if _, err := os.Stat(filepath.Join(dir, eventstore.CheckpointFileName)); err != nil {
		buildLargeStore(t, dir)
	}
	opened := time.Now()
	s, err := eventstore.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st := s.Stats()
	t.Logf("opened read-only in %s (%s): %d events, %d streams, %d segments, %d MiB",
		time.Since(opened).Round(time.Millisecond), st.ColdStart.Path, st.Events, st.Streams, st.Segments, st.DiskBytes>>20)
	if st.Events != largeEvents {
		t.Fatalf("the store holds %d events, want %d", st.Events, largeEvents)
	}
	_, srv := server(t, s)

	// Events to visit: a transfer and a deposit in the middle of the log,
	// and the ledger. The first causal lookup builds the store's link
	// index (as batpak serve does before serving a view).
	var sentID, depositID uuid.UUID
	for rec, err := range s.Query(context.Background(), batpak.Region{FromSequence: largeEvents / 2, Kinds: []kind.Kind{kindSent, kindDeposit}}) {
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case rec.Kind == kindSent && sentID == uuid.Nil:
			sentID = rec.ID
		case rec.Kind == kindDeposit && depositID == uuid.Nil:
			depositID = rec.ID
		}
		if sentID != uuid.Nil && depositID != uuid.Nil {
			break
		}
	}
	linked := time.Now()
	s.CausedBy(uuid.Nil)
	t.Logf("built the causation and correlation index in %s", time.Since(linked).Round(time.Millisecond))
	ledger := s.StreamVersion(batpak.Coordinate{Entity: "ledger:main", Scope: "bank:eu"})
	var ledgerLast uint64
	for rec, err := range s.ReadStream(context.Background(), batpak.Coordinate{Entity: "ledger:main", Scope: "bank:eu"}, 0, batpak.Backward(), batpak.Limit(1)) {
		if err != nil {
			t.Fatal(err)
		}
		ledgerLast = rec.Sequence
	}
	mid := strconv.Itoa(largeEvents / 2)
	pages := []struct{ name, path, shows string }{
		{"health", "/", ""},
		{"streams, first page", "/streams", ""},
		{"streams, last page (after 9,990)", "/streams?after=9990", "order:9"},
		{"streams by prefix", "/streams?prefix=" + "account:0999", "account:09999"},
		{"streams by scope (3rd scope, created last)", "/streams?scope=shop", "order:9"},
		{"stream of 100 events", "/stream?entity=" + accountName(42), ""},
		{fmt.Sprintf("stream of %d events, first page", ledger), "/stream?entity=ledger:main", ""},
		{fmt.Sprintf("stream of %d events, from version %d", ledger, ledger/2), fmt.Sprintf("/stream?entity=ledger:main&from=%d", ledger/2), ""},
		{fmt.Sprintf("stream of %d events, newest first", ledger), "/stream?entity=ledger:main&order=desc", ""},
		{"log, newest first", "/log", ""},
		{"log from #500,000", "/log?order=asc&from=" + mid, ""},
		{"log, 500 events", "/log?limit=500&from=" + mid, ""},
		{"event #500,000 (record and chain check)", "/event/" + mid, ""},
		{"event: a transfer", "/event/" + sentID.String(), ""},
		{"causal graph of a transfer (2 events)", "/graph?event=" + sentID.String(), ""},
		{fmt.Sprintf("causal graph of a batch (%d events)", largeBatch-2*largeTransfers), "/graph?event=" + depositID.String(), ""},
		{"JSON: stream page", "/api/stream?entity=ledger:main&from=" + strconv.FormatUint(ledger/2, 10), ""},
	}
	const runs = 21
	var table strings.Builder
	table.WriteString("| page | median | p95 | max |\n|---|---:|---:|---:|\n")
	var slow []string
	client := srv.Client()
	for _, p := range pages {
		var ds []time.Duration
		for range runs {
			start := time.Now()
			resp, err := client.Get(srv.URL + p.path)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			ds = append(ds, time.Since(start))
			if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), p.shows) {
				t.Fatalf("%s: status %d, %v, want it to show %q:\n%s", p.path, resp.StatusCode, err, p.shows, body)
			}
		}
		slices.Sort(ds)
		med, p95, top := ds[runs/2], ds[runs*95/100], ds[runs-1]
		fmt.Fprintf(&table, "| %s | %s | %s | %s |\n", p.name, ms(med), ms(p95), ms(top))
		if med > 100*time.Millisecond {
			slow = append(slow, p.name)
		}
	}

	// The live tail: from the request to the first event, at the end of
	// the log and from the middle.
	for _, from := range []uint64{largeEvents, largeEvents / 2} {
		var ds []time.Duration
		for range runs {
			ctx, cancel := context.WithCancel(t.Context())
			start := time.Now()
			tail := openTail(t, ctx, srv, fmt.Sprintf("/api/tail?from=%d", from))
			tail.record()
			ds = append(ds, time.Since(start))
			cancel()
			_ = tail.resp.Body.Close()
		}
		slices.Sort(ds)
		fmt.Fprintf(&table, "| live tail from #%d, first event | %s | %s | %s |\n", from, ms(ds[runs/2]), ms(ds[runs*95/100]), ms(ds[runs-1]))
	}

	// The full chain check of the hot stream is not a page: it runs when
	// asked for, once.
	start := time.Now()
	get(t, srv, fmt.Sprintf("/event/%d?chain=full", ledgerLast)).want(t, http.StatusOK, "verifies")
	fmt.Fprintf(&table, "| full chain check of ledger:main (%d events), on demand | %s | | |\n", ledger, ms(time.Since(start)))
	t.Logf("latency over %d runs each:\n%s", runs, table.String())
	if len(slow) > 0 {
		t.Errorf("median above 100 ms: %s", strings.Join(slow, "; "))
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
