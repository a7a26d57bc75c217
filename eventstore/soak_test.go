//go:build unix

package eventstore_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
)

// TestSoak is a long randomized run, off by default: BATPAK_SOAK=<duration>
// (e.g. 90s) turns it on and bounds it. Each cycle
//
//  1. runs a helper process (this test binary again, -test.run
//     ^TestSoakHelper$) that appends single events, multi-event appends,
//     atomic batches, keyed requests and retries of keys from earlier
//     cycles, exact-version appends, creates and deletes streams and
//     compacts with a retention policy, all concurrently, printing each
//     request before it is sent and each receipt after it returned; the
//     parent kills it with SIGKILL at a random moment;
//  2. runs eventstore.Verify and `batpak verify` on the killed store (a torn
//     tail is a warning, anything else fails) and a dry-run Repair (which
//     must find nothing);
//  3. opens the store and checks every read against the oracle: every
//     acknowledged event is there with its sequence, version, id and hash
//     unless an acknowledged DeleteStream deleted its stream or the
//     retention policy may have removed it; every event there was
//     acknowledged or was in flight at the kill (then its request is whole)
//     or was seen before; deleted streams are exactly the acknowledged
//     deletions plus deletions in flight; ReadStream, StreamVersion,
//     VerifyChain, Query and cursors agree with ReadAll;
//  4. appends, batches, deletes and compacts in the parent too, checks
//     again, closes (or checks read-only) and verifies.
//
// BATPAK_SOAK_SEED sets the seed; BATPAK_SOAK_KEEP=<dir> copies the store
// there if the test fails.
func TestSoak(t *testing.T) {
	budgetText := os.Getenv("BATPAK_SOAK")
	if budgetText == "" {
		t.Skip("soak test: set BATPAK_SOAK=<duration> (e.g. BATPAK_SOAK=90s) to run it")
	}
	budget, err := time.ParseDuration(budgetText)
	if err != nil || budget <= 0 {
		t.Fatalf("BATPAK_SOAK=%q: want a duration such as 90s", budgetText)
	}
	seed := envIntLin("BATPAK_SOAK_SEED", time.Now().UnixNano())
	t.Logf("budget %s, seed %d (BATPAK_SOAK, BATPAK_SOAK_SEED)", budget, seed)
	deadline := time.Now().Add(budget)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x50a6))
	cli := dmBuildCLI(t)
	dir := filepath.Join(t.TempDir(), "store")
	if keep := os.Getenv("BATPAK_SOAK_KEEP"); keep != "" {
		t.Cleanup(func() {
			if t.Failed() {
				dtCopyDir(t, dir, keep)
				t.Logf("store copied to %s", keep)
			}
		})
	}
	o := newSoakOracle()
	var retry []string
	for cycle := 0; cycle == 0 || time.Now().Before(deadline); cycle++ {
		delay := time.Duration(80+rng.IntN(400)) * time.Millisecond
		run := runSoakHelper(t, dir, cycle, retry, delay)
		if !run.ready || len(run.errs) > 0 {
			t.Fatalf("cycle %d: helper ready %v, errors %q, exit %v\nstderr:\n%s", cycle, run.ready, run.errs, run.waitErr, run.stderr)
		}
		if ee, ok := run.waitErr.(*exec.ExitError); !ok || ee.ExitCode() != -1 {
			t.Fatalf("cycle %d: helper was not killed: %v\nstderr:\n%s", cycle, run.waitErr, run.stderr)
		}
		o.kills++
		o.absorbRun(t, run)

		soakVerifyDir(t, cli, dir, o, true)
		var s *eventstore.Store
		readOnly := cycle%4 == 3
		if readOnly {
			if s, err = eventstore.OpenReadOnly(dir); err != nil {
				t.Fatalf("cycle %d: read-only open after the kill: %v", cycle, err)
			}
		} else {
			s = dtOpen(t, dir, eventstore.WithSegmentMaxBytes(soakSegBytes))
		}
		o.phase = fmt.Sprintf("cycle %d, after the kill (read-only %v)", cycle, readOnly)
		o.check(t, s, rng)
		if !readOnly {
			o.phase = fmt.Sprintf("cycle %d, parent phase", cycle)
			o.parentPhase(t, s, cycle, rng)
			o.phase = fmt.Sprintf("cycle %d, after the parent phase", cycle)
			o.check(t, s, rng)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("cycle %d: close: %v", cycle, err)
		}
		soakVerifyDir(t, cli, dir, o, readOnly)
		o.inflight, o.inflightDel = nil, nil // resolved by the check

		retry = soakKeys.retryKeys(retry[:0], cycle, tagsOf(run.acks, func(a soakAck) string { return a.Tag }), dtSortedKeys(o.keys), rng)
		o.cycles++
	}

	s := dtOpen(t, dir, eventstore.WithSegmentMaxBytes(soakSegBytes))
	o.check(t, s, rng)
	st := s.Stats()
	dtClose(t, s)
	soakVerifyDir(t, cli, dir, o, false)
	t.Logf("%d cycles, %d kills; %d requests acknowledged (%d events, %d keys, %d idempotent retries matched, %d retries of removed events, %d in flight at a kill and found whole, %d lost in flight), %d deletions (%d in flight), %d compactions (%d in the parent, %d events removed by the parent's); %d checks of every read, %d Verify runs (warnings: %d torn tails, %d header-less last segments, %d interrupted seals); %d events, %d visible, in %d segments",
		o.cycles, o.kills, o.acks, o.ackEvents, len(o.keys), o.retried, o.gone, o.inflightFound, o.inflightLost, o.deletions, o.inflightDeletes,
		o.childCompactions+o.parentCompactions, o.parentCompactions, o.removed, o.checks, o.verifies, o.tornWarnings, o.blankWarnings, o.sealWarnings,
		st.Events, o.lastVisible, st.Segments)
}

