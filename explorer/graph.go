package explorer

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/causal"
	"github.com/batpak-go/batpak/kind"
)

// maxGraphEvents bounds the correlation groups the explorer draws: a
// larger group is refused rather than read whole.
const maxGraphEvents = 1_000

// GraphPage is the model of the causal graph page (GET /graph, /api/graph).
type GraphPage struct {
	Traced      string     `json:"traced"`
	Correlation string     `json:"correlation"`
	Events      []EventRow `json:"events"` // commit order
	// Parents maps an event id to its cause's id within the group.
	Parents  map[string]string `json:"parents"`
	Dangling []string          `json:"dangling"` // causation ids that name no event
	Cycles   int               `json:"cycles"`
	// SVG is the drawing (in the page, not in the JSON).
	SVG template.HTML `json:"-"`
	// Listed is how many of the events the page lists below the drawing.
	Listed int `json:"-"`
}

// graphListed bounds the events a graph page lists in its table: the
// drawing shows them all, the JSON lists them all.
const graphListed = 100

// graphOf traces the group the request names: ?event=ID-or-sequence (that
// event's group, the event marked) or ?correlation=ID.
func (e *Explorer) graphOf(r *http.Request, s Store) (*causal.Graph, error) {
	q := r.URL.Query()
	ev, corr := q.Get("event"), q.Get("correlation")
	var id uuid.UUID
	switch {
	case ev != "" && corr != "":
		return nil, badInput("give event or correlation, not both")
	case ev != "":
		rec, err := getEvent(r.Context(), s, ev)
		if err != nil {
			return nil, err
		}
		id = rec.ID
	case corr != "":
		c, err := uuid.Parse(corr)
		if err != nil {
			return nil, badInput("correlation must be an event id (a UUID)")
		}
		if _, err := s.Get(r.Context(), c); err == nil {
			id = c
		} else if others := s.Correlated(c); len(others) > 0 {
			rec, err := s.GetSequence(r.Context(), others[0]) // the root itself is gone
			if err != nil {
				return nil, err
			}
			id = rec.ID
		} else {
			return nil, &notFoundError{msg: fmt.Sprintf("no correlation group %s in the store", c)}
		}
	default:
		return nil, badInput("event or correlation is required")
	}
	rec, err := s.Get(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if n := groupSize(r.Context(), s, rec.CorrelationID); n > maxGraphEvents {
		return nil, &inputError{msg: fmt.Sprintf("the correlation group holds %d events, more than the %d the explorer draws; 'batpak trace' renders any size", n, maxGraphEvents)}
	}
	g, err := causal.Trace(r.Context(), s, id)
	if errors.Is(err, batpak.ErrNotFound) {
		return nil, &notFoundError{msg: err.Error()}
	}
	return g, err
}

func (e *Explorer) graph(r *http.Request, s Store) (any, error) {
	g, err := e.graphOf(r, s)
	if err != nil {
		return nil, err
	}
	p := &GraphPage{Traced: g.Traced.String(), Correlation: g.Correlation.String(), Parents: map[string]string{},
		Dangling: []string{}, Cycles: len(g.Cycles)}
	for _, n := range g.Nodes {
		p.Events = append(p.Events, e.row(s, &n.Record))
		if n.Parent != nil {
			p.Parents[n.Record.ID.String()] = n.Parent.Record.ID.String()
		}
	}
	for _, d := range g.Dangling {
		p.Dangling = append(p.Dangling, d.Missing.String())
	}
	p.Listed = min(len(p.Events), graphListed)
	var b bytes.Buffer
	if err := g.WriteSVG(&b, e.svgOptions()); err != nil {
		return nil, err
	}
	// causal escapes every text and attribute it writes.
	p.SVG = template.HTML(b.String())
	return p, nil
}

func (e *Explorer) svgOptions() causal.SVGOptions {
	return causal.SVGOptions{
		Link:     func(n *causal.Node) string { return e.cfg.base + "/event/" + url.PathEscape(n.Record.ID.String()) },
		KindName: func(k kind.Kind) string { return e.names.known(k) },
	}
}

// graphSVG serves the drawing alone (GET /graph.svg).
func (e *Explorer) graphSVG(w http.ResponseWriter, r *http.Request) {
	g := e.acquire()
	defer g.release()
	cg, err := e.graphOf(r, g.store)
	if err != nil {
		http.Error(w, err.Error(), statusOf(err))
		return
	}
	for _, n := range cg.Nodes {
		e.names.name(&n.Record) // learn the names the drawing shows
	}
	var b bytes.Buffer
	if err := cg.WriteSVG(&b, e.svgOptions()); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	_, _ = w.Write(b.Bytes())
}
