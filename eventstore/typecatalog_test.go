package eventstore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
)

// TestCatalogCrash crashes the machine at every file call of an append
// that brings a new type name (the catalog write, then the event's) and
// cuts the power: after a reopen the catalog is whole, the old one or the
// new one, and an acknowledged event has its name.
func TestCatalogCrash(t *testing.T) {
	ctx := context.Background()
	k1, k2 := kind.Custom(1, 1), kind.Custom(1, 2)
	setup := func(t *testing.T, s *eventstore.Store) {
		if _, err := s.Append(ctx, dtCoord("a"), []batpak.Event{{Kind: k1, Type: "test.Old"}}); err != nil {
			t.Fatal(err)
		}
	}
	named := func(s *eventstore.Store) error {
		_, err := s.Append(ctx, dtCoord("a"), []batpak.Event{{Kind: k2, Type: "test.New"}})
		return err
	}
	crashAtEveryCall(t, "", setup, named, func(t *testing.T, c crashCase) {
		if err := c.FS.PowerLoss(); err != nil {
			t.Fatal(err)
		}
		_ = c.S.Close()
		s2, oerr := eventstore.Open(c.Dir)
		if oerr != nil {
			t.Fatalf("reopen: %v", oerr)
		}
		defer s2.Close()
		types, terr := s2.EventTypes(ctx)
		if terr != nil || types[k1] != "test.Old" {
			t.Fatalf("catalog after the crash: %v, %v", types, terr)
		}
		if c.Err == nil && types[k2] != "test.New" {
			t.Fatalf("the append was acknowledged, the catalog lacks its name: %v", types)
		}
		for rec, rerr := range s2.ReadAll(ctx, 0) {
			if rerr != nil || rec.Type == "" {
				t.Fatalf("event %d: type %q, %v", rec.Sequence, rec.Type, rerr)
			}
		}
	})
}

// TestCatalogDamage: a damaged catalog keeps the store from opening, with
// an error that matches ErrCorrupt and names the file; ReadEventTypes says
// the same.
func TestCatalogDamage(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "s")
	s := dtOpen(t, dir)
	if _, err := s.Append(ctx, dtCoord("a"), []batpak.Event{{Kind: kind.Custom(1, 1), Type: "test.Opened"}}); err != nil {
		t.Fatal(err)
	}
	dtClose(t, s)
	path := filepath.Join(dir, eventstore.CatalogFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-6] ^= 0x20
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, open := range map[string]func() error{
		"Open":           func() error { s, err := eventstore.Open(dir); closeIf(s); return err },
		"OpenReadOnly":   func() error { s, err := eventstore.OpenReadOnly(dir); closeIf(s); return err },
		"ReadEventTypes": func() error { _, err := eventstore.ReadEventTypes(dir); return err },
	} {
		err := open()
		if !errors.Is(err, batpak.ErrCorrupt) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s of a store with a damaged catalog: %v", name, err)
		}
	}
}

func closeIf(s *eventstore.Store) {
	if s != nil {
		_ = s.Close()
	}
}
