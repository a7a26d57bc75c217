package storetest

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/batpak-go/batpak"
)

// work identifies the append that wrote an event.
type work struct {
	W, I int
}

// testConcurrentExpectedVersion: workers append with Exactly(current) to a
// few shared streams and retry on conflict. Every version has exactly one
// winner, versions and sequences have no gaps and no duplicates, and each
// stream ends at the number of its successful appends.
func testConcurrentExpectedVersion(t *testing.T, e *env) {
	s := e.s
	const workers, perWorker = 8, 12
	streams := []string{"cc:a", "cc:b", "cc:c"}
	type win struct {
		entity string
		w      work
		r      batpak.Receipt
	}
	wins := make([][]win, workers)
	var conflicts atomic.Int64
	var wg sync.WaitGroup
	ctx := testContext(t)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				entity := streams[(w+i)%len(streams)]
				expected := s.StreamVersion(coord(entity))
				for attempt := 0; ; attempt++ {
					if attempt > 10_000 {
						t.Errorf("worker %d: no progress on %s after %d conflicts", w, entity, attempt)
						return
					}
					payload := work{w, i}
					rs, err := s.Append(ctx, coord(entity), []batpak.Event{{Kind: kindDeposited, Payload: payload}},
						batpak.ExpectVersion(batpak.Exactly(expected)))
					if err == nil {
						if rs[0].Version != expected+1 {
							t.Errorf("append expecting version %d got version %d", expected, rs[0].Version)
						}
						wins[w] = append(wins[w], win{entity, payload, rs[0]})
						break
					}
					var vc *batpak.VersionConflictError
					if !errors.As(err, &vc) {
						t.Errorf("worker %d: %v", w, err)
						return
					}
					if vc.Actual == expected || vc.Stream != coord(entity) {
						t.Errorf("conflict %+v when expecting version %d of %s", *vc, expected, entity)
						return
					}
					conflicts.Add(1)
					if attempt%2 == 0 {
						expected = vc.Actual
					} else {
						expected = s.StreamVersion(coord(entity))
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d conflicts retried", conflicts.Load())
	const total = workers * perWorker
	bySeq := make(map[uint64]win, total)
	perStream := make(map[string][]win)
	for w, ws := range wins {
		if len(ws) != perWorker {
			t.Fatalf("worker %d made %d appends, want %d", w, len(ws), perWorker)
		}
		for i, x := range ws {
			if i > 0 && x.r.Sequence <= ws[i-1].r.Sequence {
				t.Fatalf("worker %d: sequence %d after %d: one caller's appends are out of order", w, x.r.Sequence, ws[i-1].r.Sequence)
			}
			if _, dup := bySeq[x.r.Sequence]; dup {
				t.Fatalf("sequence %d acknowledged twice", x.r.Sequence)
			}
			bySeq[x.r.Sequence] = x
			perStream[x.entity] = append(perStream[x.entity], x)
		}
	}
	for seq := uint64(1); seq <= total; seq++ {
		if _, ok := bySeq[seq]; !ok {
			t.Fatalf("sequence %d was never acknowledged: a gap", seq)
		}
	}
	if last := s.LastSequence(); last != total {
		t.Fatalf("LastSequence = %d, want %d", last, total)
	}
	for _, entity := range streams {
		ws := perStream[entity]
		slices.SortFunc(ws, func(a, b win) int { return int(a.r.Version) - int(b.r.Version) })
		for i, x := range ws {
			if x.r.Version != uint64(i+1) {
				t.Fatalf("%s: acknowledged versions %v...: not one winner per version", entity, x.r.Version)
			}
		}
		if v := s.StreamVersion(coord(entity)); v != uint64(len(ws)) {
			t.Fatalf("StreamVersion(%q) = %d, want %d successful appends", entity, v, len(ws))
		}
		recs := collect(t, s.ReadStream(bgctx, coord(entity), 0))
		if len(recs) != len(ws) {
			t.Fatalf("%s holds %d events, %d were acknowledged", entity, len(recs), len(ws))
		}
		for i := range recs {
			checkReceipt(t, &recs[i], &ws[i].r)
			var got work
			if err := recs[i].Decode(&got); err != nil || got != ws[i].w {
				t.Fatalf("%s v%d holds %+v (%v), want %+v", entity, recs[i].Version, got, err, ws[i].w)
			}
		}
	}
	all := collect(t, s.ReadAll(bgctx, 0))
	if !slices.Equal(seqsOf(all), span(1, total)) {
		t.Fatalf("ReadAll sequences %v, want 1..%d", seqsOf(all), total)
	}
}

// testConcurrentDistinctStreams: many writers with Any on their own streams
// all succeed; receipts are distinct and dense, and each writer's stream
// holds its events in call order.
func testConcurrentDistinctStreams(t *testing.T, e *env) {
	s := e.s
	const workers, perWorker = 16, 12
	receipts := make([][]batpak.Receipt, workers)
	var wg sync.WaitGroup
	ctx := testContext(t)
	for w := range workers {
		wg.Go(func() {
			c := coord(fmt.Sprintf("dist:%d", w))
			for i := range perWorker {
				rs, err := s.Append(ctx, c, []batpak.Event{{Kind: kindDeposited, Payload: work{w, i}}})
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				receipts[w] = append(receipts[w], rs[0])
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	const total = workers * perWorker
	seen := make(map[uint64]bool, total)
	ids := make(map[[16]byte]bool, total)
	for w, rs := range receipts {
		for i, r := range rs {
			if r.Version != uint64(i+1) {
				t.Fatalf("worker %d append %d got version %d", w, i, r.Version)
			}
			if seen[r.Sequence] || ids[r.EventID] {
				t.Fatalf("worker %d: sequence %d or id %s acknowledged twice", w, r.Sequence, r.EventID)
			}
			seen[r.Sequence], ids[r.EventID] = true, true
		}
	}
	for seq := uint64(1); seq <= total; seq++ {
		if !seen[seq] {
			t.Fatalf("sequence %d missing: receipts are not dense", seq)
		}
	}
	all := collect(t, s.ReadAll(bgctx, 0))
	if !slices.Equal(seqsOf(all), span(1, total)) {
		t.Fatalf("ReadAll sequences are not 1..%d", total)
	}
	for w, rs := range receipts {
		recs := collect(t, s.ReadStream(bgctx, coord(fmt.Sprintf("dist:%d", w)), 0))
		if len(recs) != perWorker {
			t.Fatalf("stream of worker %d holds %d events", w, len(recs))
		}
		for i := range recs {
			checkReceipt(t, &recs[i], &rs[i])
			var got work
			if err := recs[i].Decode(&got); err != nil || got != (work{w, i}) {
				t.Fatalf("worker %d v%d holds %+v (%v)", w, i+1, got, err)
			}
		}
	}
}

// testReadsDuringAppends: reads that run while a stream grows always see a
// consistent prefix: dense versions and sequences, nothing past what the
// store reports, and never a failure.
func testReadsDuringAppends(t *testing.T, e *env) {
	s := e.s
	const appends = 60
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	var writer sync.WaitGroup
	writer.Go(func() {
		defer cancel()
		for i := range appends {
			events := evs(kindDeposited, 1+i%3)
			if _, err := s.Append(ctx, coord("rd:hot"), events); err != nil {
				t.Errorf("append: %v", err)
				return
			}
			if _, err := s.Append(ctx, coord("rd:cold"), evs(kindNoted, 1)); err != nil {
				t.Errorf("append: %v", err)
				return
			}
		}
	})
	check := func(what string, recs []batpak.Record, versions bool) {
		for i := range recs {
			want := uint64(i + 1)
			got := recs[i].Sequence
			if versions {
				got = recs[i].Version
			}
			if got != want {
				t.Errorf("%s: position %d holds %d: not a dense prefix", what, i, got)
				return
			}
		}
	}
	readers := []func(){
		func() {
			v := s.StreamVersion(coord("rd:hot"))
			recs := collectNoFatal(t, s.Query(bgctx, batpak.Region{Entity: "rd:hot"}))
			check("Query(entity)", recs, true)
			if uint64(len(recs)) < v {
				t.Errorf("Query(entity) saw %d events after StreamVersion reported %d", len(recs), v)
			}
		},
		func() { check("ReadStream", collectNoFatal(t, s.ReadStream(bgctx, coord("rd:hot"), 0)), true) },
		func() {
			recs := collectNoFatal(t, s.ReadStream(bgctx, coord("rd:hot"), 0, batpak.Backward()))
			slices.Reverse(recs)
			check("ReadStream(Backward)", recs, true)
		},
		func() {
			last := s.LastSequence()
			recs := collectNoFatal(t, s.ReadAll(bgctx, 0))
			check("ReadAll", recs, false)
			if uint64(len(recs)) < last {
				t.Errorf("ReadAll saw %d events after LastSequence reported %d", len(recs), last)
			}
			if last > 0 {
				if _, err := s.GetSequence(bgctx, last); err != nil {
					t.Errorf("GetSequence(LastSequence()): %v", err)
				}
			}
		},
		func() {
			c := s.Cursor(batpak.Region{Entity: "rd:hot"}, 0)
			var recs []batpak.Record
			for {
				rec, ok, err := c.TryNext(bgctx)
				if err != nil {
					t.Errorf("cursor: %v", err)
					return
				}
				if !ok {
					break
				}
				recs = append(recs, rec)
			}
			check("Cursor(entity)", recs, true)
		},
	}
	var wg sync.WaitGroup
	for _, read := range readers {
		wg.Go(func() {
			for ctx.Err() == nil && !t.Failed() {
				read()
				// Five readers spin while each append waits for other
				// goroutines (a server's, a consumer's): on two cores,
				// without yielding they take most of the CPU and every
				// append gets slower the busier the machine is.
				runtime.Gosched()
			}
			read()
		})
	}
	writer.Wait()
	wg.Wait()
}

// collectNoFatal is collect for goroutines other than the test's.
func collectNoFatal(t testing.TB, seq iter.Seq2[batpak.Record, error]) []batpak.Record {
	var out []batpak.Record
	for rec, err := range seq {
		if err != nil {
			t.Errorf("read after %d records: %v", len(out), err)
			return out
		}
		out = append(out, rec)
	}
	return out
}