const (
	soakHelperEnv  = "BATPAK_SOAK_HELPER"
	soakCycleEnv   = "BATPAK_SOAK_CYCLE"
	soakRetryEnv   = "BATPAK_SOAK_RETRY"
	soakSegBytes   = 16 << 10
	soakKeyWorkers = 3 // workers 0..2 make keyed requests
	soakAccounts   = 8
)

var soakKind = kind.Custom(4, 2)

// soakPayload marks every soak event: its request's tag, its index and the
// request's size, and whether the retention policy may remove it.
type soakPayload struct {
	Tag string `msgpack:"t"`
	I   int    `msgpack:"i"`
	N   int    `msgpack:"n"`
	Eph bool   `msgpack:"e"`
}

func soakKeep(r *batpak.Record) bool {
	var p soakPayload
	return r.Decode(&p) != nil || !p.Eph
}

// soakReq is a request, a pure function of (cycle, worker, n) so that a
// later helper can retry it with the same idempotency key.
type soakReq struct {
	Tag      string   `json:"tag"`
	Key      string   `json:"key,omitempty"`
	Batch    bool     `json:"batch,omitempty"`
	Entities []string `json:"e"` // one per event
	Eph      bool     `json:"eph,omitempty"`
	Delete   string   `json:"del,omitempty"` // a DeleteStream of this entity
}

func soakSpec(cycle, worker, n int) soakReq {
	rng := rand.New(rand.NewPCG(uint64(cycle)<<8|uint64(worker), uint64(n)^0x50a6))
	r := soakReq{Tag: fmt.Sprintf("c%dw%dn%d", cycle, worker, n), Eph: rng.IntN(5) == 0}
	acct := func() string { return fmt.Sprintf("acct:%d", rng.IntN(soakAccounts)) }
	keyed := false
	switch worker {
	case 0:
		r.Entities = []string{acct()}
		keyed = n%3 == 0
	case 1:
		e := acct()
		for range 2 + rng.IntN(3) {
			r.Entities = append(r.Entities, e)
		}
		keyed = n%2 == 0
	case 2:
		r.Batch = true
		for _, p := range rng.Perm(soakAccounts + 1)[:2+rng.IntN(3)] {
			if p == soakAccounts {
				r.Entities = append(r.Entities, "ledger")
			} else {
				r.Entities = append(r.Entities, fmt.Sprintf("acct:%d", p))
			}
		}
		keyed = n%2 == 1
	}
	if keyed {
		r.Key = r.Tag
	}
	return r
}

