package explorer

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/internal/chain"
	"github.com/batpak-go/batpak/segment"
)

// EventPage is the model of one event's full record (GET /event/{ref},
// /api/event/{ref}).
type EventPage struct {
	EventRow
	Metadata    []KeyValue `json:"metadata"`
	PayloadSize int        `json:"payload_size"`
	// PayloadText is the payload as indented JSON.
	PayloadText string `json:"-"`
	PrevHash    string `json:"prev_hash"`
	Hash        string `json:"hash"`
	// Position is where the frame is: segment file and offset (empty for
	// a backend without segment files).
	Position string     `json:"position,omitempty"`
	Chain    ChainCheck `json:"chain"`
	// Cause is the event's cause, nil for a root or a missing cause.
	Cause        *EventRow `json:"cause,omitempty"`
	CauseMissing bool      `json:"cause_missing"`
	// Effects are the events it caused (the first maxEffects), EffectCount
	// all of them.
	Effects     []EventRow `json:"effects"`
	EffectCount int        `json:"effect_count"`
	// GroupSize is the number of events in its correlation group.
	GroupSize int `json:"group_size"`
}

// KeyValue is one metadata entry.
type KeyValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// ChainCheck is the check of an event's place in its stream's hash chain.
type ChainCheck struct {
	// OK is false when a check below failed.
	OK bool `json:"ok"`
	// Hash says whether the event's hash matches its content and links.
	Hash string `json:"hash"`
	// Prev and Next say whether the event links to the previous event of
	// its stream and the next one links to it.
	Prev string `json:"prev"`
	Next string `json:"next"`
	// Full is the result of checking the whole stream, when asked for
	// (?chain=full).
	Full string `json:"full,omitempty"`
}

const maxEffects = 50

func (e *Explorer) event(r *http.Request, s Store) (any, error) {
	rec, err := getEvent(r.Context(), s, r.PathValue("ref"))
	if err != nil {
		return nil, err
	}
	full := false
	switch r.URL.Query().Get("chain") {
	case "":
	case "full":
		full = true
	default:
		return nil, badInput(`chain must be "full" or absent`)
	}
	p := &EventPage{
		EventRow:    e.row(s, &rec),
		Metadata:    []KeyValue{},
		PayloadSize: len(rec.Payload),
		PrevHash:    hex.EncodeToString(rec.PrevHash[:]),
		Hash:        hex.EncodeToString(rec.Hash[:]),
		Effects:     []EventRow{},
	}
	if l, ok := s.(locator); ok {
		if pos, ok := l.Position(rec.Sequence); ok {
			p.Position = fmt.Sprintf("%s offset %d", segment.FileName(pos.Segment), pos.Offset)
		}
	}
	p.PayloadText = indentJSON(p.Payload)
	for _, k := range slices.Sorted(maps.Keys(rec.Metadata)) {
		p.Metadata = append(p.Metadata, KeyValue{k, rec.Metadata[k]})
	}
	if p.Chain, err = chainCheck(r.Context(), s, &rec); err != nil {
		return nil, err
	}
	if full {
		if !e.check.TryLock() {
			return nil, fmt.Errorf("%w: another stream's chain is being checked", errBusy)
		}
		err := s.VerifyChain(r.Context(), rec.Coordinate)
		e.check.Unlock()
		var ce *batpak.ChainError
		switch {
		case err == nil:
			p.Chain.Full = fmt.Sprintf("every event of %s up to version %d verifies", rec.Coordinate, s.StreamVersion(rec.Coordinate))
		case errors.As(err, &ce):
			p.Chain.OK = false
			p.Chain.Full = fmt.Sprintf("broken at version %d (sequence %d): %s", ce.Version, ce.Sequence, ce.Reason)
		default:
			return nil, err
		}
	}
	if rec.CausationID != uuid.Nil {
		cause, err := s.Get(r.Context(), rec.CausationID)
		switch {
		case err == nil:
			row := e.row(s, &cause)
			p.Cause = &row
		case isNotFound(err):
			p.CauseMissing = true
		default:
			return nil, err
		}
	}
	effects := s.CausedBy(rec.ID)
	p.EffectCount = len(effects)
	for _, seq := range effects[:min(len(effects), maxEffects)] {
		eff, err := s.GetSequence(r.Context(), seq)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		p.Effects = append(p.Effects, e.row(s, &eff))
	}
	p.GroupSize = groupSize(r.Context(), s, rec.CorrelationID)
	return p, nil
}

