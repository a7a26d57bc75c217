package eventstore_test

import (
	"errors"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/eventstore/storetest"
)

var (
	_ batpak.Store            = (*eventstore.Store)(nil)
	_ storetest.Causal        = (*eventstore.Store)(nil)
	_ storetest.ChainVerifier = (*eventstore.Store)(nil)
	_ storetest.Syncer        = (*eventstore.Store)(nil)
)

// conformanceHarness opens embedded stores with opts in fresh temporary
// directories; Reopen closes a store and opens its directory again.
func conformanceHarness(maxPayload int, opts ...eventstore.Option) storetest.Harness {
	opts = append(opts, eventstore.WithMaxPayload(maxPayload))
	open := func(t *testing.T, dir string) batpak.Store {
		t.Helper()
		s, err := eventstore.Open(dir, opts...)
		if err != nil {
			t.Fatalf("open %s: %v", dir, err)
		}
		return s
	}
	return storetest.Harness{
		Open: func(t *testing.T) batpak.Store { return open(t, t.TempDir()) },
		Reopen: func(t *testing.T, s batpak.Store) batpak.Store {
			t.Helper()
			es := s.(*eventstore.Store)
			if err := es.Close(); err != nil && !errors.Is(err, batpak.ErrClosed) {
				t.Fatalf("close before reopening: %v", err)
			}
			return open(t, es.Dir())
		},
		MaxPayload: maxPayload,
	}
}

func TestConformance(t *testing.T) {
	t.Run("Default", func(t *testing.T) {
		// SyncEveryCommit, 64 MiB segments: every acknowledged append is durable.
		t.Parallel()
		storetest.Run(t, conformanceHarness(4<<20))
	})
	t.Run("SyncNone", func(t *testing.T) {
		t.Parallel()
		storetest.Run(t, conformanceHarness(1024, eventstore.WithSyncMode(eventstore.SyncNone)))
	})
	t.Run("TinySegments", func(t *testing.T) {
		// Segments rotate every few events, in the middle of the suite's
		// appends; batches must never span two of them.
		t.Parallel()
		h := conformanceHarness(1024, eventstore.WithSegmentMaxBytes(4096), eventstore.WithPreallocation(false))
		open := h.Open
		h.Open = func(t *testing.T) batpak.Store {
			s := open(t)
			t.Cleanup(func() { // runs after the suite closed s
				st := s.(*eventstore.Store).Stats()
				if st.Events >= 100 && st.Segments < 3 {
					t.Errorf("%d events in %d segments of 4 KiB: the segments did not rotate", st.Events, st.Segments)
				}
			})
			return s
		}
		storetest.Run(t, h)
	})
	t.Run("ReopenBeforeReads", func(t *testing.T) {
		// Reads come from a store recovered from the files: checkpoints
		// (also written in the background), footers of sealed segments and
		// the scan of the active one.
		t.Parallel()
		h := conformanceHarness(1024, eventstore.WithSegmentMaxBytes(4096), eventstore.WithCheckpointEvery(16), eventstore.WithSyncMode(eventstore.SyncNone))
		h.ReopenBeforeReads = true
		storetest.Run(t, h)
	})
}
