package eventstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
)

// A lone appender commits on its own goroutine. If that commit panics and
// the caller recovers, the store fails (no half-committed state goes on)
// and still closes.
func TestPanicInInlineCommitFailsStore(t *testing.T) {
	var boom atomic.Bool
	clock := func() time.Time {
		if boom.Load() {
			panic("clock broke")
		}
		return time.Now()
	}
	s := dtOpen(t, filepath.Join(t.TempDir(), "s"), eventstore.WithClock(clock))
	dtAppend(t, s, "a", dtEvents("before", 1))

	boom.Store(true)
	func() {
		defer func() {
			if p := recover(); p != "clock broke" {
				t.Fatalf("recovered %v, want the clock's panic", p)
			}
		}()
		_, _ = s.Append(context.Background(), dtCoord("a"), dtEvents("during", 1))
	}()
	boom.Store(false)

	if _, err := s.Append(context.Background(), dtCoord("a"), dtEvents("after", 1)); !errors.Is(err, batpak.ErrStoreFailed) {
		t.Fatalf("append after the panic = %v, want ErrStoreFailed", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case <-closed:
	case <-time.After(dtHangTimeout(t)):
		t.Fatal("Close hangs after a panic in an inline commit")
	}
}
