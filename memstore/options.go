package memstore

import "time"

// DefaultMaxPayload is the largest encoded payload of one event unless
// [WithMaxPayload] says otherwise: 4 MiB, the embedded store's default.
const DefaultMaxPayload = 4 << 20

// Option configures [New].
type Option func(*config)

type config struct {
	maxPayload int
	clock      func() time.Time
}

func defaultConfig() config {
	return config{maxPayload: DefaultMaxPayload, clock: time.Now}
}

// WithMaxPayload sets the largest encoded payload of one event, in bytes
// (default [DefaultMaxPayload], at least 1). A larger one is refused with
// [batpak.ErrPayloadTooLarge].
func WithMaxPayload(n int) Option { return func(c *config) { c.maxPayload = max(n, 1) } }

// WithClock sets the clock for event timestamps and ids (default
// time.Now), e.g. a fixed or stepping clock for reproducible tests. It is
// called once per append, under the store's lock: it must not call the
// store.
func WithClock(now func() time.Time) Option { return func(c *config) { c.clock = now } }
