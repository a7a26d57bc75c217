package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
)

// numbered yields n records with sequences 1..n, then err if it is not
// nil; ended is set when it returns, whatever the reason.
func numbered(n int, err error, ended *bool) iter.Seq2[batpak.Record, error] {
	return func(yield func(batpak.Record, error) bool) {
		defer func() { *ended = true }()
		for i := 1; i <= n; i++ {
			if !yield(batpak.Record{Sequence: uint64(i), Payload: []byte{byte(i)}}, nil) {
				return
			}
		}
		if err != nil {
			yield(batpak.Record{}, err)
		}
	}
}

// jittery decodes a record to its sequence, taking longer for some, so
// that workers finish their batches out of order.
func jittery(rec *batpak.Record) (uint64, error) {
	if rec.Sequence%700 == 0 {
		time.Sleep(time.Millisecond)
	}
	return rec.Sequence, nil
}

func TestDecodeParallelOrder(t *testing.T) {
	for _, workers := range []int{0, 1, 4} {
		for _, n := range []int{0, 1, 255, 256, 257, 5000} {
			t.Run(fmt.Sprintf("workers=%d/n=%d", workers, n), func(t *testing.T) {
				var ended bool
				next := uint64(1)
				for ev, err := range eventstore.DecodeParallel(numbered(n, nil, &ended), workers, jittery) {
					if err != nil {
						t.Fatal(err)
					}
					if ev.Sequence != next || ev.Value != next || ev.Payload[0] != byte(next) {
						t.Fatalf("event %d: sequence %d value %d", next, ev.Sequence, ev.Value)
					}
					next++
				}
				if next != uint64(n)+1 || !ended {
					t.Fatalf("%d events, source ended %v; want %d", next-1, ended, n)
				}
			})
		}
	}
}

func TestDecodeParallelErrors(t *testing.T) {
	errSource, errDecode := errors.New("source failed"), errors.New("decode failed")
	for _, tt := range []struct {
		name      string
		n         int
		srcErr    error
		failAt    uint64 // decode fails for this sequence (0: never)
		delivered int
		want      error
	}{
		{"source after a full batch", 512, errSource, 0, 512, errSource},
		{"source mid-batch", 300, errSource, 0, 300, errSource},
		{"source first", 0, errSource, 0, 0, errSource},
		{"decode", 5000, nil, 700, 699, errDecode},
		{"decode before a source error", 1000, errSource, 10, 9, errDecode},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var ended bool
			decode := func(rec *batpak.Record) (uint64, error) {
				if rec.Sequence == tt.failAt {
					return 0, errDecode
				}
				return jittery(rec)
			}
			got, errs := 0, 0
			for ev, err := range eventstore.DecodeParallel(numbered(tt.n, tt.srcErr, &ended), 3, decode) {
				if err != nil {
					if !errors.Is(err, tt.want) {
						t.Errorf("error %v, want %v", err, tt.want)
					}
					errs++
					continue // the sequence must end by itself
				}
				got++
				if ev.Value != uint64(got) {
					t.Fatalf("event %d has value %d", got, ev.Value)
				}
			}
			if got != tt.delivered || errs != 1 || !ended {
				t.Errorf("%d events and %d errors, source ended %v; want %d and 1", got, errs, ended, tt.delivered)
			}
		})
	}
}

// TestDecodeParallelBreak stops early, at once and mid-stream: the source
// and every worker are done when the loop ends.
func TestDecodeParallelBreak(t *testing.T) {
	for _, stopAfter := range []int{1, 300, 4999} {
		var ended bool
		got := 0
		for _, err := range eventstore.DecodeParallel(numbered(1_000_000, nil, &ended), 4, jittery) {
			if err != nil {
				t.Fatal(err)
			}
			if got++; got == stopAfter {
				break
			}
		}
		if !ended {
			t.Errorf("break after %d: the source is still running", stopAfter)
		}
	}
	// Count the decoder's own goroutines: other tests' background
	// goroutines may come and go meanwhile.
	deadline := time.Now().Add(dtHangTimeout(t))
	for n := decoderGoroutines(); n > 0; n = decoderGoroutines() {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of DecodeParallel still running after the loops ended", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// decoderGoroutines counts the goroutines running DecodeParallel's code.
func decoderGoroutines() int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "eventstore.DecodeParallel") {
			n++
		}
	}
	return n
}

func TestDecodeParallelPanic(t *testing.T) {
	var ended bool
	defer func() {
		if p := recover(); p != "bad payload" || !ended {
			t.Errorf("recovered %v, source ended %v", p, ended)
		}
	}()
	for range eventstore.DecodeParallel(numbered(1000, nil, &ended), 2, func(rec *batpak.Record) (int, error) {
		if rec.Sequence == 600 {
			panic("bad payload")
		}
		return 0, nil
	}) {
	}
	t.Error("no panic")
}

// TestDecodeParallelReplay decodes a store's replay with a registry: every
// payload is decoded, in commit order.
func TestDecodeParallelReplay(t *testing.T) {
	s, err := eventstore.Open(t.TempDir(), eventstore.WithSyncMode(eventstore.SyncNone))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	reg := batpak.NewRegistry()
	batpak.MustRegister[AmountPayload](reg, MoneyDeposited, "bank.Amount")
	for i := range 2000 {
		c := batpak.Coordinate{Entity: fmt.Sprintf("account:%d", i%7), Scope: "bank"}
		if _, err := s.Append(context.Background(), c, []batpak.Event{{Kind: MoneyDeposited, Payload: AmountPayload{Cents: int64(i)}}}); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for ev, err := range eventstore.DecodeParallel(s.Replay(context.Background(), batpak.Region{}, 0), 0, reg.Decode) {
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := ev.Value.(AmountPayload); !ok || p.Cents != int64(n) || ev.Sequence != uint64(n+1) {
			t.Fatalf("event %d: #%d %#v", n, ev.Sequence, ev.Value)
		}
		n++
	}
	if n != 2000 {
		t.Fatalf("%d events", n)
	}
}