// soakKeys are the soak test's keyed requests.
var soakKeys = keyedRequests{workers: soakKeyWorkers, parse: parseSoakTag,
	key: func(cycle, w, n int) string { return soakSpec(cycle, w, n).Key }}

func parseSoakTag(tag string) (cycle, worker, n int, ok bool) {
	_, err := fmt.Sscanf(tag, "c%dw%dn%d", &cycle, &worker, &n)
	return cycle, worker, n, err == nil
}

func (r soakReq) do(ctx context.Context, s *eventstore.Store, opts ...batpak.AppendOption) ([]batpak.Receipt, error) {
	if r.Key != "" {
		opts = append(opts, batpak.WithIdempotencyKey(r.Key))
	}
	ev := func(i int) batpak.Event {
		return batpak.Event{Kind: soakKind, Payload: soakPayload{Tag: r.Tag, I: i, N: len(r.Entities), Eph: r.Eph}}
	}
	if !r.Batch {
		evs := make([]batpak.Event, len(r.Entities))
		for i := range evs {
			evs[i] = ev(i)
		}
		return s.Append(ctx, dtCoord(r.Entities[0]), evs, opts...)
	}
	items := make([]batpak.BatchItem, len(r.Entities))
	for i, e := range r.Entities {
		items[i] = batpak.BatchItem{Coordinate: dtCoord(e), Event: ev(i)}
	}
	return s.AppendBatch(ctx, items, opts...)
}

type soakReceipt struct {
	ID   string `json:"id"`
	Seq  uint64 `json:"seq"`
	Ver  uint64 `json:"ver"`
	Hash string `json:"hash"`
}

type soakAck struct {
	Tag string        `json:"tag"`
	Key string        `json:"key,omitempty"`
	R   []soakReceipt `json:"r"`
}

// TestSoakHelper is the helper process of TestSoak; it only runs when
// re-executed by it and never returns normally (it is killed).
func TestSoakHelper(t *testing.T) {
	dir := os.Getenv(soakHelperEnv)
	if dir == "" {
		t.Skip("helper process of TestSoak")
	}
	os.Exit(soakHelperMain(dir))
}

func soakHelperMain(dir string) int {
	line := helperStart()
	emit := func(prefix string, v any) {
		b, _ := json.Marshal(v)
		line(prefix + " " + string(b))
	}

	cycle, _ := strconv.Atoi(os.Getenv(soakCycleEnv))
	s, err := eventstore.Open(dir,
		eventstore.WithSyncMode(eventstore.SyncEveryCommit),
		eventstore.WithSegmentMaxBytes(soakSegBytes),
		eventstore.WithCheckpointEvery(200))
	if err != nil {
		emit("ERR", "open: "+err.Error())
		return 2
	}
	emit("READY", s.LastSequence())
	ctx := context.Background()
	send := func(r soakReq, opts ...batpak.AppendOption) ([]batpak.Receipt, error) {
		emit("SENT", r)
		rs, err := r.do(ctx, s, opts...)
		if err != nil && r.Key != "" && r.Eph && errors.Is(err, batpak.ErrNotFound) {
			// A retry of a key whose events the retention policy removed.
			emit("GONE", r.Tag)
			return nil, nil
		}
		if err != nil {
			emit("ERR", fmt.Sprintf("%s: %v", r.Tag, err))
			return nil, err
		}
		a := soakAck{Tag: r.Tag, Key: r.Key}
		for _, rc := range rs {
			a.R = append(a.R, soakReceipt{ID: rc.EventID.String(), Seq: rc.Sequence, Ver: rc.Version, Hash: hex.EncodeToString(rc.Hash[:])})
		}
		emit("ACK", a)
		return rs, nil
	}
	var wg sync.WaitGroup
	wg.Go(func() { // retries of keys from earlier runs, acknowledged or not
		for _, key := range strings.Split(os.Getenv(soakRetryEnv), ",") {
			if c, w, n, ok := parseSoakTag(key); ok {
				_, _ = send(soakSpec(c, w, n))
			}
		}
	})
	for w := range soakKeyWorkers {
		wg.Go(func() {
			for n := 0; ; n++ {
				_, _ = send(soakSpec(cycle, w, n))
			}
		})
	}
	wg.Go(func() { // a stream only this worker writes, with exact expected versions
		v := s.StreamVersion(dtCoord("solo"))
		for n := 0; ; n++ {
			rs, err := send(soakReq{Tag: fmt.Sprintf("c%dw3n%d", cycle, n), Entities: []string{"solo"}}, batpak.ExpectVersion(batpak.Exactly(v)))
			if err != nil {
				return
			}
			v = rs[0].Version
		}
	})
	wg.Go(func() { // short-lived streams: created, then deleted
		for n := 0; ; n++ {
			e := fmt.Sprintf("tmp:%d:%d", cycle, n)
			r := soakReq{Tag: fmt.Sprintf("c%dw4n%d", cycle, n)}
			for range 1 + n%3 {
				r.Entities = append(r.Entities, e)
			}
			if _, err := send(r); err != nil {
				return
			}
			emit("SENTDEL", e)
			if err := s.DeleteStream(ctx, dtCoord(e)); err != nil {
				emit("ERR", fmt.Sprintf("delete %s: %v", e, err))
				return
			}
			emit("DEL", e)
			time.Sleep(5 * time.Millisecond)
		}
	})
	wg.Go(func() { // compaction with the retention policy, while all of this goes on
		for {
			time.Sleep(60 * time.Millisecond)
			if _, err := s.Compact(ctx, eventstore.RetainIf(soakKeep)); err != nil {
				emit("ERR", "compact: "+err.Error())
				return
			}
			emit("COMPACTED", true)
		}
	})
	wg.Wait()
	return 0
}

