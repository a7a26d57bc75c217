package eventstore

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
)

// fakeClock is a clock that moves only when a limiter sleeps on it.
type fakeClock struct {
	t     time.Time
	slept time.Duration
}

func (c *fakeClock) now() time.Time { return c.t }

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	c.t = c.t.Add(d)
	c.slept += d
	return ctx.Err()
}

// The limiter lets at most burst + rate × elapsed bytes through, whatever
// the sizes asked for.
func TestByteLimiterRate(t *testing.T) {
	for _, rate := range []int64{1, 1000, 3 << 20} {
		clk := &fakeClock{t: time.Unix(1000, 0)}
		l := newByteLimiter(rate, clk.now, clk.sleep)
		total := int64(0)
		for i := range 2000 {
			n := int64(i%97*13 + 1)
			if err := l.wait(context.Background(), n); err != nil {
				t.Fatal(err)
			}
			total += n
			elapsed := clk.t.Sub(time.Unix(1000, 0)).Seconds()
			if allowed := l.burst + elapsed*float64(rate); float64(total) > allowed+1e-6*float64(total) {
				t.Fatalf("rate %d: %d bytes through after %.3fs, at most %.0f allowed", rate, total, elapsed, allowed)
			}
		}
		// And it does not hold back more than it must.
		if want := time.Duration((float64(total) - l.burst) / float64(rate) * float64(time.Second)); clk.slept > want+time.Millisecond {
			t.Fatalf("rate %d: slept %s for %d bytes, %s would do", rate, clk.slept, total, want)
		}
	}
}

// A scrub pays for every byte it reads before reading it: with a limiter
// on a fake clock, the clock shows it read no faster than the rate.
func TestScrubPacesEveryByte(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	s, err := Open(dir, WithSyncMode(SyncNone), WithPreallocation(false), WithSegmentMaxBytes(4096))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 200 {
		if _, err := s.Append(t.Context(), batpak.Coordinate{Entity: fmt.Sprint("e", i%4), Scope: "s"}, []batpak.Event{{Kind: 0x1001, Payload: i}}); err != nil {
			t.Fatal(err)
		}
	}
	const rate = 10_000
	clk := &fakeClock{t: time.Unix(1000, 0)}
	lim := newByteLimiter(rate, clk.now, clk.sleep)
	rep, err := s.scrub(t.Context(), lim)
	if err != nil || rep.Segments < 5 {
		t.Fatalf("scrub: %v %+v", err, rep)
	}
	elapsed := clk.t.Sub(time.Unix(1000, 0)).Seconds()
	if got := float64(rep.Bytes); got > lim.burst+elapsed*rate {
		t.Fatalf("read %d bytes in %.3fs of the limiter's clock: faster than %d B/s", rep.Bytes, elapsed, rate)
	}
	t.Logf("%d bytes of %d segments in %.2fs of the limiter's clock (%d B/s)", rep.Bytes, rep.Segments, elapsed, rate)
}

// Close stops a background scrub that is waiting for its rate, at once.
func TestCloseStopsBackgroundScrub(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	s, err := Open(dir, WithSyncMode(SyncNone), WithPreallocation(false), WithSegmentMaxBytes(4096))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := s.Append(t.Context(), batpak.Coordinate{Entity: "e", Scope: "s"}, []batpak.Event{{Kind: 0x1001, Payload: i}}); err != nil {
			t.Fatal(err)
		}
	}
	waiting := make(chan struct{}, 1)
	lim := newByteLimiter(1, time.Now, func(ctx context.Context, d time.Duration) error {
		select {
		case waiting <- struct{}{}:
		default:
		}
		<-ctx.Done() // a wait far longer than any test
		return ctx.Err()
	})
	s.startScrubber(scrubSettings{interval: time.Nanosecond, bytesPerSecond: 1}, lim)
	<-waiting
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats().Scrub; st.Runs != 0 {
		t.Fatalf("a cut-short scrub counted as complete: %+v", st)
	}
}
