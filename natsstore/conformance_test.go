package natsstore_test

import (
	"errors"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore/storetest"
	"github.com/batpak-go/batpak/natsstore"
)

var (
	_ batpak.Store            = (*natsstore.Store)(nil)
	_ storetest.Causal        = (*natsstore.Store)(nil)
	_ storetest.ChainVerifier = (*natsstore.Store)(nil)
)

// conformanceHarness opens stores in fresh streams of ns; Reopen closes a
// store and opens its stream again with a new connection, so every read
// after it comes from an index rebuilt from the stream. With inProcess
// the connection is an in-process pipe (nats.InProcessServer) instead of
// TCP on loopback: the suite's readers spin on cached data while appends
// wait for the server, and on two cores a spinning process polls its
// sockets only every few milliseconds, which is the test's doing, not the
// store's.
func conformanceHarness(ns *server.Server, inProcess bool, maxPayload int, opts ...natsstore.Option) storetest.Harness {
	open := func(t *testing.T, stream string) batpak.Store {
		t.Helper()
		// The suite's waits are hang guards at the test binary's deadline;
		// the store's own time limits are too (see patient).
		ctx := hangContext(t)
		all := patient(t, append([]natsstore.Option{natsstore.WithStream(stream), natsstore.WithMaxPayload(maxPayload)}, opts...)...)
		if !inProcess {
			s, err := natsstore.Open(ctx, ns.ClientURL(), all...)
			if err != nil {
				t.Fatalf("open %s: %v", stream, err)
			}
			return s
		}
		nc, err := nats.Connect("", nats.InProcessServer(ns), nats.MaxReconnects(-1), nats.Timeout(hangTimeout(t)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close) // after the suite's Close of the store
		s, err := natsstore.OpenConn(ctx, nc, all...)
		if err != nil {
			t.Fatalf("open %s: %v", stream, err)
		}
		return s
	}
	return storetest.Harness{
		Open: func(t *testing.T) batpak.Store { return open(t, uniqueStream("CONF")) },
		Reopen: func(t *testing.T, s batpak.Store) batpak.Store {
			t.Helper()
			ns := s.(*natsstore.Store)
			if err := ns.Close(); err != nil && !errors.Is(err, batpak.ErrClosed) {
				t.Fatalf("close before reopening: %v", err)
			}
			return open(t, ns.StreamName())
		},
		MaxPayload: maxPayload,
	}
}

func TestConformance(t *testing.T) {
	ns := startServer(t)
	t.Run("Default", func(t *testing.T) {
		storetest.Run(t, conformanceHarness(ns, true, 4096))
	})
	t.Run("NoCache", func(t *testing.T) {
		// Every read of a payload goes to the server (GetMsg for single
		// events, an ordered consumer for Replay), over TCP on loopback.
		if testing.Short() {
			t.Skip("short")
		}
		storetest.Run(t, conformanceHarness(ns, false, 1024, natsstore.WithCacheBytes(0)))
	})
}