type soakRun struct {
	childRun
	sent      []soakReq
	acks      []soakAck
	sentDel   []string
	dels      []string
	compacted int
	gone      []string // retried keys whose events retention removed
	errs      []string
}

func runSoakHelper(t *testing.T, dir string, cycle int, retry []string, delay time.Duration) soakRun {
	t.Helper()
	var run soakRun
	env := []string{soakHelperEnv + "=" + dir, soakCycleEnv + "=" + strconv.Itoa(cycle), soakRetryEnv + "=" + strings.Join(retry, ",")}
	run.childRun = runAndKill(t, "TestSoakHelper", env, delay, func(line string) {
		prefix, body, _ := strings.Cut(line, " ")
		var err error
		switch prefix {
		case "SENT":
			var r soakReq
			err = json.Unmarshal([]byte(body), &r)
			run.sent = append(run.sent, r)
		case "ACK":
			var a soakAck
			err = json.Unmarshal([]byte(body), &a)
			run.acks = append(run.acks, a)
		case "SENTDEL":
			var e string
			err = json.Unmarshal([]byte(body), &e)
			run.sentDel = append(run.sentDel, e)
		case "DEL":
			var e string
			err = json.Unmarshal([]byte(body), &e)
			run.dels = append(run.dels, e)
		case "COMPACTED":
			run.compacted++
		case "GONE":
			var tag string
			err = json.Unmarshal([]byte(body), &tag)
			run.gone = append(run.gone, tag)
		case "ERR":
			run.errs = append(run.errs, body)
		}
		if err != nil {
			run.errs = append(run.errs, fmt.Sprintf("bad line %q: %v", line, err))
		}
	})
	return run
}

// soakEvent is one event the oracle knows of.
type soakEvent struct {
	id     uuid.UUID
	ver    uint64
	hash   string
	entity string
	tag    string
	i      int
	eph    bool
}

type soakOracle struct {
	acked   map[uint64]soakEvent // every acknowledged event by sequence
	seen    map[uint64]soakEvent // every event seen after a recovery
	keys    map[string][]soakReceipt
	tags    map[string]bool    // acknowledged requests
	reqs    map[string]soakReq // every request sent, by tag
	deleted map[string]bool    // streams whose deletion was acknowledged or seen
	parent  []string           // streams the parent created
	sawDel  map[string]bool    // entities that had events when last checked
	// In flight at the last kill: requests and deletions without an answer.
	inflight    map[string]soakReq
	inflightDel map[string]bool
	phase       string // for failure messages

	cycles, kills, acks, ackEvents, retried                   int
	inflightFound, inflightLost                               int
	deletions, inflightDeletes                                int
	childCompactions, parentCompactions, checks               int
	verifies, tornWarnings, blankWarnings, sealWarnings, gone int
	removed                                                   uint64
	lastVisible                                               int
}

