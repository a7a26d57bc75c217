// Package storetest is the conformance suite for batpak event store
// backends: it runs against any [batpak.Store], unwrapped.
//
// It checks what every backend promises through the batpak contract and
// nothing about how it keeps its data: global order and dense sequences,
// stream versions and expected-version checks, streams identified by their
// whole coordinate (scope isolation), atomic and idempotent appends,
// correlation and causation, payload and metadata round trips, reads that
// honour their context, guaranteed cursors, lossy subscriptions, the
// behaviour after Close, the catalog of event type names, schema versions
// and codecs kept per event (three releases' registries), and erasure of
// data subjects (Forget) on every read path and after a reopen. The embedded segment store (eventstore), NATS
// JetStream (natsstore) and the in-memory reference (memstore) all run it.
//
// Capabilities that not every backend need have ([Causal],
// [ChainVerifier], [Syncer]) are optional interfaces: the suite uses them
// when the store implements them and skips those checks otherwise.
package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
)

// Store is the contract the suite checks.
type Store = batpak.Store

// bgctx is the context of the suite's reads that are not about contexts.
var bgctx = context.Background()

// Causal is implemented by stores that index correlation and causation.
type Causal interface {
	Correlated(id uuid.UUID) []uint64
	CausedBy(id uuid.UUID) []uint64
}

// ChainVerifier is implemented by stores that can check a stream's hash chain.
type ChainVerifier interface {
	VerifyChain(ctx context.Context, coord batpak.Coordinate) error
}

// Syncer is implemented by stores with an explicit durability barrier.
type Syncer interface {
	Sync(ctx context.Context) error
}

// Harness describes a backend to [Run].
//
// The suite waits for conditions, never for a fixed time: its only limit
// is a guard against hangs shortly before the test binary's deadline (go
// test -timeout). Timeouts of the backend's own (per operation, per
// connection) should be derived from t.Deadline() as well, so that a
// loaded machine makes the suite slower but never fails it.
type Harness struct {
	// Open returns a new, empty store. Required. The suite closes every
	// store it gets from Open or Reopen when the subtest ends.
	Open func(t *testing.T) Store
	// Reopen closes s (it may already be closed) and opens the same store
	// again. Optional: without it the subtests that need it are skipped.
	Reopen func(t *testing.T, s Store) Store
	// ReopenBeforeReads makes the write-then-read subtests reopen the store
	// between their writes and their reads (needs Reopen).
	ReopenBeforeReads bool
	// MaxPayload is the largest encoded payload, in bytes, the store
	// accepts as it was opened; 0 skips the size limit checks.
	MaxPayload int
}

// Run runs the conformance suite against the backend h describes.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Open == nil {
		t.Fatal("storetest: Harness.Open is required")
	}
	if h.ReopenBeforeReads && h.Reopen == nil {
		t.Fatal("storetest: Harness.ReopenBeforeReads needs Harness.Reopen")
	}
	tests := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"Ordering", testOrdering},
		{"ReadStreamOptions", testReadStreamOptions},
		{"HashChain", testHashChain},
		{"ExpectedVersion", testExpectedVersion},
		{"BatchExpectedVersion", testBatchExpectedVersion},
		{"Validation", testValidation},
		{"BadArguments", testBadArguments},
		{"PayloadLimit", testPayloadLimit},
		{"CanceledContext", testCanceledContext},
		{"ReadsHonourContext", testReadsHonourContext},
		{"ScopeIsolation", testScopeIsolation},
		{"ScopedView", testScopedView},
		{"ConcurrentExpectedVersion", testConcurrentExpectedVersion},
		{"ConcurrentDistinctStreams", testConcurrentDistinctStreams},
		{"ReadsDuringAppends", testReadsDuringAppends},
		{"Idempotency", testIdempotency},
		{"ConcurrentIdempotency", testConcurrentIdempotency},
		{"Atomicity", testAtomicity},
		{"AtomicVisibility", testAtomicVisibility},
		{"Get", testGet},
		{"Correlation", testCorrelation},
		{"PayloadRoundTrip", testPayloadRoundTrip},
		{"Query", testQuery},
		{"CursorFollowsAppends", testCursorFollowsAppends},
		{"CursorContext", testCursorContext},
		{"CursorResume", testCursorResume},
		{"CursorEndOfRegion", testCursorEndOfRegion},
		{"SubscribeLossy", testSubscribeLossy},
		{"SubscribeDelivers", testSubscribeDelivers},
		{"SubscribeNewOnly", testSubscribeNewOnly},
		{"Close", testClose},
		{"CloseWakesWaiters", testCloseWakesWaiters},
		{"CloseDuringAppends", testCloseDuringAppends},
		{"CloseDuringReads", testCloseDuringReads},
		{"Reopen", testReopen},
		{"EventTypes", testEventTypes},
		{"SchemaEvolution", testSchemaEvolution},
		{"Forget", testForget},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &env{t: t, h: h}
			e.s = e.track(h.Open(t))
			tc.fn(t, e)
		})
	}
}

// env is one subtest's store.
type env struct {
	t *testing.T
	h Harness
	s Store
}

// track closes s when the subtest ends.
func (e *env) track(s Store) Store {
	e.t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, batpak.ErrClosed) {
			e.t.Errorf("close: %v", err)
		}
	})
	return s
}

// reopen closes and reopens the store; it skips the test without Reopen.
func (e *env) reopen() Store {
	e.t.Helper()
	if e.h.Reopen == nil {
		e.t.Skip("the harness cannot reopen a store")
	}
	e.s = e.track(e.h.Reopen(e.t, e.s))
	return e.s
}

// settle is called between a subtest's writes and its reads: it reopens
// the store when the harness asks for it.
func (e *env) settle() Store {
	e.t.Helper()
	if e.h.ReopenBeforeReads {
		return e.reopen()
	}
	return e.s
}

// hangDeadline bounds every wait of the suite, so a hang fails naming the
// wait it is stuck in instead of ending in a dump of every goroutine. It
// is a guard, not a performance budget: it falls shortly before the test
// binary's deadline (go test -timeout), so a slow or loaded machine makes
// the suite slower but never fails it.
func hangDeadline(t *testing.T) time.Time {
	d, ok := t.Deadline()
	if !ok { // go test -timeout 0
		return time.Now().Add(time.Hour)
	}
	return d.Add(-min(time.Until(d)/10, time.Minute))
}

// hangTimer fires at the suite's hang deadline.
func hangTimer(t *testing.T) <-chan time.Time {
	return time.After(time.Until(hangDeadline(t)))
}

// testContext ends at the suite's hang deadline or with the subtest.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithDeadline(t.Context(), hangDeadline(t))
	t.Cleanup(cancel)
	return ctx
}