// groupSize counts the events of correlation group corr: its root (if
// stored) and the others.
func groupSize(ctx context.Context, s Store, corr uuid.UUID) int {
	n := len(s.Correlated(corr))
	if _, err := s.Get(ctx, corr); err == nil {
		n++
	}
	return n
}

// chainCheck checks rec's place in its stream's hash chain without reading
// the stream: its hash against its content, its link to the previous
// event, and the next event's link to it.
func chainCheck(ctx context.Context, s Store, rec *batpak.Record) (ChainCheck, error) {
	c := ChainCheck{OK: true}
	fail := func(field *string, msg string) { *field, c.OK = msg, false }
	in := chain.Input{
		Kind: uint16(rec.Kind), Version: rec.Version, Timestamp: rec.Timestamp.UnixMicro(),
		ID: rec.ID, Correlation: rec.CorrelationID, Causation: rec.CausationID,
		Entity: rec.Coordinate.Entity, Scope: rec.Coordinate.Scope, PrevHash: rec.PrevHash,
		Metadata: rec.Metadata, Payload: rec.Payload,
	}
	switch {
	case rec.Metadata[batpak.MetaSubject] != "":
		// The hash covers the payload as stored, sealed with the
		// subject's key; the record holds it opened (or erased).
		c.Hash = "covers the sealed payload: only the full check recomputes it"
	case chain.New().Sum(&in) == rec.Hash:
		c.Hash = "matches the event's content"
	default:
		fail(&c.Hash, "does not match the event's content")
	}
	stream := rec.Coordinate
	if rec.Version == 1 {
		if rec.PrevHash == ([32]byte{}) {
			c.Prev = "first event of the stream: no previous hash"
		} else {
			fail(&c.Prev, "first event of the stream, but its previous hash is not zero")
		}
	} else {
		prev, ok, err := streamAt(ctx, s, stream, rec.Version-1)
		switch {
		case err != nil:
			return c, err
		case !ok:
			c.Prev = fmt.Sprintf("version %d was removed (compaction): only the full check covers this link", rec.Version-1)
		case prev.Hash == rec.PrevHash:
			c.Prev = fmt.Sprintf("links to version %d", rec.Version-1)
		default:
			fail(&c.Prev, fmt.Sprintf("previous hash is not the hash of version %d", rec.Version-1))
		}
	}
	next, ok, err := streamAt(ctx, s, stream, rec.Version+1)
	switch {
	case err != nil:
		return c, err
	case !ok && rec.Version >= s.StreamVersion(stream):
		c.Next = "newest event of the stream"
	case !ok:
		c.Next = fmt.Sprintf("version %d was removed (compaction): only the full check covers this link", rec.Version+1)
	case next.PrevHash == rec.Hash:
		c.Next = fmt.Sprintf("version %d links to it", rec.Version+1)
	default:
		fail(&c.Next, fmt.Sprintf("version %d does not link to it", rec.Version+1))
	}
	return c, nil
}

// streamAt reads version v of the stream; ok is false when the stream has
// no visible event at v.
func streamAt(ctx context.Context, s Store, stream batpak.Coordinate, v uint64) (batpak.Record, bool, error) {
	for rec, err := range s.ReadStream(ctx, stream, v, batpak.Limit(1)) {
		if err != nil {
			return rec, false, err
		}
		return rec, rec.Version == v, nil
	}
	return batpak.Record{}, false, nil
}