func newSoakOracle() *soakOracle {
	return &soakOracle{acked: map[uint64]soakEvent{}, seen: map[uint64]soakEvent{}, keys: map[string][]soakReceipt{},
		tags: map[string]bool{}, reqs: map[string]soakReq{}, deleted: map[string]bool{}, sawDel: map[string]bool{}}
}

// ack records an acknowledged request.
func (o *soakOracle) ack(t *testing.T, r soakReq, a soakAck) {
	t.Helper()
	o.acks++
	o.reqs[r.Tag] = r
	if a.Key != "" {
		if prev, ok := o.keys[a.Key]; ok {
			o.retried++
			if !slices.Equal(prev, a.R) {
				t.Fatalf("key %s acknowledged twice with different receipts:\n%v\n%v", a.Key, prev, a.R)
			}
			return
		}
		o.keys[a.Key] = a.R
	}
	if len(a.R) != len(r.Entities) {
		if a.Key != "" { // a retry answered with the receipts of the original
			return
		}
		t.Fatalf("request %s of %d events acknowledged with %d receipts", r.Tag, len(r.Entities), len(a.R))
	}
	o.tags[r.Tag] = true
	for i, rc := range a.R {
		id, err := uuid.Parse(rc.ID)
		if err != nil {
			t.Fatal(err)
		}
		ev := soakEvent{id: id, ver: rc.Ver, hash: rc.Hash, entity: r.Entities[i], tag: r.Tag, i: i, eph: r.Eph}
		if prev, ok := o.acked[rc.Seq]; ok && prev != ev {
			t.Fatalf("sequence %d acknowledged for two events (%+v and %+v)", rc.Seq, prev, ev)
		}
		o.acked[rc.Seq] = ev
		o.ackEvents++
	}
}

func (o *soakOracle) absorbRun(t *testing.T, run soakRun) {
	t.Helper()
	sent := map[string]soakReq{}
	for _, r := range run.sent {
		sent[r.Tag] = r
		o.reqs[r.Tag] = r
	}
	answered := map[string]bool{}
	for _, a := range run.acks {
		r, ok := sent[a.Tag]
		if !ok {
			t.Fatalf("acknowledgement of %s, which was never sent", a.Tag)
		}
		o.ack(t, r, a)
		answered[a.Tag] = true
	}
	o.inflight = map[string]soakReq{}
	for tag, r := range sent {
		if !answered[tag] {
			o.inflight[tag] = r
		}
	}
	o.inflightDel = map[string]bool{}
	for _, e := range run.sentDel {
		o.inflightDel[e] = true
	}
	for _, e := range run.dels {
		delete(o.inflightDel, e)
		o.deleted[e] = true
		o.deletions++
	}
	o.inflightDeletes += len(o.inflightDel)
	o.childCompactions += run.compacted
	for _, tag := range run.gone {
		delete(o.inflight, tag) // answered: its events are gone
		o.gone++
	}
}

