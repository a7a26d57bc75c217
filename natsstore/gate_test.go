package natsstore_test

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// gate is a TCP proxy on loopback in front of one node's cluster port:
// every route connection into the node passes through it (the node
// advertises the gate as its cluster address), so a test can hold the
// traffic between the nodes, as a pause or a partition would, and release
// it, without stopping a server. Bytes are delayed, never dropped.
type gate struct {
	l      net.Listener
	target string

	mu     sync.Mutex
	held   bool
	resume chan struct{} // closed by release
	conns  []net.Conn
	closed bool
}

func newGate(t testing.TB, target string) *gate {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{l: l, target: target}
	go g.accept()
	t.Cleanup(g.close)
	return g
}

func (g *gate) addr() string { return g.l.Addr().String() }

func (g *gate) accept() {
	for {
		in, err := g.l.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", g.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			_ = in.Close()
			_ = out.Close()
			return
		}
		g.conns = append(g.conns, in, out)
		g.mu.Unlock()
		go g.pipe(out, in)
		go g.pipe(in, out)
	}
}

// pipe copies src to dst, waiting while the gate is held.
func (g *gate) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			g.wait()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a closed connection: close the other side too
		}
	}
}

func (g *gate) wait() {
	g.mu.Lock()
	held, ch := g.held, g.resume
	g.mu.Unlock()
	if held {
		<-ch
	}
}

// hold stops forwarding in both directions.
func (g *gate) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.held {
		g.held, g.resume = true, make(chan struct{})
	}
}

// release forwards what was held and everything after it.
func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held {
		g.held = false
		close(g.resume)
	}
}

func (g *gate) close() {
	_ = g.l.Close()
	g.release()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for _, c := range g.conns {
		_ = c.Close()
	}
}

// gatedCluster is a cluster (see startCluster) whose route traffic goes
// through one gate per node.
type gatedCluster struct {
	*cluster
	gates []*gate
}

// startGatedCluster starts n nodes whose routes all pass through gates.
// Its nodes cannot be restarted with cluster.start.
func startGatedCluster(t testing.TB, n int) *gatedCluster {
	t.Helper()
	ports := freePorts(t, 2*n)
	c := &cluster{t: t, clientPorts: ports[:n], clusterPorts: ports[n:], servers: make([]*server.Server, n)}
	gc := &gatedCluster{cluster: c}
	for i := range n {
		c.dirs = append(c.dirs, t.TempDir())
		gc.gates = append(gc.gates, newGate(t, fmt.Sprintf("127.0.0.1:%d", c.clusterPorts[i])))
	}
	t.Cleanup(func() {
		for _, ns := range c.servers {
			if ns != nil {
				ns.Shutdown()
			}
		}
	})
	for i := range n {
		var routes []string
		for j, g := range gc.gates {
			if j != i {
				routes = append(routes, "nats://"+g.addr())
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
			Cluster: server.ClusterOpts{
				Name: "batpak-gated", Host: "127.0.0.1", Port: c.clusterPorts[i],
				Advertise: gc.gates[i].addr(), // gossip names the gate too
			},
			Routes: server.RoutesFromStr(strings.Join(routes, ",")),
		}
		ns, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		ns.Start()
		if !ns.ReadyForConnections(hangTimeout(t)) {
			t.Fatalf("server %s did not start", c.name(i))
		}
		c.servers[i] = ns
	}
	deadline := hangDeadline(t)
	for !c.hasMetaLeader() {
		if time.Now().After(deadline) {
			t.Fatal("no JetStream meta leader")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return gc
}

// partition holds every route: no node hears another.
func (gc *gatedCluster) partition() {
	for _, g := range gc.gates {
		g.hold()
	}
}

// heal releases every route.
func (gc *gatedCluster) heal() {
	for _, g := range gc.gates {
		g.release()
	}
}

// url returns node i's client URL.
func (c *cluster) url(i int) string { return fmt.Sprintf("nats://127.0.0.1:%d", c.clientPorts[i]) }
