package projection_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/projection"
)

// mailer sends one mail per event, and cannot send the second one until
// it is fixed.
type mailer struct {
	broken bool
	done   chan struct{} // closed after the mail for #3, if set
}

func (m *mailer) Name() string          { return "mailer" }
func (m *mailer) Region() batpak.Region { return batpak.Region{} }
func (m *mailer) Apply(ctx context.Context, rec batpak.Record) error {
	if m.broken && rec.Sequence == 2 {
		return errors.New("mail server refused the message")
	}
	fmt.Printf("mail for #%d (retry of a parked event: %v)\n", rec.Sequence, projection.ParkedRetry(ctx))
	if rec.Sequence == 3 && m.done != nil {
		close(m.done)
	}
	return nil
}

// A projection whose events do not depend on each other goes on past an
// event it cannot apply (Continue); the event is parked in the checkpoint
// directory, and applied later when asked.
func ExampleWithPolicyFor() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "batpak-projection-")
	defer os.RemoveAll(dir)
	store, _ := eventstore.Open(filepath.Join(dir, "events"))
	defer store.Close()
	for i := 1; i <= 3; i++ {
		_, _ = store.Append(ctx, batpak.Coordinate{Entity: "order:1", Scope: "shop"},
			[]batpak.Event{{Kind: kindAdded, Payload: Added{N: i}}})
	}
	cps, _ := projection.NewFileCheckpoints(filepath.Join(dir, "checkpoints"))
	runner := projection.NewRunner(store, cps, projection.WithPolicyFor("mailer", projection.Policy{
		Attempts: 3, MinBackoff: time.Millisecond, Then: projection.Continue,
	}))
	m := &mailer{broken: true}
	_, _ = runner.CatchUp(ctx, m)

	parked, _ := runner.Parked(ctx, "mailer")
	for _, d := range parked {
		fmt.Printf("parked #%d after %d attempts: %s\n", d.Sequence, d.Attempts, d.Error)
	}
	for _, st := range runner.Status(ctx) {
		fmt.Printf("%s: position %d, lag %d, applied %d, retried %d, parked %d\n",
			st.Projection, st.Position, st.LagEvents, st.Applied, st.Retried, st.Parked)
	}

	m.broken = false
	_ = runner.Retry(ctx, "mailer", 2)
	_, _ = runner.CatchUp(ctx, m) // a run starts with what was asked
	parked, _ = runner.Parked(ctx, "mailer")
	fmt.Println("still parked:", len(parked))
	// Output:
	// mail for #1 (retry of a parked event: false)
	// mail for #3 (retry of a parked event: false)
	// parked #2 after 3 attempts: mail server refused the message
	// mailer: position 4, lag 0, applied 2, retried 2, parked 1
	// mail for #2 (retry of a parked event: true)
	// still parked: 0
}

// By default a projection stops at an event it cannot apply; under RunAll
// the others go on, and it starts again from the event once the event is
// retried or skipped.
func ExampleRunner_RunAll() {
	ctx, cancel := context.WithCancel(context.Background())
	dir, _ := os.MkdirTemp("", "batpak-projection-")
	defer os.RemoveAll(dir)
	store, _ := eventstore.Open(dir)
	defer store.Close()
	for i := 1; i <= 3; i++ {
		_, _ = store.Append(ctx, batpak.Coordinate{Entity: "counter:1", Scope: "demo"},
			[]batpak.Event{{Kind: kindAdded, Payload: Added{N: i}}})
	}
	stopped := make(chan struct{})
	runner := projection.NewRunner(store, projection.NewMemoryCheckpoints(),
		projection.WithPolicy(projection.Policy{Attempts: 2, MinBackoff: time.Millisecond}),
		projection.WithOnFailure(func(name string, err error) {
			fmt.Println(err)
			close(stopped)
		}))
	sum, m := &summer{}, &mailer{broken: true, done: make(chan struct{})}
	wait := runner.Start(ctx, sum, m)
	<-stopped
	_ = runner.Await(ctx, store.LastSequence()) // the sum; the stopped mailer is not waited for
	fmt.Println("sum:", sum.total)
	_ = runner.Skip(ctx, "mailer", 2)
	<-m.done // the mailer started again past #2
	cancel()
	fmt.Println(wait())
	// Output:
	// mail for #1 (retry of a parked event: false)
	// projection mailer: apply #2 failed 2 time(s), parked, projection stopped: mail server refused the message
	// sum: 6
	// mail for #3 (retry of a parked event: false)
	// context canceled
}