// check compares every read of s with the oracle.
func (o *soakOracle) check(t *testing.T, s *eventstore.Store, rng *rand.Rand) {
	t.Helper()
	o.checks++
	var recs []batpak.Record
	for r, err := range s.ReadAll(context.Background(), 0) {
		if err != nil {
			t.Fatalf("%s: ReadAll after %d events: %v", o.phase, len(recs), err)
		}
		recs = append(recs, r)
	}
	o.lastVisible = len(recs)
	bySeq := make(map[uint64]*batpak.Record, len(recs))
	entities := map[string]bool{}
	for i := range recs {
		r := &recs[i]
		if i > 0 && r.Sequence <= recs[i-1].Sequence {
			t.Fatalf("ReadAll yields sequence %d after %d", r.Sequence, recs[i-1].Sequence)
		}
		bySeq[r.Sequence] = r
		entities[r.Coordinate.Entity] = true
	}
	// Deleted streams: known to the index, absent from Streams.
	listed := map[string]bool{}
	for info := range s.Streams() {
		listed[info.Coordinate.Entity] = true
	}
	isDeleted := func(e string) bool { return s.StreamVersion(dtCoord(e)) > 0 && !listed[e] }
	for e := range o.deleted {
		if !isDeleted(e) {
			t.Fatalf("stream %s was deleted (acknowledged), but it is not deleted in the store", e)
		}
	}
	for e := range o.inflightDel {
		if isDeleted(e) {
			o.deleted[e] = true // the deletion in flight at the kill was written
		}
	}
	for e := range o.sawDel {
		if isDeleted(e) && !o.deleted[e] {
			t.Fatalf("stream %s is deleted without an acknowledged or in-flight deletion", e)
		}
	}
	for e := range entities {
		o.sawDel[e] = true
	}

	// Every acknowledged or earlier seen event is there, as it was.
	mustHave := func(seq uint64, ev soakEvent, what string) {
		r := bySeq[seq]
		if r == nil {
			if o.deleted[ev.entity] || ev.eph {
				return
			}
			t.Fatalf("%s sequence %d (%s %s v%d) is missing; the store has %d events up to %d",
				what, seq, ev.tag, ev.entity, ev.ver, len(recs), s.LastSequence())
		}
		if o.deleted[ev.entity] {
			t.Fatalf("sequence %d of deleted stream %s is visible", seq, ev.entity)
		}
		if r.ID != ev.id || r.Version != ev.ver || hex.EncodeToString(r.Hash[:]) != ev.hash || r.Coordinate.Entity != ev.entity {
			t.Fatalf("%s sequence %d: got %s v%d id %s, want %s v%d id %s", what, seq, r.Coordinate.Entity, r.Version, r.ID, ev.entity, ev.ver, ev.id)
		}
	}
	for seq, ev := range o.acked {
		mustHave(seq, ev, "acknowledged")
	}
	for seq, ev := range o.seen {
		mustHave(seq, ev, "earlier seen")
	}

	// Every event there is accounted for; requests in flight are whole.
	present := map[string][]int{}
	for i := range recs {
		r := &recs[i]
		var p soakPayload
		if r.Kind != soakKind || r.Decode(&p) != nil || p.Tag == "" {
			t.Fatalf("sequence %d is not a soak event", r.Sequence)
		}
		if a, ok := o.acked[r.Sequence]; ok && a.tag != p.Tag {
			t.Fatalf("sequence %d holds request %s, acknowledged as %s", r.Sequence, p.Tag, a.tag)
		}
		_, seen := o.seen[r.Sequence]
		_, inflight := o.inflight[p.Tag]
		if !o.tags[p.Tag] && !inflight && !seen {
			t.Fatalf("sequence %d holds request %s, which was neither acknowledged nor in flight", r.Sequence, p.Tag)
		}
		if _, ok := o.acked[r.Sequence]; !ok && !seen && o.tags[p.Tag] && !inflight {
			t.Fatalf("sequence %d holds acknowledged request %s at a sequence no receipt named", r.Sequence, p.Tag)
		}
		present[p.Tag] = append(present[p.Tag], p.I)
		o.seen[r.Sequence] = soakEvent{id: r.ID, ver: r.Version, hash: hex.EncodeToString(r.Hash[:]), entity: r.Coordinate.Entity, tag: p.Tag, i: p.I, eph: p.Eph}
	}
	for tag, r := range o.inflight {
		got := present[tag]
		if len(got) == 0 {
			continue
		}
		for i, e := range r.Entities {
			if !slices.Contains(got, i) && !o.deleted[e] && !r.Eph {
				t.Fatalf("request %s in flight at the kill is torn: events %v of %d are visible", tag, got, len(r.Entities))
			}
		}
	}

	// Streams: versions increase, StreamVersion and chains agree.
	for e := range entities {
		var last uint64
		n := 0
		for r, err := range s.ReadStream(context.Background(), dtCoord(e), 0) {
			if err != nil {
				t.Fatal(err)
			}
			if r.Version <= last {
				t.Fatalf("%s: version %d after %d", e, r.Version, last)
			}
			if bySeq[r.Sequence] == nil || bySeq[r.Sequence].Hash != r.Hash {
				t.Fatalf("%s: ReadStream yields sequence %d, which ReadAll did not", e, r.Sequence)
			}
			last = r.Version
			n++
		}
		if v := s.StreamVersion(dtCoord(e)); v < last {
			t.Fatalf("StreamVersion(%s) = %d below its newest event's version %d", e, v, last)
		}
		if err := s.VerifyChain(context.Background(), dtCoord(e)); err != nil {
			t.Fatal(err)
		}
		q := 0
		for r, err := range s.Query(context.Background(), batpak.Region{Entity: e}) {
			if err != nil || r.Coordinate.Entity != e {
				t.Fatalf("Query(%s): %v %s", e, err, r.Coordinate.Entity)
			}
			q++
		}
		if q != n {
			t.Fatalf("Query(%s) yields %d events, ReadStream %d", e, q, n)
		}
	}

	// A cursor from a random position over the accounts sees what ReadAll saw.
	from := uint64(rng.IntN(int(s.LastSequence()) + 2))
	c := s.Cursor(batpak.Region{EntityPrefix: "acct:"}, from)
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	var want []uint64
	for i := range recs {
		if recs[i].Sequence >= from && strings.HasPrefix(recs[i].Coordinate.Entity, "acct:") {
			want = append(want, recs[i].Sequence)
		}
	}
	var got []uint64
	for {
		r, err := linNext(c, expired, expired)
		if errors.Is(err, context.Canceled) {
			break
		}
		if err != nil {
			t.Fatalf("cursor: %v", err)
		}
		got = append(got, r.Sequence)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("cursor from %d over acct:* yields %d events, ReadAll %d", from, len(got), len(want))
	}
	for _, r := range o.inflight {
		if len(present[r.Tag]) > 0 {
			o.inflightFound++
		} else {
			o.inflightLost++
		}
	}
	o.inflight = nil
}

