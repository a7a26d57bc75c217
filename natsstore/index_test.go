package natsstore

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/batpak-go/batpak"
)

// apiRequests returns how many JetStream API requests (STREAM.INFO and
// the like; publishes and direct gets are not) ns has served.
func apiRequests(t *testing.T, ns *server.Server) uint64 {
	t.Helper()
	info, err := ns.Jsz(&server.JSzOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return info.API.Total
}

// TestKeyedAppendsSkipCatchUp: a client whose index is fresh (its own
// appends keep it so) sends keyed appends without asking for the stream's
// state first; once it is not (half the duplicate window without an
// append), a keyed append catches up first. A key another client
// committed returns its original receipts. (TestKeysOutliveDuplicateWindow
// covers keys older than the window.)
func TestKeyedAppendsSkipCatchUp(t *testing.T) {
	ns := ckServer(t)
	stream := fmt.Sprintf("KEYS_%d", ckStreams.Add(1))
	a := ckOpen(t, ns, stream, WithDuplicateWindow(time.Second))
	defer a.Close()
	ctx := context.Background()
	c := batpak.Coordinate{Entity: "k", Scope: "test"}
	ev := []batpak.Event{{Kind: ckKindA, Payload: 1}}
	if _, err := a.Append(ctx, c, ev); err != nil {
		t.Fatal(err)
	}
	before := apiRequests(t, ns)
	for i := range 20 {
		if _, err := a.Append(ctx, c, ev, batpak.WithIdempotencyKey(fmt.Sprintf("fresh-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if n := apiRequests(t, ns) - before; n > 0 {
		t.Fatalf("20 keyed appends from a fresh index made %d API requests, want none", n)
	}

	// Another client commits a key; this client returns its receipts.
	b := ckOpen(t, ns, stream, WithIndexCheckpoints(0))
	defer b.Close()
	orig, err := b.Append(ctx, c, ev, batpak.WithIdempotencyKey("theirs"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Append(ctx, c, ev, batpak.WithIdempotencyKey("theirs"))
	if err != nil || !slices.Equal(got, orig) {
		t.Fatalf("key of another client: %v %v, want %v", got, err, orig)
	}

	// Half a window without an append of its own: the index is no longer
	// known to be fresh, and the next keyed append asks the stream.
	for deadline := ckTestDeadline(t); a.ix.freshWithin(a.keyHorizon()); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the index stays fresh")
		}
	}
	before = apiRequests(t, ns)
	if _, err := a.Append(ctx, c, ev, batpak.WithIdempotencyKey("stale")); err != nil {
		t.Fatal(err)
	}
	if n := apiRequests(t, ns) - before; n == 0 {
		t.Fatal("a keyed append from a stale index did not catch up")
	}
	if err := a.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if v := a.StreamVersion(c); v != 23 {
		t.Fatalf("version %d, want 23: a replayed key was written again", v)
	}
}
