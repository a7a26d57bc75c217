package natsstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/natsstore/embedded"
)

// withCheckpointSpan makes this client write checkpoint blocks of n
// events, so that tests cover chains of many blocks with few events.
func withCheckpointSpan(n uint64) Option { return func(c *config) { c.ck.span = n } }

var ckStreams atomic.Int64

// ckTestDeadline is when a test of this file stops waiting and calls it a
// hang: shortly before the test binary's deadline.
func ckTestDeadline(t *testing.T) time.Time {
	if d, ok := t.Deadline(); ok {
		return d.Add(-min(time.Until(d)/10, time.Minute))
	}
	return time.Now().Add(time.Hour)
}

func ckServer(t *testing.T) *server.Server {
	t.Helper()
	ns, err := embedded.Start(embedded.Options{Dir: t.TempDir(), Name: "ck"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

// ckOpen opens a store on ns whose time limits are the test's hang guard;
// the caller closes it.
func ckOpen(t *testing.T, ns *server.Server, stream string, opts ...Option) *Store {
	t.Helper()
	s, err := ckTryOpen(t, ns, stream, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ckTryOpen(t *testing.T, ns *server.Server, stream string, opts ...Option) (*Store, error) {
	t.Helper()
	ctx, cancel := context.WithDeadline(context.Background(), ckTestDeadline(t))
	defer cancel()
	d := time.Until(ckTestDeadline(t))
	return Open(ctx, ns.ClientURL(), append([]Option{WithStream(stream), WithTimeout(d), WithOpenTimeout(d)}, opts...)...)
}

var (
	ckKindA = kind.Custom(1, 1)
	ckKindB = kind.Custom(2, 3)
)

// ckWrite appends a mix of requests to s: single events, multi-event
// appends and batches over several streams (some crossing block
// boundaries), idempotency keys, correlation and causation. It returns
// the keyed requests' receipts by key, with the key's scope.
func ckWrite(t *testing.T, s *Store, round, n int) map[string]ckKeyed {
	t.Helper()
	ctx := context.Background()
	keyed := make(map[string]ckKeyed)
	c := func(i int) batpak.Coordinate {
		return batpak.Coordinate{Entity: fmt.Sprintf("acct:%d", i%7), Scope: []string{"eu", "us. west"}[i%2]}
	}
	var last uuid.UUID
	for i := range n {
		var opts []batpak.AppendOption
		if i%5 == 0 {
			opts = append(opts, batpak.WithIdempotencyKey(fmt.Sprintf("r%d-k%d", round, i)))
		}
		if i%3 == 1 && last != uuid.Nil {
			opts = append(opts, batpak.WithCausation(last))
		}
		var rs []batpak.Receipt
		var err error
		switch i % 4 {
		case 0, 1:
			rs, err = s.Append(ctx, c(i), []batpak.Event{{Kind: ckKindA, Payload: i, Metadata: map[string]string{"i": strconv.Itoa(i)}}}, opts...)
		case 2:
			rs, err = s.Append(ctx, c(i), []batpak.Event{{Kind: ckKindA, Payload: i}, {Kind: ckKindB, Payload: "x"}, {Kind: ckKindB}}, opts...)
		case 3:
			items := make([]batpak.BatchItem, 2+i%9)
			for j := range items {
				items[j] = batpak.BatchItem{Coordinate: c(i + j), Event: batpak.Event{Kind: ckKindB, Payload: j}}
			}
			rs, err = s.AppendBatch(ctx, items, opts...)
		}
		if err != nil {
			t.Fatalf("round %d request %d: %v", round, i, err)
		}
		if i%5 == 0 {
			keyed[fmt.Sprintf("r%d-k%d", round, i)] = ckKeyed{scope: c(i).Scope, rs: rs}
		}
		last = rs[len(rs)-1].EventID
	}
	return keyed
}

// ckKeyed is a keyed request: its key's scope and its receipts.
type ckKeyed struct {
	scope string
	rs    []batpak.Receipt
}

// ckSameIndex checks that the indexes of a and b hold the same events,
// streams, keys and correlation and causation links.
func ckSameIndex(t *testing.T, a, b *Store) {
	t.Helper()
	la, lb := a.ix.snapshot(), b.ix.snapshot()
	if la.len() != lb.len() {
		t.Fatalf("%d events, want %d", la.len(), lb.len())
	}
	for seq := uint64(1); seq <= la.len(); seq++ {
		ea, eb := la.at(seq), lb.at(seq)
		ra, _ := ea.record(seq)
		rb, _ := eb.record(seq)
		if ea.entity != eb.entity || ea.scope != eb.scope || ea.id != eb.id || ea.corr != eb.corr || ea.cause != eb.cause ||
			ea.ts != eb.ts || ea.version != eb.version || ea.kind != eb.kind || ea.parts != eb.parts ||
			ea.prev != eb.prev || ea.hash != eb.hash {
			t.Fatalf("sequence %d: %+v, want %+v", seq, ra, rb)
		}
	}
	a.ix.mu.RLock()
	defer a.ix.mu.RUnlock()
	b.ix.mu.RLock()
	defer b.ix.mu.RUnlock()
	coords := func(order []*streamState) []batpak.Coordinate {
		var out []batpak.Coordinate
		for _, st := range order {
			out = append(out, st.coord)
		}
		return out
	}
	if oa, ob := coords(a.ix.order), coords(b.ix.order); !slices.Equal(oa, ob) {
		t.Fatalf("streams %v, want %v", oa, ob)
	}
	for c, st := range b.ix.streams {
		sa := a.ix.streams[c]
		if sa == nil || sa.coord != c || sa.version != st.version || sa.lastHash != st.lastHash || !slices.Equal(sa.seqs, st.seqs) {
			t.Fatalf("stream %v differs", c)
		}
	}
	for e, streams := range b.ix.byEntity {
		if oa, ob := coords(a.ix.byEntity[e]), coords(streams); !slices.Equal(oa, ob) {
			t.Fatalf("streams of entity %q: %v, want %v", e, oa, ob)
		}
	}
	for what, m := range map[string][2]any{
		"keys": {a.ix.keys, b.ix.keys}, "key log": {a.ix.keyLog, b.ix.keyLog}, "ids": {a.ix.byID, b.ix.byID},
		"correlation": {a.ix.corr, b.ix.corr}, "causation": {a.ix.cause, b.ix.cause}, "scopes": {a.ix.scopes, b.ix.scopes},
		"skipped": {a.ix.skippedN, b.ix.skippedN}, "subject sequences": {a.ix.subjLast, b.ix.subjLast},
	} {
		if !reflect.DeepEqual(m[0], m[1]) {
			t.Fatalf("%s differ", what)
		}
	}
}

// TestIndexCheckpointRestores: a store opened from a checkpoint of many
// blocks (written periodically and at Close) has the index of a store that
// read the whole stream, keys included, and carries on appending.
func TestIndexCheckpointRestores(t *testing.T) {
	ns := ckServer(t)
	stream := fmt.Sprintf("CK_%d", ckStreams.Add(1))
	a := ckOpen(t, ns, stream, withCheckpointSpan(64), WithIndexCheckpoints(50))
	keyed := ckWrite(t, a, 1, 300)
	// The periodic writer covers the stream without a Close.
	for deadline := ckTestDeadline(t); a.IndexStats().Covered < 64; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no periodic checkpoint: %+v", a.IndexStats())
		}
	}
	total := a.LastSequence()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// Close leaves fewer than 50 events (WithIndexCheckpoints) uncovered.
	covered := a.IndexStats().Covered
	if st := a.IndexStats(); covered+50 <= total || st.WriteFailures != 0 || st.Written < total/64 {
		t.Fatalf("after Close: %+v, %d events", st, total)
	}

	var reports [][2]uint64
	b := ckOpen(t, ns, stream, withCheckpointSpan(64), WithOpenProgress(func(done, n uint64) { reports = append(reports, [2]uint64{done, n}) }))
	defer b.Close()
	full := ckOpen(t, ns, stream, WithIndexCheckpoints(0))
	defer full.Close()
	if st := b.IndexStats(); st.Restored != covered || st.Replayed != total-covered || st.Ignored != 0 {
		t.Fatalf("open: %+v, want %d of %d events restored", st, covered, total)
	}
	if st := full.IndexStats(); st.Restored != 0 || st.Replayed != total {
		t.Fatalf("open without checkpoint: %+v", st)
	}
	ckSameIndex(t, b, full)
	if len(reports) < int(covered/64) || reports[len(reports)-1] != [2]uint64{total, total} {
		t.Fatalf("progress %v", reports)
	}
	for i := 1; i < len(reports); i++ {
		if reports[i][0] < reports[i-1][0] || reports[i][1] != total {
			t.Fatalf("progress %v", reports)
		}
	}
	// Keys restored from the checkpoint return the original receipts, in
	// their scope.
	for key, want := range keyed {
		got, err := b.Append(context.Background(), batpak.Coordinate{Entity: "other", Scope: want.scope}, []batpak.Event{{Kind: ckKindA}}, batpak.WithIdempotencyKey(key))
		if err != nil || !slices.Equal(got, want.rs) {
			t.Fatalf("key %s: %v %v, want %v", key, got, err, want.rs)
		}
	}
	if b.LastSequence() != total {
		t.Fatal("a replayed key appended")
	}
	// Reads of restored events come from the stream; appends go on.
	acct3 := batpak.Coordinate{Entity: "acct:3", Scope: "us. west"}
	for rec, err := range b.ReadStream(context.Background(), acct3, 1) {
		if err != nil {
			t.Fatal(err)
		}
		if rec.Version == 1 && rec.PrevHash != ([32]byte{}) {
			t.Fatal("version 1 links to a previous event")
		}
	}
	if err := b.VerifyChain(context.Background(), acct3); err != nil {
		t.Fatal(err)
	}
	ckWrite(t, b, 2, 40)
	if err := full.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	ckSameIndex(t, b, full)
}

// TestIndexCheckpointTail: a checkpoint behind the stream is used, and
// Open reads what follows; a chain that ends inside a request is used up
// to the request before.
func TestIndexCheckpointTail(t *testing.T) {
	ns := ckServer(t)
	stream := fmt.Sprintf("CK_%d", ckStreams.Add(1))
	a := ckOpen(t, ns, stream, withCheckpointSpan(64), WithIndexCheckpoints(1))
	ckWrite(t, a, 1, 100)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	covered := a.IndexStats().Covered
	// Another client appends without writing checkpoints.
	w := ckOpen(t, ns, stream, WithIndexCheckpoints(0))
	ckWrite(t, w, 2, 30)
	total := w.LastSequence()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b := ckOpen(t, ns, stream, withCheckpointSpan(64))
	defer b.Close()
	if st := b.IndexStats(); st.Restored != covered || st.Replayed != total-covered {
		t.Fatalf("open: %+v, want %d restored and %d read", st, covered, total-covered)
	}
	full := ckOpen(t, ns, stream, WithIndexCheckpoints(0))
	defer full.Close()
	ckSameIndex(t, b, full)

	// Remove every block but the first full one: the chain then ends at
	// sequence 64, and the last request that ends by then is used.
	obs, err := b.js.ObjectStore(context.Background(), stream+"_index")
	if err != nil {
		t.Fatal(err)
	}
	infos, err := obs.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		if in.Name != "events.1" {
			if err := obs.Delete(context.Background(), in.Name); err != nil {
				t.Fatal(err)
			}
		}
	}
	var end uint64
	log := full.ix.snapshot()
	for seq := uint64(1); seq <= 64; seq++ {
		if p := uint64(log.at(seq).parts); p > 0 && seq+p-1 <= 64 {
			end = seq + p - 1
		}
	}
	if end == 64 {
		t.Fatal("the test wants a request across sequence 64")
	}
	c := ckOpen(t, ns, stream, withCheckpointSpan(64))
	defer c.Close()
	if st := c.IndexStats(); st.Restored != end || st.Ignored != 0 {
		t.Fatalf("open from a chain ending inside a request: %+v, want %d restored", st, end)
	}
	ckSameIndex(t, c, full)
}

// TestIndexCheckpointIgnored: a checkpoint of another stream by the same
// name, a damaged block or one that does not match the stream is ignored,
// counted, and Open reads the stream.
func TestIndexCheckpointIgnored(t *testing.T) {
	ns := ckServer(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		reason string
		damage func(t *testing.T, s *Store, obs jetstream.ObjectStore)
	}{
		{"recreated stream", "another stream", func(t *testing.T, s *Store, _ jetstream.ObjectStore) {
			if err := s.js.DeleteStream(ctx, s.cfg.stream); err != nil {
				t.Fatal(err)
			}
		}},
		{"damaged block", "unreadable block", func(t *testing.T, s *Store, obs jetstream.ObjectStore) {
			in, err := obs.GetInfo(ctx, "events.65")
			if err != nil {
				t.Fatal(err)
			}
			data, err := obs.GetBytes(ctx, "events.65")
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)/2] ^= 1
			if _, err := obs.Put(ctx, in.ObjectMeta, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
		}},
		{"block not of this stream", "does not match the stream", func(t *testing.T, s *Store, obs jetstream.ObjectStore) {
			// A block with a valid CRC whose last event has another hash.
			in, err := obs.GetInfo(ctx, "events.65")
			if err != nil {
				t.Fatal(err)
			}
			data, err := obs.GetBytes(ctx, "events.65")
			if err != nil {
				t.Fatal(err)
			}
			b, err := decodeCheckpointBlock(data)
			if err != nil {
				t.Fatal(err)
			}
			b.entries[len(b.entries)-1].hash[0] ^= 1
			if _, err := obs.Put(ctx, in.ObjectMeta, bytes.NewReader(encodeCheckpointBlock(b))); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := fmt.Sprintf("CK_%d", ckStreams.Add(1))
			a := ckOpen(t, ns, stream, withCheckpointSpan(64), WithIndexCheckpoints(1))
			ckWrite(t, a, 1, 60)
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			if a.IndexStats().Covered <= 129 {
				t.Fatalf("the test wants three blocks: %+v", a.IndexStats())
			}
			w := ckOpen(t, ns, stream, WithIndexCheckpoints(0))
			obs, err := w.js.ObjectStore(ctx, stream+"_index")
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(t, w, obs)
			if _, err := w.stream.Info(ctx); err != nil {
				// The stream is gone: make a new one by the same name.
				w.Close()
				w = ckOpen(t, ns, stream, WithIndexCheckpoints(0))
				ckWrite(t, w, 2, 20)
			}
			w.Close()
			b := ckOpen(t, ns, stream, withCheckpointSpan(64))
			defer b.Close()
			st := b.IndexStats()
			if st.Restored != 0 || st.Ignored != 1 || !strings.Contains(st.IgnoredReason, tc.reason) || st.Replayed != b.LastSequence() {
				t.Fatalf("open: %+v, want the checkpoint ignored (%s)", st, tc.reason)
			}
			full := ckOpen(t, ns, stream, WithIndexCheckpoints(0))
			defer full.Close()
			ckSameIndex(t, b, full)
		})
	}
}

// TestIndexCheckpointSkipped: messages the index skips (not events) are
// kept in the checkpoint as such, and reads of the events around them
// from the server get every event.
func TestIndexCheckpointSkipped(t *testing.T) {
	ns := ckServer(t)
	stream := fmt.Sprintf("CK_%d", ckStreams.Add(1))
	a := ckOpen(t, ns, stream, withCheckpointSpan(16), WithIndexCheckpoints(1), WithCacheBytes(0))
	foreign := func(subject string) {
		t.Helper()
		if _, err := a.nc.Request(subject, []byte("not an event"), time.Until(ckTestDeadline(t))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 6 {
		ckWrite(t, a, i, 5)
		foreign(subjectOf(a.prefix, batpak.Coordinate{Entity: "acct:3", Scope: "eu"}))
		foreign(a.prefix + "not.a.stream")
	}
	if err := a.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	ckWrite(t, a, 9, 5)
	if a.ix.skippedCount() != 12 {
		t.Fatalf("%d messages skipped, want 12", a.ix.skippedCount())
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := ckOpen(t, ns, stream, withCheckpointSpan(16), WithCacheBytes(0))
	defer b.Close()
	if st := b.IndexStats(); st.Restored != a.IndexStats().Covered || st.Ignored != 0 {
		t.Fatalf("open: %+v", st)
	}
	full := ckOpen(t, ns, stream, WithIndexCheckpoints(0))
	defer full.Close()
	ckSameIndex(t, b, full)
	for _, c := range []batpak.Coordinate{{Entity: "acct:3", Scope: "us. west"}, {Entity: "acct:4", Scope: "eu"}} {
		var got, want []batpak.Record
		for rec, err := range b.ReadStream(context.Background(), c, 1) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, rec)
		}
		for rec, err := range full.ReadStream(context.Background(), c, 1) {
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, rec)
		}
		if len(want) == 0 || !reflect.DeepEqual(got, want) {
			t.Fatalf("%v: read %d events from the server, want %d", c, len(got), len(want))
		}
	}
	// The next append to the stream expects the skipped message's subject
	// sequence.
	if _, err := b.Append(context.Background(), batpak.Coordinate{Entity: "acct:3", Scope: "eu"}, []batpak.Event{{Kind: ckKindA}}); err != nil {
		t.Fatal(err)
	}
}

// TestReadsInPartialBatches: direct gets answered with less than they
// asked for (here: cut by a small byte limit; on a cluster: a replica
// behind the leader) are asked again for the rest.
func TestReadsInPartialBatches(t *testing.T) {
	ns := ckServer(t)
	s := ckOpen(t, ns, "CK_PARTIAL", WithCacheBytes(0))
	defer s.Close()
	ckWrite(t, s, 1, 60)
	defer func(n int) { directBatchBytes = n }(directBatchBytes)
	directBatchBytes = 2000 // a few events per answer
	full := ckOpen(t, ns, "CK_PARTIAL")
	defer full.Close()
	ctx := context.Background()
	acct2 := batpak.Coordinate{Entity: "acct:2", Scope: "eu"}
	acct5 := batpak.Coordinate{Entity: "acct:5", Scope: "us. west"}
	read := func(seq iter.Seq2[batpak.Record, error]) []batpak.Record {
		t.Helper()
		var out []batpak.Record
		for rec, err := range seq {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, rec)
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		got, want iter.Seq2[batpak.Record, error]
	}{
		{"ReadAll", s.ReadAll(ctx, 0), full.ReadAll(ctx, 0)},
		{"ReadStream", s.ReadStream(ctx, acct2, 1), full.ReadStream(ctx, acct2, 1)},
		{"ReadStream backward", s.ReadStream(ctx, acct5, 0, batpak.Backward()), full.ReadStream(ctx, acct5, 0, batpak.Backward())},
		{"Query", s.Query(ctx, batpak.Region{Kinds: []kind.Kind{ckKindB}}), full.Query(ctx, batpak.Region{Kinds: []kind.Kind{ckKindB}})},
		{"Query entity in every scope", s.Query(ctx, batpak.Region{Entity: "acct:5"}), full.Query(ctx, batpak.Region{Entity: "acct:5"})},
	} {
		got, want := read(tc.got), read(tc.want)
		if len(want) == 0 || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %d events, want %d", tc.name, len(got), len(want))
		}
	}
}

