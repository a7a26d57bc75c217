package explorer

import (
	"context"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
)

// Option configures an [Explorer].
type Option func(*config)

type config struct {
	base        string
	token       string
	registry    *batpak.Registry
	kindNames   func(kind.Kind) string
	health      func(*Health)
	projections func(context.Context) ([]Projection, error)
	title       string
	maxTails    int
	heartbeat   time.Duration
}

// WithBasePath sets the path the explorer is mounted at (say "/explorer",
// with http.StripPrefix("/explorer", e) in front of it), so the links of
// its pages point inside it. The default is the root.
func WithBasePath(p string) Option { return func(c *config) { c.base = p } }

// WithToken makes every request present token: as "Authorization: Bearer
// TOKEN", or once as ?token=TOKEN in a browser, which then gets it as a
// same-site, HTTP-only cookie. Use it whenever the explorer is reachable
// from anything but this machine.
func WithToken(token string) Option { return func(c *config) { c.token = token } }

// WithRegistry names event kinds after the type names registered for them
// (the kind 1:004 of "bank.TransferSent" shows as "1:004
// bank.TransferSent"). Without it, the store's catalog names the kinds it
// has names for.
func WithRegistry(r *batpak.Registry) Option { return func(c *config) { c.registry = r } }

// WithKindNames names event kinds with fn (for kinds the registry does not
// know, or without a registry); fn returns "" for a kind it does not know.
func WithKindNames(fn func(kind.Kind) string) Option { return func(c *config) { c.kindNames = fn } }

// WithHealth lets the application add to the health page: fn receives what
// the explorer found (the store's counters and its last scrub, when it has
// them) and may set any field, such as adding the result of a verify.
func WithHealth(fn func(*Health)) Option { return func(c *config) { c.health = fn } }

// WithProjections lists the application's projections (read models) with
// their positions; the explorer shows how far behind the log each is.
func WithProjections(fn func(context.Context) ([]Projection, error)) Option {
	return func(c *config) { c.projections = fn }
}

// WithTitle sets the name shown at the top of every page (default "batpak").
func WithTitle(t string) Option { return func(c *config) { c.title = t } }

// WithMaxTails bounds the live tails served at once (default 32); a tail
// over the bound is refused with 503.
func WithMaxTails(n int) Option { return func(c *config) { c.maxTails = max(n, 1) } }

// Health is what the health page shows. Zero fields are not shown.
type Health struct {
	// Backend and Location say which store this is ("eventstore" and its
	// directory, say).
	Backend  string
	Location string
	Events   uint64
	Streams  int
	Segments int
	// DiskBytes is the size of the segment files, DataBytes the part that
	// holds data.
	DiskBytes int64
	DataBytes int64
	ColdStart *eventstore.ColdStart
	// Failed is why the store turned read-only, if it did.
	Failed string
	// Checks are the results of the last verify and scrub of the files,
	// those that ran: the explorer adds the store's own scrub, an
	// application (or batpak serve) adds what else it ran.
	Checks []Check
	// Notes are further findings in prose (quarantined files, say).
	Notes []string
}

// Check is the result of a verify or scrub of the store's files.
type Check struct {
	What     string // "verify", "scrub", ...
	Running  bool   // started and not finished
	Started  time.Time
	Finished time.Time
	// Events, Segments and Bytes are what it checked (zero: not counted).
	Events   uint64
	Segments int
	Bytes    int64
	// Problems is the damage found (empty when the files are sound);
	// Warnings are findings that are not damage (a torn tail never
	// acknowledged, say).
	Problems []string
	Warnings []string
	// Err is why the check could not run.
	Err string
}

// Projection is one read model and how far it has read.
type Projection struct {
	Name string
	// Next is the global sequence it will apply next: it has handled every
	// event of its region before it.
	Next uint64
	// Region is the events it reads; nil when unknown, and then its lag is
	// counted in sequences rather than in matching events.
	Region *batpak.Region
	// State is free text ("running", "stopped: ...").
	State string
}
