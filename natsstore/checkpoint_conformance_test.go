package natsstore_test

import (
	"testing"

	"github.com/batpak-go/batpak/eventstore/storetest"
	"github.com/batpak-go/batpak/natsstore"
)

// TestConformanceIndexCheckpoint runs the conformance suite with the
// index checkpoint written after every event and at every Close, so that
// each Reopen restores the index from the checkpoint (and reads what it
// does not cover) instead of reading the whole stream.
func TestConformanceIndexCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	ns := startServer(t)
	storetest.Run(t, conformanceHarness(ns, true, 4096, natsstore.WithIndexCheckpoints(1), natsstore.WithCacheBytes(0)))
}
