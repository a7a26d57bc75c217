package bank_test

import (
	"testing"

	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/examples/bank/internal/bank/banktest"
	"github.com/batpak-go/batpak/memstore"
)

func TestScenario(t *testing.T) {
	store, err := eventstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	banktest.CheckScenario(t, t.Context(), store)
}

// TestScenarioMemstore runs the same scenario on the in-memory store.
// (examples/bank/nats runs it on JetStream.)
func TestScenarioMemstore(t *testing.T) {
	store := memstore.New()
	defer store.Close()
	banktest.CheckScenario(t, t.Context(), store)
}