// parentPhase writes in the parent: appends, an atomic batch, a deletion,
// and now and then a compaction.
func (o *soakOracle) parentPhase(t *testing.T, s *eventstore.Store, cycle int, rng *rand.Rand) {
	t.Helper()
	ctx := context.Background()
	do := func(r soakReq) {
		t.Helper()
		rs, err := r.do(ctx, s)
		if err != nil {
			t.Fatalf("parent %s: %v", r.Tag, err)
		}
		a := soakAck{Tag: r.Tag, Key: r.Key}
		for _, rc := range rs {
			a.R = append(a.R, soakReceipt{ID: rc.EventID.String(), Seq: rc.Sequence, Ver: rc.Version, Hash: hex.EncodeToString(rc.Hash[:])})
		}
		o.ack(t, r, a)
	}
	if len(o.parent) > 0 && rng.IntN(2) == 0 {
		e := o.parent[rng.IntN(len(o.parent))]
		if !o.deleted[e] {
			if err := s.DeleteStream(ctx, dtCoord(e)); err != nil {
				t.Fatalf("parent delete %s: %v", e, err)
			}
			o.deleted[e] = true
			o.deletions++
		}
	}
	p := fmt.Sprintf("p:%d", cycle)
	o.parent = append(o.parent, p)
	for n := range 3 {
		do(soakReq{Tag: fmt.Sprintf("P%dn%d", cycle, n), Entities: slices.Repeat([]string{p}, 1+n), Eph: n == 1})
	}
	do(soakReq{Tag: fmt.Sprintf("P%dn3", cycle), Batch: true, Entities: []string{p, "ledger", fmt.Sprintf("acct:%d", rng.IntN(soakAccounts))}})
	if rng.IntN(3) == 0 {
		rep, err := s.Compact(ctx, eventstore.RetainIf(soakKeep))
		if err != nil {
			t.Fatalf("parent compaction: %v", err)
		}
		o.parentCompactions++
		o.removed += rep.EventsRemoved
	}
}

