package explorer

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/batpak-go/batpak"
)

// HealthPage is the model of the health page (GET /, /api/health).
type HealthPage struct {
	Health
	LastSequence uint64 `json:"last_sequence"`
}

func (e *Explorer) health(r *http.Request, s Store) (any, error) {
	h := Health{Events: s.LastSequence(), Streams: -1}
	if st, ok := s.(statser); ok {
		stats := st.Stats()
		cs := stats.ColdStart
		h.Backend = "eventstore"
		h.Events, h.Streams, h.Segments = stats.Events, stats.Streams, stats.Segments
		h.DiskBytes, h.DataBytes, h.ColdStart = stats.DiskBytes, stats.DataBytes, &cs
		if stats.Failed != nil {
			h.Failed = stats.Failed.Error()
		}
		if sc := stats.Scrub; sc.Runs > 0 {
			c := Check{What: fmt.Sprintf("scrub of the sealed segments (%d since the store was opened)", sc.Runs),
				Started: sc.LastRun, Finished: sc.LastRun.Add(sc.LastDuration), Bytes: sc.LastBytes}
			for _, d := range sc.Damage {
				c.Problems = append(c.Problems, fmt.Sprintf("%s at offset %d: %s", d.Path, d.Offset, d.Reason))
			}
			h.Checks = append(h.Checks, c)
		}
		if cs.TruncatedBytes > 0 {
			h.Notes = append(h.Notes, fmt.Sprintf("%d bytes of a torn tail after the last whole frame were never acknowledged; the next writable open cuts them", cs.TruncatedBytes))
		}
	}
	if e.cfg.health != nil {
		e.cfg.health(&h)
	}
	return &HealthPage{Health: h, LastSequence: s.LastSequence()}, nil
}

// Streams are listed in creation order, a page at a time. A page examines
// at most this many streams, so a filter that matches few of many streams
// still answers quickly: the page then ends early with a cursor to go on.
const (
	maxExamined = 200_000 // streams whose entity is compared
	maxReads    = 20_000  // streams whose last event is read (for its scope and time)
)

// StreamsPage is the model of the stream list (GET /streams, /api/streams).
type StreamsPage struct {
	Prefix  string      `json:"prefix"`
	Scope   string      `json:"scope"`
	After   uint64      `json:"after"`
	Limit   int         `json:"limit"`
	Streams []StreamRow `json:"streams"`
	// Next is the cursor of the next page (the after= to pass), 0 when the
	// list is done.
	Next uint64 `json:"next"`
	// Examined is how many streams this page went through; Cut says it
	// stopped at its bound before filling the page.
	Examined int  `json:"examined"`
	Cut      bool `json:"cut"`
}

// StreamRow is one stream of the list.
type StreamRow struct {
	Entity       string `json:"entity"`
	Scope        string `json:"scope"`
	Version      uint64 `json:"version"`
	LastSequence uint64 `json:"last_sequence"`
	LastEvent    string `json:"last_event"` // its time
	LastKind     string `json:"last_kind"`
}

func (e *Explorer) streams(r *http.Request, s Store) (any, error) {
	q := r.URL.Query()
	p := &StreamsPage{Streams: []StreamRow{}}
	var err error
	if p.Prefix, err = name(q, "prefix", false); err != nil {
		return nil, err
	}
	if p.Scope, err = name(q, "scope", false); err != nil {
		return nil, err
	}
	if p.After, err = number(q, "after", 0); err != nil {
		return nil, err
	}
	if p.Limit, err = limit(q); err != nil {
		return nil, err
	}
	var pos uint64
	reads := 0
	for info := range s.Streams() {
		pos++
		if pos <= p.After {
			continue
		}
		if len(p.Streams) == p.Limit || p.Examined == maxExamined || reads == maxReads {
			p.Next = pos - 1
			p.Cut = len(p.Streams) < p.Limit
			break
		}
		p.Examined++
		if !strings.HasPrefix(info.Coordinate.Entity, p.Prefix) {
			continue
		}
		reads++
		rec, err := s.GetSequence(r.Context(), info.LastSequence)
		if isNotFound(err) { // deleted since the list was taken
			continue
		}
		if err != nil {
			return nil, err
		}
		if p.Scope != "" && rec.Coordinate.Scope != p.Scope {
			continue
		}
		row := StreamRow{Entity: info.Coordinate.Entity, Scope: info.Coordinate.Scope, Version: info.Version, LastSequence: info.LastSequence,
			LastEvent: rec.Timestamp.UTC().Format(timeLayout), LastKind: rec.Kind.String()}
		if n := e.names.name(&rec); n != "" {
			row.LastKind += " " + n
		}
		p.Streams = append(p.Streams, row)
	}
	return p, nil
}