// TestOpenTimeout: Open ends when its own time limit does.
func TestOpenTimeout(t *testing.T) {
	ns := ckServer(t)
	_, err := ckTryOpen(t, ns, "CK_TIMEOUT", WithOpenTimeout(time.Nanosecond))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("open with a timeout of 1 ns: %v", err)
	}
}

// TestReadsWithoutDirectGets: on a stream that does not allow direct gets
// reads ask the leader, one event at a time.
func TestReadsWithoutDirectGets(t *testing.T) {
	ns := ckServer(t)
	s := ckOpen(t, ns, "CK_NODIRECT", WithCacheBytes(0))
	defer s.Close()
	cfg := s.stream.CachedInfo().Config
	cfg.AllowDirect = false
	str, err := s.js.UpdateStream(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.stream = str
	if s.directGets() {
		t.Fatal("direct gets still on")
	}
	ckWrite(t, s, 1, 20)
	n := 0
	for rec, err := range s.ReadAll(context.Background(), 0) {
		if err != nil {
			t.Fatal(err)
		}
		if rec.Payload == nil {
			t.Fatalf("sequence %d without a payload", rec.Sequence)
		}
		n++
	}
	if uint64(n) != s.LastSequence() {
		t.Fatalf("read %d of %d events", n, s.LastSequence())
	}
	if _, err := s.GetSequence(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
}