// soakVerifyDir runs Verify, the CLI's verify and a dry-run Repair on a
// closed store: no damage; a torn active tail is allowed only after a kill.
func soakVerifyDir(t *testing.T, cli, dir string, o *soakOracle, afterKill bool) {
	t.Helper()
	o.verifies++
	rep, err := eventstore.Verify(dir)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !rep.OK() {
		t.Fatalf("Verify finds damage: %v", rep.Problems)
	}
	for _, w := range rep.Warnings {
		// After a kill: a torn tail of the active segment, a last segment
		// the kill caught before its header was written, or a seal of the
		// last segment the kill interrupted (its footer half written).
		blank := w.Kind == "file" && strings.Contains(w.Detail, "never got its header")
		seal := w.Kind == "footer" && strings.Contains(w.Detail, "interrupted seal")
		if w.Kind != "torn-tail" && !blank && !seal || !afterKill {
			t.Fatalf("Verify warns (after a kill: %v): %v", afterKill, w)
		}
		switch {
		case blank:
			o.blankWarnings++
		case seal:
			o.sealWarnings++
		default:
			o.tornWarnings++
		}
	}
	if out, code := dmRunCLI(t, cli, "verify", "--quiet", dir); code != 0 {
		t.Fatalf("batpak verify exited %d:\n%s", code, out)
	}
	rr, err := eventstore.Repair(dir, eventstore.DryRun())
	if err != nil || len(rr.Actions) > 0 {
		t.Fatalf("dry-run Repair of a store without damage: %v %+v", err, rr.Actions)
	}
}

// TestCheckpointNotStaleAfterCompaction is the regression test for a bug
// TestSoak found: a periodic checkpoint whose snapshot the writer took
// while a compaction was running was written after the compaction, with
// the old offsets of the segments compacted in between. The next open after
// a crash trusted it (only its last frame is checked) and reads of those
// segments failed their CRC.
func TestCheckpointNotStaleAfterCompaction(t *testing.T) {
	fsys := &dtFS{noSync: true}
	dir := filepath.Join(t.TempDir(), "s")
	s := dtOpen(t, dir, eventstore.WithFS(fsys), eventstore.WithSegmentMaxBytes(4<<10),
		eventstore.WithSyncMode(eventstore.SyncNone), eventstore.WithCheckpointEvery(3))
	defer s.Close()
	pad := make([]byte, 600)
	add := func(n int, eph bool) {
		t.Helper()
		for i := range n {
			if _, err := s.Append(context.Background(), dtCoord(fmt.Sprintf("e%d", i%3)),
				[]batpak.Event{{Kind: soakKind, Payload: soakPayload{Tag: "x", N: len(pad), Eph: eph || i%2 == 0}, Metadata: map[string]string{"pad": string(pad)}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(30, false) // several sealed segments, every other event ephemeral
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	fsys.SetFailWrite(func(name string, _ int64, _ []byte, _ int) (int, error) {
		if name == "0000000002.seg.compact" {
			once.Do(func() {
				close(entered)
				<-release // hold the compaction after segment 1, inside ckptMu
			})
		}
		return 0, nil
	})
	defer fsys.SetFailWrite(nil)
	before := s.Stats().Checkpoints
	for quiet := 0; quiet < 10; quiet++ { // let the checkpoints of the appends above finish
		time.Sleep(10 * time.Millisecond)
		if n := s.Stats().Checkpoints; n != before {
			before, quiet = n, 0
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Compact(context.Background(), eventstore.RetainIf(soakKeep))
		done <- err
	}()
	<-entered
	add(3, false) // due for a checkpoint while segment 2 is being compacted
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Let a checkpoint that was due during the compaction be written.
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end) && s.Stats().Checkpoints == before; {
		time.Sleep(10 * time.Millisecond)
	}
	want := dtReadAll(t, s)

	crash := filepath.Join(t.TempDir(), "crash")
	dtCopyDir(t, dir, crash) // what a crash now would leave
	c, err := eventstore.Open(crash)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got []batpak.Record
	for r, err := range c.ReadAll(context.Background(), 0) {
		if err != nil {
			t.Fatalf("read after a crash (cold start %q): %v", c.Stats().ColdStart.Path, err)
		}
		got = append(got, r)
	}
	dtSameEvents(t, got, want)
}
