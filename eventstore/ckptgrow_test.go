package eventstore

import "testing"

// TestCheckpointInterval: by default a checkpoint is written after every
// 1,000,000 events or a quarter of the store's, whichever is more, so that
// rewriting the whole index stays a bounded share of the work; an interval
// the caller chose is kept as it is.
func TestCheckpointInterval(t *testing.T) {
	def := defaultConfig()
	chosen := defaultConfig()
	WithCheckpointEvery(10)(&chosen)
	none := defaultConfig()
	WithCheckpointEvery(0)(&none)
	for _, tc := range []struct {
		cfg    *config
		events uint64
		want   int
	}{
		{&def, 0, 1_000_000},
		{&def, 4_000_000, 1_000_000},
		{&def, 10_000_000, 2_500_000},
		{&def, 100_000_000, 25_000_000},
		{&chosen, 100_000_000, 10},
		{&none, 100_000_000, 0},
	} {
		if got := tc.cfg.checkpointInterval(tc.events); got != tc.want {
			t.Errorf("every %d, grow %v, %d events: interval %d, want %d", tc.cfg.checkpointEvery, tc.cfg.checkpointGrow, tc.events, got, tc.want)
		}
	}
}
