package natsstore_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/natsstore"
)

// cluster is a JetStream cluster of in-process servers on loopback. Ports
// are fixed when it is made, so a stopped node restarts where it was.
type cluster struct {
	t            testing.TB
	dirs         []string
	clientPorts  []int
	clusterPorts []int
	servers      []*server.Server
}

func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return ports
}

func startCluster(t testing.TB, n int) *cluster {
	t.Helper()
	ports := freePorts(t, 2*n)
	c := &cluster{t: t, clientPorts: ports[:n], clusterPorts: ports[n:], servers: make([]*server.Server, n)}
	for range n {
		c.dirs = append(c.dirs, t.TempDir())
	}
	for i := range n {
		c.start(i)
	}
	t.Cleanup(func() {
		for _, ns := range c.servers {
			if ns != nil {
				ns.Shutdown()
			}
		}
	})
	// Wait for a JetStream meta leader.
	deadline := hangDeadline(t)
	for !c.hasMetaLeader() {
		if time.Now().After(deadline) {
			t.Fatal("no JetStream meta leader")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}

func (c *cluster) name(i int) string { return fmt.Sprintf("n%d", i) }

func (c *cluster) start(i int) {
	c.t.Helper()
	var routes []string
	for j, p := range c.clusterPorts {
		if j != i {
			routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
		}
	}
	opts := &server.Options{
		ServerName: c.name(i),
		Host:       "127.0.0.1",
		Port:       c.clientPorts[i],
		JetStream:  true,
		StoreDir:   c.dirs[i],
		NoSigs:     true,
		NoLog:      true,
		Cluster:    server.ClusterOpts{Name: "batpak-test", Host: "127.0.0.1", Port: c.clusterPorts[i]},
		Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		c.t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(hangTimeout(c.t)) {
		c.t.Fatalf("server %s did not start", c.name(i))
	}
	c.servers[i] = ns
}

func (c *cluster) stop(i int) {
	c.servers[i].Shutdown()
	c.servers[i].WaitForShutdown()
	c.servers[i] = nil
}

func (c *cluster) urls() string {
	var u []string
	for _, p := range c.clientPorts {
		u = append(u, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	return strings.Join(u, ",")
}

func (c *cluster) hasMetaLeader() bool {
	for _, ns := range c.servers {
		if ns != nil && ns.JetStreamIsLeader() {
			return true
		}
	}
	return false
}

// streamLeader returns the node leading stream, or -1.
func (c *cluster) streamLeader(stream string) int {
	for i, ns := range c.servers {
		if ns != nil && ns.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return i
		}
	}
	return -1
}

// nodeState returns node i's own state of stream (from its monitoring data).
func (c *cluster) nodeState(i int, stream string) (server.StreamState, error) {
	jsz, err := c.servers[i].Jsz(&server.JSzOptions{Accounts: true, Streams: true})
	if err != nil {
		return server.StreamState{}, err
	}
	for _, ad := range jsz.AccountDetails {
		for _, sd := range ad.Streams {
			if sd.Name == stream {
				return sd.State, nil
			}
		}
	}
	return server.StreamState{}, fmt.Errorf("node %d has no stream %s", i, stream)
}

// moveLeader makes node i the leader of stream.
func (c *cluster) moveLeader(nc *nats.Conn, stream string, i int) error {
	deadline := hangDeadline(c.t)
	for c.streamLeader(stream) != i {
		if time.Now().After(deadline) {
			return fmt.Errorf("node %d did not become leader of %s", i, stream)
		}
		req, _ := json.Marshal(map[string]any{"placement": map[string]string{"preferred": c.name(i)}})
		_, _ = nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, req, 5*time.Second)
		for range 40 {
			if c.streamLeader(stream) == i {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// transient reports the errors of a cluster that is electing or moving a
// leader: the same request succeeds once it is done.
func transient(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case 10008, 10009: // JetStream temporarily unavailable, not leader
			return true
		}
	}
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders)
}

type acked struct {
	entity string
	r      batpak.Receipt
}

// TestClusterFailover runs a store on a 3-node cluster (replicas 3),
// appends under load, stops the stream leader, keeps appending, brings the
// node back and checks that every acknowledged event is in the stream
// exactly once, at its acknowledged sequence, in the same order on every
// node.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	began := time.Now()
	c := startCluster(t, 3)
	t.Logf("cluster up in %v", time.Since(began).Round(time.Millisecond))
	const stream = "FAILOVER"
	// Appends retry through the election within the store's timeout; the
	// test counts those that fail, so the timeout is a hang guard here.
	ctx := hangContext(t)
	s, err := natsstore.Open(ctx, c.urls(), patient(t, natsstore.WithStream(stream), natsstore.WithReplicas(3),
		natsstore.WithAckWait(2*time.Second), natsstore.WithLogger(zaptest.NewLogger(t)))...)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	var (
		mu     sync.Mutex
		log    []acked
		total  atomic.Int64
		failed atomic.Int64
		stop   = make(chan struct{})
		wg     sync.WaitGroup
	)
	note := func(entities []string, rs []batpak.Receipt) {
		mu.Lock()
		defer mu.Unlock()
		for i, r := range rs {
			log = append(log, acked{entities[i], r})
		}
		total.Add(int64(len(rs)))
	}
	const writers = 4
	k := kind.Custom(1, 1)
	for w := range writers {
		wg.Go(func() {
			own := fmt.Sprintf("acct:%d", w)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				switch i % 4 {
				case 0, 1: // one event on the writer's own stream, with its expected version
					v := s.StreamVersion(batpak.Coordinate{Entity: own, Scope: "bank"})
					var rs []batpak.Receipt
					rs, err = s.Append(ctx, batpak.Coordinate{Entity: own, Scope: "bank"},
						[]batpak.Event{{Kind: k, Payload: i}}, batpak.ExpectVersion(batpak.Exactly(v)))
					if err == nil {
						note([]string{own}, rs)
					}
				case 2: // a shared stream, any version
					var rs []batpak.Receipt
					rs, err = s.Append(ctx, batpak.Coordinate{Entity: "shared", Scope: "bank"},
						[]batpak.Event{{Kind: k, Payload: i}, {Kind: k, Payload: i}})
					if err == nil {
						note([]string{"shared", "shared"}, rs)
					}
				case 3: // an atomic batch over three streams
					other := fmt.Sprintf("acct:%d", (w+1)%writers)
					items := []batpak.BatchItem{
						{Coordinate: batpak.Coordinate{Entity: own, Scope: "bank"}, Event: batpak.Event{Kind: k, Payload: i}},
						{Coordinate: batpak.Coordinate{Entity: other, Scope: "bank"}, Event: batpak.Event{Kind: k, Payload: i}},
						{Coordinate: batpak.Coordinate{Entity: "ledger", Scope: "bank"}, Event: batpak.Event{Kind: k, Payload: i}},
					}
					var rs []batpak.Receipt
					rs, err = s.AppendBatch(ctx, items)
					if err == nil {
						note([]string{own, other, "ledger"}, rs)
					}
				}
				if err != nil {
					if errors.Is(err, batpak.ErrVersionConflict) {
						continue // another writer's batch moved the stream: retry with the new version
					}
					failed.Add(1)
					t.Logf("writer %d: %v", w, err)
				}
			}
		})
	}
	waitFor := func(n int64, what string) {
		t.Helper()
		deadline := hangDeadline(t)
		for total.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d events acknowledged, want %d", what, total.Load(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor(400, "before the failover")
	leader := c.streamLeader(stream)
	if leader < 0 {
		t.Fatal("no stream leader")
	}
	before := total.Load()
	stopped := time.Now()
	c.stop(leader)
	t.Logf("stopped node %s (the stream leader) after %d acknowledged events", c.name(leader), before)
	waitFor(before+400, "with a node down")
	during := total.Load() - before
	t.Logf("%d events acknowledged in %v with node %s down", during, time.Since(stopped).Round(time.Millisecond), c.name(leader))
	c.start(leader)
	restarted := total.Load()
	deadline := hangDeadline(t)
	for !c.servers[leader].JetStreamIsStreamCurrent(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
		if time.Now().After(deadline) {
			t.Fatalf("restarted node %s did not catch up", c.name(leader))
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(restarted+200, "after the restart")
	close(stop)
	wg.Wait()
	if failed.Load() > 0 {
		t.Errorf("%d appends failed", failed.Load())
	}
	n := uint64(total.Load())
	t.Logf("%d events acknowledged in all (%d before the stop, %d with the node down, %d after the restart); client stats %+v", n, before, during, n-uint64(restarted), s.Stats())

	// Every acknowledged event is in the stream once, where it was acknowledged.
	if got := s.LastSequence(); got != n {
		t.Fatalf("LastSequence = %d, %d events acknowledged", got, n)
	}
	s2, err := natsstore.Open(ctx, c.urls(), patient(t, natsstore.WithStream(stream))...)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	all := make([]batpak.Record, 0, n)
	for rec, err := range s2.ReadAll(ctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, rec)
	}
	if uint64(len(all)) != n {
		t.Fatalf("a fresh client reads %d events, %d were acknowledged", len(all), n)
	}
	seen := make(map[uuid.UUID]bool, n)
	for i, rec := range all {
		if rec.Sequence != uint64(i+1) || seen[rec.ID] {
			t.Fatalf("sequence %d (position %d) or event %s repeated", rec.Sequence, i, rec.ID)
		}
		seen[rec.ID] = true
	}
	for _, a := range log {
		rec := all[a.r.Sequence-1]
		if rec.ID != a.r.EventID || rec.Version != a.r.Version || rec.Hash != a.r.Hash || rec.Coordinate.Entity != a.entity {
			t.Fatalf("acknowledged %+v on %s, the stream holds %v (%s)", a.r, a.entity, rec, rec.ID)
		}
	}
	for _, e := range []string{"acct:0", "acct:1", "acct:2", "acct:3", "shared", "ledger"} {
		if err := s2.VerifyChain(ctx, batpak.Coordinate{Entity: e, Scope: "bank"}); err != nil {
			t.Fatal(err)
		}
	}

	// Every node holds the same events in the same order.
	for i := range c.servers {
		// Followers beyond the quorum may still be applying the last events.
		deadline := hangDeadline(t)
		for {
			st, err := c.nodeState(i, stream)
			if err != nil {
				t.Fatal(err)
			}
			if st.Msgs == n && st.LastSeq == n && st.FirstSeq == 1 && st.NumDeleted == 0 {
				break
			}
			if st.LastSeq > n || time.Now().After(deadline) {
				t.Fatalf("node %s: %d messages, sequences %d..%d, %d deleted; want %d dense", c.name(i), st.Msgs, st.FirstSeq, st.LastSeq, st.NumDeleted, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	js, err := jetstream.New(s2.Conn())
	if err != nil {
		t.Fatal(err)
	}
	str, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	for i := range c.servers {
		if err := c.moveLeader(s2.Conn(), stream, i); err != nil {
			t.Fatal(err)
		}
		for seq := uint64(1); seq <= n; seq++ {
			m, err := str.GetMsg(ctx, seq)
			for transient(err) && ctx.Err() == nil {
				// A node that has just become leader may not answer yet,
				// or may have lost the leadership again: read from it once
				// it leads and answers.
				t.Logf("node %s: sequence %d: %v; asking again", c.name(i), seq, err)
				time.Sleep(50 * time.Millisecond)
				if err := c.moveLeader(s2.Conn(), stream, i); err != nil {
					t.Fatal(err)
				}
				m, err = str.GetMsg(ctx, seq)
			}
			if err != nil {
				t.Fatalf("node %s: sequence %d: %v", c.name(i), seq, err)
			}
			if id := m.Header.Get("Batpak-Id"); id != all[seq-1].ID.String() {
				t.Fatalf("node %s: sequence %d holds %s, want %s", c.name(i), seq, id, all[seq-1].ID)
			}
		}
	}
	t.Logf("all %d events in the same order on the 3 nodes; test took %v", n, time.Since(began).Round(time.Millisecond))
}
