package memstore_test

import (
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore/storetest"
	"github.com/batpak-go/batpak/memstore"
)

var (
	_ batpak.Store            = (*memstore.Store)(nil)
	_ storetest.Causal        = (*memstore.Store)(nil)
	_ storetest.ChainVerifier = (*memstore.Store)(nil)
	_ storetest.Syncer        = (*memstore.Store)(nil)
)

// TestConformance runs the conformance suite on the memory store as it
// is. Nothing survives a reopen, so the subtests that reopen are skipped.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open:       func(t *testing.T) batpak.Store { return memstore.New(memstore.WithMaxPayload(1024)) },
		MaxPayload: 1024,
	})
}
