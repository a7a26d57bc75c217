package natsstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

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

// openStore opens a store on ns and closes it when the test ends.
func openStore(t testing.TB, ns *server.Server, opts ...natsstore.Option) *natsstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := natsstore.Open(ctx, ns.ClientURL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
