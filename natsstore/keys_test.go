package natsstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/natsstore"
)

// TestForgetAcrossClients: a subject forgotten by one client reads erased
// at another that had its key cached, once its watch delivers the
// tombstone (CatchUp makes it certain), and neither can append for it;
// a type name one client records shows at the other too.
func TestForgetAcrossClients(t *testing.T) {
	ns := startServer(t)
	stream := uniqueStream("FORGET")
	a := openStore(t, ns, natsstore.WithStream(stream))
	b := openStore(t, ns, natsstore.WithStream(stream))
	ctx := hangContext(t)
	k := kind.Custom(1, 9)
	ann := batpak.Subject{Scope: "test", ID: "ann"}
	if _, err := a.Append(ctx, coord("ann"), []batpak.Event{{Kind: k, Type: "test.Registered", Payload: "Ann", Subject: ann.ID}}); err != nil {
		t.Fatal(err)
	}
	if err := b.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	read := func(s *natsstore.Store) batpak.Record {
		t.Helper()
		for rec, err := range s.ReadStream(ctx, coord("ann"), 0) {
			if err != nil {
				t.Fatal(err)
			}
			return rec
		}
		t.Fatal("no event")
		return batpak.Record{}
	}
	if rec := read(b); rec.Erased || string(rec.Payload) != "\xa3Ann" || rec.Type != "test.Registered" {
		t.Fatalf("client b reads %+v", rec)
	}
	if err := a.Forget(ctx, ann); err != nil {
		t.Fatal(err)
	}
	if rec := read(a); !rec.Erased {
		t.Fatalf("client a after its Forget: %+v", rec)
	}
	// The watch delivers the tombstone to b shortly; CatchUp makes sure.
	deadline := time.Now().Add(hangTimeout(t))
	for !read(b).Erased && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := b.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if rec := read(b); !rec.Erased || rec.Payload != nil {
		t.Fatalf("client b after a's Forget: %+v", rec)
	}
	for _, s := range []*natsstore.Store{a, b} {
		if _, err := s.Append(ctx, coord("ann"), []batpak.Event{{Kind: k, Subject: ann.ID}}); !errors.Is(err, batpak.ErrForgotten) {
			t.Fatalf("append for ann: %v", err)
		}
		if err := s.VerifyChain(ctx, coord("ann")); err != nil {
			t.Fatal(err)
		}
	}
}
