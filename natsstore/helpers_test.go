package natsstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/batpak-go/batpak/natsstore"
	"github.com/batpak-go/batpak/natsstore/embedded"
)

// startServer starts an in-process JetStream server on loopback for the
// test.
func startServer(t testing.TB) *server.Server {
	t.Helper()
	ns, err := embedded.Start(embedded.Options{Dir: t.TempDir(), Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

var streamCounter atomic.Int64

// uniqueStream returns a stream name no other store of the test binary uses.
func uniqueStream(prefix string) string {
	return fmt.Sprintf("%s_%d", prefix, streamCounter.Add(1))
}

// hangDeadline is when a test stops waiting for a condition and calls it
// a hang: shortly before the test binary's deadline (go test -timeout). It
// is a guard, not a performance budget: a loaded machine makes the tests
// slower but never fails them.
func hangDeadline(t testing.TB) time.Time {
	if dt, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if d, ok := dt.Deadline(); ok {
			return d.Add(-min(time.Until(d)/10, time.Minute))
		}
	}
	return time.Now().Add(time.Hour) // a benchmark, or go test -timeout 0
}

// hangTimeout is the time left until hangDeadline.
func hangTimeout(t testing.TB) time.Duration { return time.Until(hangDeadline(t)) }

// hangContext ends at hangDeadline.
func hangContext(t testing.TB) context.Context {
	ctx, cancel := context.WithDeadline(context.Background(), hangDeadline(t))
	t.Cleanup(cancel)
	return ctx
}

// patient returns opts after options that turn the store's own time
// limits (an append, a read, Open's catch-up, the connection's handshake)
// into hang guards too: the tests check outcomes, and a server slowed
// down by a loaded machine must not change them. Options in opts override
// these.
func patient(t testing.TB, opts ...natsstore.Option) []natsstore.Option {
	d := hangTimeout(t)
	return append([]natsstore.Option{natsstore.WithTimeout(d), natsstore.WithNATSOptions(nats.Timeout(d))}, opts...)
}

// openStore opens a store on ns and closes it when the test ends.
func openStore(t testing.TB, ns *server.Server, opts ...natsstore.Option) *natsstore.Store {
	t.Helper()
	s, err := natsstore.Open(hangContext(t), ns.ClientURL(), patient(t, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
