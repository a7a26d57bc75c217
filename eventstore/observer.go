package eventstore

import "time"

// Observer is told how long the write path's steps take, as they happen:
// what [Store.Stats] cannot show, since a counter read at a scrape has no
// distribution. Package metrics implements it with Prometheus histograms;
// the store itself depends on no metrics library.
//
// Its methods are called on the write path, ObserveCommit and ObserveSync
// with the commit mutex held: they must be quick, must not block, and must
// not call the store. They may be called from several goroutines at once
// (ObserveAppend on each appender's). Without [WithObserver] there is no
// observer and the write path does not even read the clock for one.
type Observer interface {
	// ObserveAppend reports one Append or AppendBatch of events events
	// that returned err after d, counted from the call: encoding, the
	// wait for the writer, the group commit and its sync. err is nil for
	// a committed append and for one an idempotency key answered with the
	// original receipts.
	ObserveAppend(events int, d time.Duration, err error)
	// ObserveCommit reports one group commit: the requests taken together
	// (appends, and Sync calls), the events they committed and the bytes
	// written, in d from the first request's validation to the last one's
	// answer, syncs included.
	ObserveCommit(requests, events, bytes int, d time.Duration)
	// ObserveSync reports one successful sync of the active segment (the
	// sync that seals a segment with its footer is not among them).
	ObserveSync(d time.Duration)
}

// WithObserver has o told the timings of the write path (default: none).
func WithObserver(o Observer) Option { return func(c *config) { c.observer = o } }
