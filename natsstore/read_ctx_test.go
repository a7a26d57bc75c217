package natsstore

import (
	"context"
	"errors"
	"iter"
	"testing"

	"github.com/batpak-go/batpak"
)

// TestReadsEndWithTheirContext: a read whose context ends while it goes
// on, with every body read from the server, yields the context's error
// next and nothing after it.
func TestReadsEndWithTheirContext(t *testing.T) {
	ns := ckServer(t)
	s := ckOpen(t, ns, "READCTX", WithCacheBytes(0))
	defer s.Close()
	c := batpak.Coordinate{Entity: "acct:1", Scope: "eu"}
	for i := range 40 {
		if _, err := s.Append(context.Background(), c, []batpak.Event{{Kind: ckKindA, Payload: i}}); err != nil {
			t.Fatal(err)
		}
	}
	for name, read := range map[string]func(context.Context) iter.Seq2[batpak.Record, error]{
		"ReadAll":    func(ctx context.Context) iter.Seq2[batpak.Record, error] { return s.ReadAll(ctx, 0) },
		"ReadStream": func(ctx context.Context) iter.Seq2[batpak.Record, error] { return s.ReadStream(ctx, c, 0) },
		"Query": func(ctx context.Context) iter.Seq2[batpak.Record, error] {
			return s.Query(ctx, batpak.Region{Entity: c.Entity})
		},
		"Replay": func(ctx context.Context) iter.Seq2[batpak.Record, error] { return s.Replay(ctx, batpak.Region{}, 0) },
	} {
		ctx, cancel := context.WithCancel(context.Background())
		var recs int
		var errs []error
		for rec, err := range read(ctx) {
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if recs++; rec.Sequence == 1 {
				cancel()
			}
		}
		cancel()
		if recs != 1 || len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
			t.Errorf("%s canceled after its first event: %d events, errors %v; want 1 event and context.Canceled", name, recs, errs)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.VerifyChain(ctx, c); !errors.Is(err, context.Canceled) {
		t.Errorf("VerifyChain with a canceled context: %v", err)
	}
	if _, err := s.Cursor(batpak.Region{}, 0).Next(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Cursor.Next with a canceled context: %v", err)
	}
}
