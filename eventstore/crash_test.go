//go:build unix

package eventstore_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
)

// The crash test runs a helper process (this test binary, re-executed with
// -test.run=^TestCrashHelper$) that appends from several goroutines with
// SyncEveryCommit and small segments, printing each receipt only after its
// call returned. The parent kills it with SIGKILL at random moments and
// checks, in the parent or by letting the next helper recover, that every
// acknowledged event is there, exactly as acknowledged.
//
// BATPAK_CRASH_KILLS sets the number of kills (default 36),
// BATPAK_CRASH_SEED the seed of the kill delays and
// BATPAK_CRASH_SEGMENT_BYTES the segment size (default 32 KiB).
const (
	crashHelperEnv  = "BATPAK_CRASH_HELPER"
	crashCycleEnv   = "BATPAK_CRASH_CYCLE"
	crashRetryEnv   = "BATPAK_CRASH_RETRY"
	crashKeyWorkers = 3 // workers 0..2 make keyed requests; 3 is the Exactly worker
)

var crashSegBytes = envInt("BATPAK_CRASH_SEGMENT_BYTES", 32<<10)

type crashReceipt struct {
	ID   string `json:"id"`
	Seq  uint64 `json:"seq"`
	Ver  uint64 `json:"ver"`
	Hash string `json:"hash"`
	E    string `json:"e"` // entity
}

type crashAck struct {
	Tag string         `json:"tag"`
	Key string         `json:"key,omitempty"`
	R   []crashReceipt `json:"r"`
}

// crashReq is a request, a pure function of (cycle, worker, n) so that a
// later helper can retry it with the same idempotency key.
type crashReq struct {
	tag      string
	key      string
	batch    bool     // AppendBatch across entities
	entities []string // one per event (all equal for Append)
}

func crashSpec(cycle, worker, n int) crashReq {
	rng := rand.New(rand.NewPCG(uint64(cycle)<<8|uint64(worker), uint64(n)))
	r := crashReq{tag: fmt.Sprintf("c%dw%dn%d", cycle, worker, n)}
	acct := func() string { return fmt.Sprintf("acct:%d", rng.IntN(8)) }
	keyed := false
	switch worker {
	case 0: // single events
		r.entities = []string{acct()}
		keyed = n%3 == 0
	case 1: // multi-event atomic Append to one stream
		e := acct()
		for range 2 + rng.IntN(3) {
			r.entities = append(r.entities, e)
		}
		keyed = n%2 == 0
	case 2: // AppendBatch across distinct streams
		r.batch = true
		perm := rng.Perm(9)
		for _, p := range perm[:2+rng.IntN(3)] {
			if p == 8 {
				r.entities = append(r.entities, "ledger")
			} else {
				r.entities = append(r.entities, fmt.Sprintf("acct:%d", p))
			}
		}
		keyed = n%2 == 1
	}
	if keyed {
		r.key = r.tag
	}
	return r
}

// crashKeys are the crash test's keyed requests.
var crashKeys = keyedRequests{workers: crashKeyWorkers, parse: parseCrashKey,
	key: func(cycle, w, n int) string { return crashSpec(cycle, w, n).key }}

func parseCrashKey(key string) (cycle, worker, n int, ok bool) {
	_, err := fmt.Sscanf(key, "c%dw%dn%d", &cycle, &worker, &n)
	return cycle, worker, n, err == nil
}

func (r crashReq) do(s *eventstore.Store, opts ...batpak.AppendOption) ([]batpak.Receipt, error) {
	if r.key != "" {
		opts = append(opts, batpak.WithIdempotencyKey(r.key))
	}
	ctx := context.Background()
	if !r.batch {
		return s.Append(ctx, dtCoord(r.entities[0]), dtEvents(r.tag, len(r.entities)), opts...)
	}
	items := make([]batpak.BatchItem, len(r.entities))
	for i, e := range r.entities {
		items[i] = batpak.BatchItem{Coordinate: dtCoord(e), Event: dtEvent(r.tag, i, len(r.entities))}
	}
	return s.AppendBatch(ctx, items, opts...)
}

// TestCrashHelper is the helper process; it only runs when re-executed by
// TestCrash and never returns normally (it is killed).
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv(crashHelperEnv)
	if dir == "" {
		t.Skip("helper process of TestCrash")
	}
	os.Exit(crashHelperMain(dir))
}

func crashHelperMain(dir string) int {
	emit := helperStart()

	cycle, _ := strconv.Atoi(os.Getenv(crashCycleEnv))
	s, err := eventstore.Open(dir,
		eventstore.WithSyncMode(eventstore.SyncEveryCommit),
		eventstore.WithSegmentMaxBytes(crashSegBytes),
		eventstore.WithCheckpointEvery(150))
	if err != nil {
		emit("ERR open: " + err.Error())
		return 2
	}
	emit(fmt.Sprintf("READY %d", s.LastSequence()))

	runCrashWorkers(s, cycle, crashKeyWorkers, os.Getenv(crashRetryEnv), crashSpec, crashAcker(emit))
	return 0
}

