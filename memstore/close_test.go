package memstore_test

import (
	"errors"
	"iter"
	"testing"

	"github.com/batpak-go/batpak"
)

// TestClose: Close wakes a waiting cursor and closes subscriptions; after
// it every call fails with ErrClosed, and a read under way stops with it.
func TestClose(t *testing.T) {
	s := newStore(t)
	c := co("t", "close")
	rs := mustAppend(t, s, c, evs(kindA, 3), batpak.WithIdempotencyKey("k"))
	waiting := s.Cursor(batpak.Region{}, 4)
	done := next(t.Context(), waiting)
	sub, err := s.Subscribe(batpak.Region{}, 1)
	if err != nil {
		t.Fatal(err)
	}

	// Close in the middle of a read.
	var n int
	var errs []error
	for _, err := range s.ReadAll(bg, 0) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if n++; n == 2 {
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		}
	}
	if n != 2 || len(errs) != 1 || !errors.Is(errs[0], batpak.ErrClosed) {
		t.Fatalf("a read interrupted by Close yielded %d events and errors %v", n, errs)
	}
	if err := <-done; !errors.Is(err, batpak.ErrClosed) {
		t.Fatalf("a cursor waiting when the store closed: %v, want ErrClosed", err)
	}
	if _, ok := <-sub.Events(); ok {
		t.Fatal("a subscription delivered after Close")
	}

	calls := map[string]func() error{
		"Close": s.Close,
		"Append": func() error {
			_, err := s.Append(bg, c, evs(kindA, 1))
			return err
		},
		"AppendBatch": func() error {
			_, err := s.AppendBatch(bg, []batpak.BatchItem{{Coordinate: c, Event: evs(kindA, 1)[0]}})
			return err
		},
		"keyed Append of a committed key": func() error {
			_, err := s.Append(bg, c, evs(kindA, 1), batpak.WithIdempotencyKey("k"))
			return err
		},
		"Get": func() error {
			_, err := s.Get(bg, rs[0].EventID)
			return err
		},
		"GetSequence": func() error {
			_, err := s.GetSequence(bg, 1)
			return err
		},
		"Subscribe": func() error {
			_, err := s.Subscribe(batpak.Region{}, 1)
			return err
		},
		"Cursor.Next": func() error {
			_, err := s.Cursor(batpak.Region{}, 0).Next(bg)
			return err
		},
		"Cursor.TryNext": func() error {
			_, _, err := s.Cursor(batpak.Region{}, 0).TryNext(bg)
			return err
		},
		"ReadStream":  func() error { return onlyErr(s.ReadStream(bg, c, 0)) },
		"ReadAll":     func() error { return onlyErr(s.ReadAll(bg, 0)) },
		"Query":       func() error { return onlyErr(s.Query(bg, batpak.Region{})) },
		"Replay":      func() error { return onlyErr(s.Replay(bg, batpak.Region{}, 0)) },
		"VerifyChain": func() error { return s.VerifyChain(bg, c) },
		"Sync":        func() error { return s.Sync(bg) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, batpak.ErrClosed) {
			t.Errorf("%s on a closed store: %v, want ErrClosed", name, err)
		}
	}
}

// onlyErr returns the one error seq yields, or an error saying it yielded
// something else.
func onlyErr(seq iter.Seq2[batpak.Record, error]) error {
	var errs []error
	for _, err := range seq {
		if err == nil {
			return errors.New("yielded a record")
		}
		errs = append(errs, err)
	}
	if len(errs) != 1 {
		return errors.Join(append(errs, errors.New("not exactly one error"))...)
	}
	return errs[0]
}
