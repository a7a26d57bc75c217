package natsstore

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/natsstore/embedded"
)

// TestAppendLearnsSubjectSequence: an index that has the skipped message
// on a stream's subject but not the subject's last sequence (as one
// restored from a record that lacks it would) learns it from the server's
// "wrong last sequence" refusal, and the append goes through.
func TestAppendLearnsSubjectSequence(t *testing.T) {
	ns, err := embedded.Start(embedded.Options{Dir: t.TempDir(), Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	wait := time.Hour
	if d, ok := t.Deadline(); ok {
		wait = time.Until(d) * 9 / 10
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	s, err := Open(ctx, ns.ClientURL(), WithStream("LEARN"), WithTimeout(wait), WithNATSOptions(nats.Timeout(wait)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := batpak.Coordinate{Entity: "x", Scope: "test"}
	ev := []batpak.Event{{Kind: kind.Custom(1, 1), Payload: 1}}
	if _, err := s.Append(ctx, c, ev); err != nil {
		t.Fatal(err)
	}
	if _, err := s.nc.Request("batpak.LEARN.test.x", []byte("not an event"), wait); err != nil {
		t.Fatal(err)
	}
	if err := s.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	s.ix.mu.Lock()
	if s.ix.subjLast[c] != 2 {
		s.ix.mu.Unlock()
		t.Fatalf("subject of %v: last sequence %d, want 2", c, s.ix.subjLast[c])
	}
	delete(s.ix.subjLast, c)
	s.ix.mu.Unlock()
	rs, err := s.Append(ctx, c, ev, batpak.ExpectVersion(batpak.Exactly(1)))
	if err != nil {
		t.Fatalf("append: %v (stats %+v)", err, s.Stats())
	}
	if rs[0].Sequence != 3 || rs[0].Version != 2 {
		t.Fatalf("receipt %+v, want version 2 at sequence 3", rs[0])
	}
	if st := s.Stats(); st.ServerConflicts != 1 {
		t.Fatalf("stats %+v: want the one refusal that taught the index", st)
	}
}