// crashAcker returns how a crash helper reports each request's outcome:
// an ACK line with its receipts, or an ERR line.
func crashAcker(emit func(string)) func(crashReq, []batpak.Receipt, error) {
	return func(r crashReq, rs []batpak.Receipt, err error) {
		if err != nil {
			emit(fmt.Sprintf("ERR %s: %v", r.tag, err))
			return
		}
		a := crashAck{Tag: r.tag, Key: r.key}
		for i, rc := range rs {
			a.R = append(a.R, crashReceipt{ID: rc.EventID.String(), Seq: rc.Sequence, Ver: rc.Version, Hash: hex.EncodeToString(rc.Hash[:]), E: r.entities[i]})
		}
		b, _ := json.Marshal(a)
		emit("ACK " + string(b))
	}
}

// runCrashWorkers appends to s until the process is killed: retries of
// the keys in retry (comma-separated, from earlier runs, acknowledged or
// not), keyWorkers workers sending spec(cycle, w, n) for n = 0, 1, …, and
// a worker writing stream "solo" with exact expected versions. Each
// outcome goes to ack.
func runCrashWorkers(s *eventstore.Store, cycle, keyWorkers int, retry string, spec func(c, w, n int) crashReq, ack func(crashReq, []batpak.Receipt, error)) {
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, key := range strings.Split(retry, ",") {
			if c, w, n, ok := parseCrashKey(key); ok {
				r := spec(c, w, n)
				rs, err := r.do(s)
				ack(r, rs, err)
			}
		}
	})
	for w := range keyWorkers {
		wg.Go(func() {
			for n := 0; ; n++ {
				r := spec(cycle, w, n)
				rs, err := r.do(s)
				ack(r, rs, err)
			}
		})
	}
	wg.Go(func() { // a stream only this worker writes, with exact expected versions
		v := s.StreamVersion(dtCoord("solo"))
		for n := 0; ; n++ {
			r := crashReq{tag: fmt.Sprintf("c%dw3n%d", cycle, n), entities: []string{"solo"}}
			rs, err := r.do(s, batpak.ExpectVersion(batpak.Exactly(v)))
			ack(r, rs, err)
			if err != nil {
				return
			}
			v = rs[0].Version
		}
	})
	wg.Wait()
}

type crashEvent struct {
	id   uuid.UUID
	ver  uint64
	hash string
	e    string
}

// crashState is what the parent knows: every acknowledged event by
// sequence, every key's receipts, and every event observed after recovery.
type crashState struct {
	acked     map[uint64]crashEvent
	keys      map[string][]crashReceipt
	seen      []crashEvent // index seq-1: events seen after a recovery
	acks      int
	ackEvents int
	retried   int
}

func (st *crashState) absorb(t *testing.T, acks []crashAck) {
	t.Helper()
	for _, a := range acks {
		st.acks++
		if a.Key != "" {
			if prev, ok := st.keys[a.Key]; ok {
				st.retried++
				if fmt.Sprint(prev) != fmt.Sprint(a.R) {
					t.Fatalf("key %s acknowledged twice with different receipts:\n%v\n%v", a.Key, prev, a.R)
				}
				continue
			}
			st.keys[a.Key] = a.R
		}
		for _, r := range a.R {
			id, err := uuid.Parse(r.ID)
			if err != nil {
				t.Fatal(err)
			}
			ev := crashEvent{id: id, ver: r.Ver, hash: r.Hash, e: r.E}
			if prev, ok := st.acked[r.Seq]; ok && prev != ev {
				t.Fatalf("sequence %d acknowledged for two events (%s and %s)", r.Seq, prev.id, ev.id)
			}
			st.acked[r.Seq] = ev
			st.ackEvents++
		}
	}
}

// verify checks an open store against everything acknowledged so far.
func (st *crashState) verify(t *testing.T, s *eventstore.Store) int {
	t.Helper()
	recs := dtCheck(t, s) // dense, versions dense, chains verify, Get, atomic requests whole
	if len(recs) < len(st.seen) {
		t.Fatalf("store has %d events, %d were seen after an earlier recovery", len(recs), len(st.seen))
	}
	for seq, a := range st.acked {
		if seq > uint64(len(recs)) {
			t.Fatalf("acknowledged sequence %d lost: the store ends at %d", seq, len(recs))
		}
		r := &recs[seq-1]
		if r.ID != a.id || r.Version != a.ver || hex.EncodeToString(r.Hash[:]) != a.hash || r.Coordinate.Entity != a.e {
			t.Fatalf("acknowledged sequence %d: got %s v%d id %s, acknowledged %s v%d id %s", seq, r.Coordinate.Entity, r.Version, r.ID, a.e, a.ver, a.id)
		}
		g, err := s.Get(context.Background(), a.id)
		if err != nil || g.Sequence != seq || g.Version != a.ver || hex.EncodeToString(g.Hash[:]) != a.hash {
			t.Fatalf("Get(%s) of acknowledged sequence %d: %v (sequence %d version %d)", a.id, seq, err, g.Sequence, g.Version)
		}
	}
	for i := range recs {
		r := &recs[i]
		ev := crashEvent{id: r.ID, ver: r.Version, hash: hex.EncodeToString(r.Hash[:]), e: r.Coordinate.Entity}
		if i < len(st.seen) {
			if st.seen[i] != ev {
				t.Fatalf("sequence %d changed between recoveries: was %s, now %s (reused)", i+1, st.seen[i].id, ev.id)
			}
			continue
		}
		st.seen = append(st.seen, ev)
	}
	return len(recs)
}

