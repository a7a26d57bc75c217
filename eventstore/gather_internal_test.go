package eventstore

import (
	"testing"
	"time"
)

// TestGather: a group that will be synced takes queued requests up to the
// appends in flight (at most gatherFor) and waits for no more; a lone
// appender, a store that does not sync every commit, a pipeline that has
// not synced yet and a quitting one never wait. The wait's bound is an
// hour here, so a wait that should not happen fails the test by its
// timeout instead of passing late.
func TestGather(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sync     syncKind
		inFlight int32
		queued   int
		arriving int // sent after gather starts
		took     time.Duration
		quit     bool
		want     int
	}{
		{name: "lone appender", sync: syncEveryCommit, inFlight: 1, queued: 3, took: time.Millisecond, want: 1},
		{name: "takes what is queued up to the appends in flight", sync: syncEveryCommit, inFlight: 4, queued: 9, took: time.Millisecond, want: 4},
		// The wait is half the last sync's time: an hour here, so that
		// the group waits for its appenders however late they are run.
		{name: "waits for the appends in flight", sync: syncEveryCommit, inFlight: 4, arriving: 5, took: 2 * time.Hour, want: 4},
		{name: "at most gatherFor", sync: syncEveryCommit, inFlight: 64, queued: 40, took: time.Millisecond, want: gatherFor},
		{name: "not every commit synced", sync: syncNone, inFlight: 8, took: time.Millisecond, want: 1},
		{name: "interval sync", sync: syncInterval, inFlight: 8, took: time.Millisecond, want: 1},
		{name: "no sync yet", sync: syncEveryCommit, inFlight: 8, want: 1},
		{name: "quit", sync: syncEveryCommit, inFlight: 8, took: time.Millisecond, quit: true, want: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConfig()
			cfg.sync = tc.sync.settings()
			p := newCommitPipeline()
			p.env.cfg = &cfg
			p.reqs = make(chan *request, 64)
			p.gatherMax, p.lastSyncTook = time.Hour, tc.took
			p.inFlight.Store(tc.inFlight)
			for range tc.queued {
				p.reqs <- &request{}
			}
			if tc.quit {
				close(p.quit)
			}
			go func() {
				for range tc.arriving {
					p.reqs <- &request{}
				}
			}()
			timer := time.NewTimer(time.Hour)
			timer.Stop()
			group := p.gather([]*request{{}}, timer)
			if len(group) != tc.want {
				t.Fatalf("group of %d, want %d", len(group), tc.want)
			}
			if tc.arriving == 0 && len(p.reqs) != tc.queued-(tc.want-1) {
				t.Fatalf("%d requests left queued", len(p.reqs))
			}
		})
	}
}
