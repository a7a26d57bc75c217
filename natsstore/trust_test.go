package natsstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/batpak-go/batpak/natsstore"
)

// dialRecorder is a nats.CustomDialer that records every address the
// client dials and connects only to loopback: a dial anywhere else is
// refused before a packet leaves the machine.
type dialRecorder struct {
	mu    sync.Mutex
	addrs []string
}

func (d *dialRecorder) Dial(network, address string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, address)
	d.mu.Unlock()
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("test dialer: refusing %s: not loopback", address)
	}
	return (&net.Dialer{Timeout: 5 * time.Second}).Dial(network, address)
}

// dialed returns the addresses dialed so far.
func (d *dialRecorder) dialed() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.addrs...)
}

// startAdvertisingCluster starts n JetStream nodes on loopback with a user
// and password, where every node but the first advertises a client
// address in 192.0.2.0/24 (TEST-NET-1, never routed): what a cluster of
// machines on a network tells its clients.
func startAdvertisingCluster(t *testing.T, n int) *cluster {
	t.Helper()
	ports := freePorts(t, 2*n)
	c := &cluster{t: t, clientPorts: ports[:n], clusterPorts: ports[n:], servers: make([]*server.Server, n)}
	t.Cleanup(func() {
		for _, ns := range c.servers {
			if ns != nil {
				ns.Shutdown()
			}
		}
	})
	for i := range n {
		c.dirs = append(c.dirs, t.TempDir())
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
			Username:   "app",
			Password:   "s3cret",
			JetStream:  true,
			StoreDir:   c.dirs[i],
			NoSigs:     true,
			NoLog:      true,
			Cluster:    server.ClusterOpts{Name: "batpak-advertise", Host: "127.0.0.1", Port: c.clusterPorts[i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
		}
		if i > 0 {
			opts.ClientAdvertise = fmt.Sprintf("192.0.2.%d:4222", i)
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
	return c
}

func nonLoopback(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		if strings.Contains(a, "192.0.2.") {
			out = append(out, a)
		}
	}
	return out
}

// TestDiscoveredServersNeverInClear: a store opened with a loopback URL
// (no TLS needed for this machine) with a user and password must never
// send them to a server the cluster advertises on another machine: its
// connection keeps the advertised addresses out of its pool and never
// dials them, also when it reconnects. A plain nats.go connection, for
// contrast, would.
func TestDiscoveredServersNeverInClear(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	c := startAdvertisingCluster(t, 3)
	url := fmt.Sprintf("nats://app:s3cret@127.0.0.1:%d", c.clientPorts[0])

	// The cluster advertises the TEST-NET addresses: a plain connection
	// takes them into its pool (and would reconnect there in clear text).
	plainDialer := &dialRecorder{}
	plain, err := nats.Connect(url, nats.SetCustomDialer(plainDialer), nats.Timeout(hangTimeout(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	deadline := hangDeadline(t)
	for len(nonLoopback(plain.DiscoveredServers())) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the cluster advertises %v, want the two 192.0.2.x addresses", plain.DiscoveredServers())
		}
		time.Sleep(10 * time.Millisecond)
	}

	d := &dialRecorder{}
	s, err := natsstore.Open(hangContext(t), url, patient(t, natsstore.WithStream(uniqueStream("ADV")),
		natsstore.WithNATSOptions(nats.SetCustomDialer(d)))...)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if bad := nonLoopback(s.Conn().Servers()); len(bad) > 0 {
		t.Fatalf("the store's connection holds %v in its server pool (all: %v)", bad, s.Conn().Servers())
	}
	// Make it reconnect: node 0 goes away; the client retries its pool.
	before := len(d.dialed())
	c.stop(0)
	deadline = hangDeadline(t)
	for len(d.dialed()) < before+5 {
		if time.Now().After(deadline) {
			t.Fatalf("no reconnect attempts: %v", d.dialed())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if bad := nonLoopback(d.dialed()); len(bad) > 0 {
		t.Fatalf("the store's connection dialed %v", bad)
	}
	if bad := nonLoopback(s.Conn().Servers()); len(bad) > 0 {
		t.Fatalf("after reconnecting, the pool holds %v", bad)
	}
	t.Logf("dials: %v", d.dialed())
}

// TestOpenConnRefusesRemoteClearText: OpenConn and OpenConnReadOnly
// refuse a clear-text connection whose pool names another machine.
func TestOpenConnRefusesRemoteClearText(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	c := startAdvertisingCluster(t, 2)
	url := fmt.Sprintf("nats://app:s3cret@127.0.0.1:%d", c.clientPorts[0])
	nc, err := nats.Connect(url, nats.SetCustomDialer(&dialRecorder{}), nats.Timeout(hangTimeout(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	deadline := hangDeadline(t)
	for len(nonLoopback(nc.Servers())) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the pool %v holds no advertised address", nc.Servers())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for name, open := range map[string]func(context.Context, *nats.Conn, ...natsstore.Option) (*natsstore.Store, error){
		"OpenConn": natsstore.OpenConn, "OpenConnReadOnly": natsstore.OpenConnReadOnly,
	} {
		_, err = open(hangContext(t), nc, patient(t, natsstore.WithStream(uniqueStream("ADV")))...)
		if !errors.Is(err, natsstore.ErrInsecureURL) {
			t.Fatalf("%s of a clear-text connection with a remote server in its pool: %v", name, err)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("%s: the error shows the password: %v", name, err)
		}
	}
}