type crashRun struct {
	childRun
	acks []crashAck
	errs []string
}

func runCrashHelper(t *testing.T, dir string, cycle int, retry []string, delay time.Duration) crashRun {
	t.Helper()
	var run crashRun
	env := []string{crashHelperEnv + "=" + dir, crashCycleEnv + "=" + strconv.Itoa(cycle), crashRetryEnv + "=" + strings.Join(retry, ",")}
	run.childRun = runAndKill(t, "TestCrashHelper", env, delay, func(line string) {
		switch {
		case strings.HasPrefix(line, "ACK "):
			var a crashAck
			if err := json.Unmarshal([]byte(line[4:]), &a); err == nil {
				run.acks = append(run.acks, a)
			}
		case strings.HasPrefix(line, "ERR "):
			run.errs = append(run.errs, line)
		}
	})
	return run
}

func envInt(name string, def int64) int64 {
	if v, err := strconv.ParseInt(os.Getenv(name), 10, 64); err == nil {
		return v
	}
	return def
}

func TestCrash(t *testing.T) {
	kills := int(envInt("BATPAK_CRASH_KILLS", 36))
	seed := envInt("BATPAK_CRASH_SEED", time.Now().UnixNano())
	t.Logf("%d kills, seed %d (BATPAK_CRASH_KILLS, BATPAK_CRASH_SEED)", kills, seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	dir := filepath.Join(t.TempDir(), "store")
	st := &crashState{acked: make(map[uint64]crashEvent), keys: make(map[string][]crashReceipt)}
	var retry []string
	parentChecks, readOnlyChecks := 0, 0
	for cycle := range kills {
		delay := time.Duration(20+rng.IntN(130)) * time.Millisecond
		run := runCrashHelper(t, dir, cycle, retry, delay)
		if !run.ready || len(run.errs) > 0 {
			t.Fatalf("cycle %d: helper ready %v, errors %q, exit %v\nstderr:\n%s", cycle, run.ready, run.errs, run.waitErr, run.stderr)
		}
		if ws, ok := run.waitErr.(*exec.ExitError); !ok || ws.ExitCode() != -1 {
			t.Fatalf("cycle %d: helper was not killed: %v\nstderr:\n%s", cycle, run.waitErr, run.stderr)
		}
		st.absorb(t, run.acks)

		retry = crashKeys.retryKeys(retry[:0], cycle, tagsOf(run.acks, func(a crashAck) string { return a.Tag }), dtSortedKeys(st.keys), rng)

		// Alternate: let the next helper recover, or recover here.
		switch cycle % 3 {
		case 1:
			s := dtOpen(t, dir, eventstore.WithSegmentMaxBytes(crashSegBytes))
			st.verify(t, s)
			dtClose(t, s)
			parentChecks++
		case 2:
			s, err := eventstore.OpenReadOnly(dir)
			if err != nil {
				t.Fatalf("cycle %d: read-only open: %v", cycle, err)
			}
			st.verify(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			readOnlyChecks++
		}
	}

	s := dtOpen(t, dir, eventstore.WithSegmentMaxBytes(crashSegBytes))
	n := st.verify(t, s)
	cs := s.Stats()
	rs := dtAppend(t, s, "acct:0", dtEvents("final", 1))
	if rs[0].Sequence != uint64(n+1) {
		t.Fatalf("append after the last crash got sequence %d, want %d", rs[0].Sequence, n+1)
	}
	dtClose(t, s)
	s = dtOpen(t, dir)
	defer s.Close()
	if got := st.verify(t, s); got != n+1 {
		t.Fatalf("final reopen: %d events, want %d", got, n+1)
	}
	if st.ackEvents == 0 {
		t.Fatal("nothing was acknowledged")
	}
	t.Logf("%d kills; %d acknowledged requests (%d events, %d keys, %d idempotent retries matched); %d events in the store over %d segments; %d parent reopens, %d read-only checks",
		kills, st.acks, len(st.acked), len(st.keys), st.retried, n, cs.Segments, parentChecks, readOnlyChecks)
}