// StreamPage is the model of one stream's events (GET /stream, /api/stream).
type StreamPage struct {
	Entity  string     `json:"entity"`
	Scope   string     `json:"scope"`
	Version uint64     `json:"version"` // the stream's current version
	From    uint64     `json:"from"`
	Desc    bool       `json:"desc"`
	Limit   int        `json:"limit"`
	Events  []EventRow `json:"events"`
	// Next is the version the next page starts at, 0 when this page ends
	// the stream (in its order).
	Next uint64 `json:"next"`
}

func (e *Explorer) stream(r *http.Request, s Store) (any, error) {
	q := r.URL.Query()
	p := &StreamPage{Events: []EventRow{}}
	var err error
	if p.Entity, err = name(q, "entity", true); err != nil {
		return nil, err
	}
	if p.Scope, err = name(q, "scope", false); err != nil {
		return nil, err
	}
	if p.Scope == "" { // a link by entity alone: the entity's first stream
		for rec, err := range s.Query(r.Context(), batpak.Region{Entity: p.Entity}) {
			if err != nil {
				return nil, err
			}
			p.Scope = rec.Coordinate.Scope
			break
		}
	}
	if p.Desc, err = descending(q, false); err != nil {
		return nil, err
	}
	if p.From, err = number(q, "from", 0); err != nil {
		return nil, err
	}
	if p.Limit, err = limit(q); err != nil {
		return nil, err
	}
	coord := batpak.Coordinate{Entity: p.Entity, Scope: p.Scope}
	if p.Version = s.StreamVersion(coord); p.Version == 0 {
		return nil, &notFoundError{msg: fmt.Sprintf("no stream %q in scope %q in the store", p.Entity, p.Scope)}
	}
	opts := []batpak.ReadOption{batpak.Limit(p.Limit + 1)}
	if p.Desc {
		opts = append(opts, batpak.Backward())
	}
	for rec, err := range s.ReadStream(r.Context(), coord, p.From, opts...) {
		if err != nil {
			return nil, err
		}
		if len(p.Events) == p.Limit {
			p.Next = rec.Version
			break
		}
		p.Events = append(p.Events, e.row(s, &rec))
	}
	return p, nil
}

// LogPage is the model of the global log (GET /log, /api/log).
type LogPage struct {
	From   uint64     `json:"from"`
	Desc   bool       `json:"desc"`
	Limit  int        `json:"limit"`
	Last   uint64     `json:"last_sequence"`
	Events []EventRow `json:"events"`
	Next   uint64     `json:"next"` // the sequence the next page starts at, 0 at the end
}

// maxMisses bounds the deleted sequences a backward log page steps over.
const maxMisses = 10_000

func (e *Explorer) log(r *http.Request, s Store) (any, error) {
	q := r.URL.Query()
	p := &LogPage{Events: []EventRow{}, Last: s.LastSequence()}
	var err error
	if p.Desc, err = descending(q, true); err != nil {
		return nil, err
	}
	if p.From, err = number(q, "from", 0); err != nil {
		return nil, err
	}
	if p.Limit, err = limit(q); err != nil {
		return nil, err
	}
	if !p.Desc {
		for rec, err := range s.Query(r.Context(), batpak.Region{FromSequence: max(p.From, 1)}) {
			if err != nil {
				return nil, err
			}
			if len(p.Events) == p.Limit {
				p.Next = rec.Sequence
				break
			}
			p.Events = append(p.Events, e.row(s, &rec))
		}
		return p, nil
	}
	seq := p.Last
	if p.From != 0 && p.From < seq {
		seq = p.From
	}
	for misses := 0; seq > 0 && misses < maxMisses; seq-- {
		if len(p.Events) == p.Limit {
			p.Next = seq
			break
		}
		rec, err := s.GetSequence(r.Context(), seq)
		if isNotFound(err) { // removed by compaction
			misses++
			continue
		}
		if err != nil {
			return nil, err
		}
		p.Events = append(p.Events, e.row(s, &rec))
	}
	if seq > 0 && len(p.Events) < p.Limit {
		p.Next = seq
	}
	return p, nil
}

