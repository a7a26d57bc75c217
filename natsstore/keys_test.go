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

// TestCopyValidKeepsNamesAndKeys: a copy of a store holds its catalog of
// type names and its subjects' keys, so sealed events open in the copy, a
// subject forgotten in the source stays forgotten, and the chains verify.
func TestCopyValidKeepsNamesAndKeys(t *testing.T) {
	ns := startServer(t)
	from, to := uniqueStream("CPKSRC"), uniqueStream("CPKDST")
	s := openStore(t, ns, natsstore.WithStream(from))
	ctx := hangContext(t)
	k := kind.Custom(1, 9)
	for _, who := range []string{"ann", "bob"} {
		if _, err := s.Append(ctx, coord(who), []batpak.Event{{Kind: k, Type: "test.Registered", Payload: who, Subject: who}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Forget(ctx, batpak.Subject{Scope: "test", ID: "bob"}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	nc, _ := jsClient(t, ns.ClientURL())
	if _, err := natsstore.CopyValid(ctx, nc, from, to, natsstore.WithTimeout(hangTimeout(t))); err != nil {
		t.Fatal(err)
	}
	d := openStore(t, ns, natsstore.WithStream(to))
	recs := readAll(t, d)
	if len(recs) != 2 || recs[0].Erased || string(recs[0].Payload) != "\xa3ann" || recs[0].Type != "test.Registered" || !recs[1].Erased {
		t.Fatalf("the copy reads %+v", recs)
	}
	if _, err := d.Append(ctx, coord("bob"), []batpak.Event{{Kind: k, Subject: "bob"}}); !errors.Is(err, batpak.ErrForgotten) {
		t.Fatalf("append for bob in the copy: %v", err)
	}
	for _, who := range []string{"ann", "bob"} {
		if err := d.VerifyChain(ctx, coord(who)); err != nil {
			t.Fatal(err)
		}
	}
}
