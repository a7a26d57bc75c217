package explorer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/batpak-go/batpak"
)

// The live tail (GET /api/tail) is a stream of server-sent events: one
// "record" event per stored event of the region, from a cursor, then each
// new one as it is committed. Each carries the event's sequence as its id,
// so a browser that reconnects (sending Last-Event-ID) resumes after the
// last event it got.

// TailPage is the model of the live tail page (GET /tail).
type TailPage struct {
	Entity string
	Prefix string
	Scope  string
	From   uint64
	// Source is the address of the event stream the page listens to.
	Source string
}

// tailRecent is how many stored events a tail shows before the new ones
// when no cursor is given.
const tailRecent = 20

// tailRequest reads a tail's region and cursor.
func tailRequest(r *http.Request, last uint64) (batpak.Region, uint64, error) {
	q := r.URL.Query()
	var reg batpak.Region
	var err error
	if reg.Entity, err = name(q, "entity", false); err != nil {
		return reg, 0, err
	}
	if reg.EntityPrefix, err = name(q, "prefix", false); err != nil {
		return reg, 0, err
	}
	if reg.Scope, err = name(q, "scope", false); err != nil {
		return reg, 0, err
	}
	def := uint64(1)
	if last > tailRecent {
		def = last - tailRecent + 1
	}
	from, err := number(q, "from", def)
	if err != nil {
		return reg, 0, err
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		n, err := strconv.ParseUint(id, 10, 64)
		if err != nil || n == 1<<64-1 {
			return reg, 0, badInput("Last-Event-ID must be a sequence number")
		}
		from = n + 1
	}
	return reg, max(from, 1), nil
}

func (e *Explorer) tailPage(r *http.Request) (any, error) {
	g := e.acquire()
	last := g.store.LastSequence()
	g.release()
	reg, from, err := tailRequest(r, last)
	if err != nil {
		return nil, err
	}
	p := &TailPage{Entity: reg.Entity, Prefix: reg.EntityPrefix, Scope: reg.Scope}
	if r.URL.Query().Get("from") != "" {
		p.From = from
	}
	p.Source = e.link("/api/tail", "entity", p.Entity, "prefix", p.Prefix, "scope", p.Scope, "from", p.From)
	return p, nil
}

// tailItem is one result of the goroutine that follows the store.
type tailItem struct {
	rec batpak.Record
	err error
}

func (e *Explorer) tail(w http.ResponseWriter, r *http.Request) {
	select {
	case e.tails <- struct{}{}:
		defer func() { <-e.tails }()
	default:
		http.Error(w, fmt.Sprintf("%d live tails are open, the most this explorer serves", cap(e.tails)), http.StatusServiceUnavailable)
		return
	}
	g := e.acquire()
	region, next, err := tailRequest(r, g.store.LastSequence())
	if err != nil {
		g.release()
		http.Error(w, err.Error(), statusOf(err))
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead { // the headers are the whole answer
		g.release()
		return
	}
	send := func(event, id string, data []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		var err error
		if id != "" {
			_, err = fmt.Fprintf(w, "id: %s\n", id)
		}
		if err == nil {
			_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
		}
		if err == nil {
			err = rc.Flush()
		}
		return err
	}
	hello, _ := json.Marshal(map[string]uint64{"from": next, "last_sequence": g.store.LastSequence()})
	if send("hello", "", hello) != nil {
		g.release()
		return
	}
	beat := time.NewTicker(e.cfg.heartbeat)
	defer beat.Stop()
	for {
		ctx, cancel := context.WithCancel(r.Context())
		items := make(chan tailItem)
		done := make(chan struct{})
		go func(s Store, from uint64) {
			defer close(done)
			for rec, err := range s.Follow(ctx, region, from) {
				select {
				case items <- tailItem{rec, err}:
				case <-ctx.Done():
					return
				}
				if err != nil {
					return
				}
			}
		}(g.store, next)
		swapped, failed := false, false
	loop:
		for {
			select {
			case it := <-items:
				if it.err != nil {
					if ctx.Err() == nil {
						msg, _ := json.Marshal(map[string]string{"error": it.err.Error()})
						_ = send("failure", "", msg)
					}
					failed = true
					break loop
				}
				data, _ := json.Marshal(e.row(g.store, &it.rec))
				if send("record", strconv.FormatUint(it.rec.Sequence, 10), data) != nil {
					failed = true
					break loop
				}
				next = it.rec.Sequence + 1
			case <-beat.C:
				_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
				if _, err := fmt.Fprint(w, ": still here\n\n"); err != nil || rc.Flush() != nil {
					failed = true
					break loop
				}
			case <-g.swapped:
				swapped = true
				break loop
			case <-r.Context().Done():
				break loop
			}
		}
		cancel()
		<-done // the follower no longer reads the store
		g.release()
		if !swapped || failed {
			return
		}
		g = e.acquire()
	}
}