// ProjectionsPage is the model of the projections page.
type ProjectionsPage struct {
	Exposed     bool            `json:"exposed"` // the application lists its projections
	Last        uint64          `json:"last_sequence"`
	Projections []ProjectionRow `json:"projections"`
}

// ProjectionRow is one projection and its lag.
type ProjectionRow struct {
	Name   string `json:"name"`
	Next   uint64 `json:"next"`
	State  string `json:"state,omitempty"`
	Region string `json:"region,omitempty"`
	// Behind is how many sequences of the log it has not examined yet.
	Behind uint64 `json:"behind_sequences"`
	// Pending counts the events of its region among them, when it has a
	// region and the count is at most maxPending; -1 otherwise.
	Pending int `json:"pending_events"`
}

// maxPending bounds the count of a projection's pending events.
const maxPending = 10_000

func (e *Explorer) projectionsPage(r *http.Request, s Store) (any, error) {
	p := &ProjectionsPage{Last: s.LastSequence(), Projections: []ProjectionRow{}}
	if e.cfg.projections == nil {
		return p, nil
	}
	p.Exposed = true
	ps, err := e.cfg.projections(r.Context())
	if err != nil {
		return nil, err
	}
	for _, pr := range ps {
		row := ProjectionRow{Name: pr.Name, Next: pr.Next, State: pr.State, Pending: -1}
		if done := max(pr.Next, 1) - 1; done < p.Last {
			row.Behind = p.Last - done
		}
		if pr.Region != nil {
			row.Region = describeRegion(pr.Region)
			row.Pending = countPending(r.Context(), s, *pr.Region, max(pr.Next, 1), p.Last)
		}
		p.Projections = append(p.Projections, row)
	}
	return p, nil
}

// countPending counts the events of region in [from, to], or returns -1
// past maxPending or on a read error.
func countPending(ctx context.Context, s Store, region batpak.Region, from, to uint64) int {
	if from > to {
		return 0
	}
	region.FromSequence, region.ToSequence = max(from, region.FromSequence), to
	n := 0
	for _, err := range s.Query(ctx, region) {
		if err != nil || n == maxPending {
			return -1
		}
		n++
	}
	return n
}

func describeRegion(r *batpak.Region) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+" "+v)
		}
	}
	add("entity", r.Entity)
	add("prefix", r.EntityPrefix)
	add("scope", r.Scope)
	for _, k := range r.Kinds {
		add("kind", k.String())
	}
	if len(parts) == 0 {
		return "every event"
	}
	return strings.Join(parts, ", ")
}

// find sends the search box to the page of what it names: an event by id
// or sequence, a stream by entity, else the streams with that prefix.
func (e *Explorer) find(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	v := url.Values{"q": {q}}
	if _, err := name(v, "q", true); err != nil {
		e.render(w, r, "error", nil, err)
		return
	}
	g := e.acquire()
	defer g.release()
	to := e.link("/streams", "prefix", q)
	if _, _, err := eventRef(q); err == nil {
		to = e.cfg.base + "/event/" + url.PathEscape(q)
	} else {
		for rec, err := range g.store.Query(r.Context(), batpak.Region{Entity: q}) {
			if err == nil {
				to = e.link("/stream", "entity", q, "scope", rec.Coordinate.Scope)
			}
			break
		}
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// link returns the address of path with the query kv (pairs of name and
// value; empty and zero values are left out).
func (e *Explorer) link(path string, kv ...any) string { return makeLink(e.cfg.base, path, kv...) }

func makeLink(base, path string, kv ...any) string {
	var b strings.Builder
	b.WriteString(base)
	b.WriteString(path)
	sep := byte('?')
	for i := 0; i+1 < len(kv); i += 2 {
		var v string
		switch x := kv[i+1].(type) {
		case string:
			v = x
		case uint64:
			if x != 0 {
				v = strconv.FormatUint(x, 10)
			}
		case int:
			if x != 0 {
				v = strconv.Itoa(x)
			}
		case bool:
			if x {
				v = "1"
			}
		default:
			v = fmt.Sprint(x)
		}
		if v == "" {
			continue
		}
		b.WriteByte(sep)
		sep = '&'
		b.WriteString(url.QueryEscape(kv[i].(string)))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(v))
	}
	return b.String()
}
