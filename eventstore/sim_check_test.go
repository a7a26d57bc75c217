package eventstore_test

// The simulation's invariant (see sim_test.go), checked after every step:
// every acknowledged event the model says is visible reads back identical
// through Get, ReadAll and ReadStream; nothing else is visible; Streams and
// StreamVersion agree. After damage, reads of the damaged events may fail
// with ErrCorrupt instead (sim_verdict_test.go).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
)

// simFailure is a broken invariant. Kind classifies it, so that shrinking
// keeps a step list that fails the same way.
type simFailure struct {
	Kind   string
	Detail string
}

func (f *simFailure) Error() string { return f.Kind + ": " + f.Detail }

func simFail(kind, format string, args ...any) error {
	return &simFailure{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// simEnd ends a check early, as expected: reads failed with ErrCorrupt
// where damage was injected.
type simEnd struct{ reason string }

func (e *simEnd) Error() string { return e.reason }

// simAllow is what a check may settle either way: after a crash, requests
// that failed (maybes) and deletions that may or may not have happened;
// after damage, events a torn-tail cut may take and deletions whose
// tombstone it may take.
type simAllow struct {
	maybes   []*simReq
	flexDel  map[string]bool
	lossable map[uint64]bool
}

// corruptOK reports whether err is ErrCorrupt for the frame of event seq,
// which the model knows to be damaged.
func (m *simModel) corruptOK(err error, seq uint64) bool {
	return errors.Is(err, batpak.ErrCorrupt) && m.corrupt[seq]
}

// simDiffers describes how rec differs from e ("" if it does not).
func simDiffers(e *simEvent, rec *batpak.Record) string {
	switch {
	case rec.Sequence != e.seq || rec.ID != e.id || rec.Version != e.version:
		return fmt.Sprintf("read #%d %s v%d, acknowledged #%d %s v%d", rec.Sequence, rec.ID, rec.Version, e.seq, e.id, e.version)
	case rec.Coordinate != simCoord(e.entity) || rec.Kind != simKind:
		return fmt.Sprintf("read %v kind %s, acknowledged %s kind %s", rec.Coordinate, rec.Kind, e.entity, simKind)
	case rec.Hash != e.hash:
		return "hash differs from the receipt's"
	case !bytes.Equal(rec.Payload, e.payload):
		return "payload differs"
	}
	return ""
}

// differs is simDiffers plus the hash chain: the previous hash must be the
// receipt hash of the stream's previous version.
func (m *simModel) differs(e *simEvent, rec *batpak.Record) string {
	if d := simDiffers(e, rec); d != "" {
		return d
	}
	var prev [32]byte
	if e.version > 1 {
		prev = m.events[m.streams[e.entity][e.version-2]-1].hash
	}
	if rec.PrevHash != prev {
		return "previous hash is not the receipt hash of the stream's previous version"
	}
	return ""
}

// check compares the writer store with the model.
func (r *simRunner) check(al simAllow) error {
	m, s := r.m, r.s
	last := s.LastSequence()
	if last < m.last() {
		for seq := last + 1; seq <= m.last(); seq++ {
			if e := m.events[seq-1]; !al.lossable[seq] {
				return simFail("missing", "the store ends at sequence %d: acknowledged event %d (%s, %s v%d) is gone", last, seq, e.tag, e.entity, e.version)
			}
		}
		r.stats.lost += int(m.last() - last)
		m.truncate(last)
	}
	if last > m.last() {
		if err := r.adopt(al.maybes, last); err != nil {
			return err
		}
	}
	for i, e := range m.events {
		if e == nil {
			return simFail("phantom", "sequence %d exists, but no request was acknowledged with it", i+1)
		}
	}
	if err := r.checkStreams(s, al.flexDel); err != nil {
		return err
	}
	var want []*simEvent // what Get found, in sequence order
	bad := map[uint64]bool{}
	for _, e := range m.events {
		rec, err := s.Get(context.Background(), e.id)
		switch {
		case err == nil:
			if m.hidden(e) {
				return simFail("visible", "event %d (%s) of a deleted stream or removed by compaction is visible", e.seq, e.tag)
			}
			if d := m.differs(e, &rec); d != "" {
				return simFail("different", "Get(event %d, %s): %s", e.seq, e.tag, d)
			}
			delete(m.mayGo, e.seq)
			want = append(want, e)
		case errors.Is(err, batpak.ErrNotFound) && (m.hidden(e) || m.mayGo[e.seq]):
			// Compaction removed it, unless its stream's deletion hides
			// it: then that stays open, as damage that cuts the
			// tombstone shows the event again.
			if m.mayGo[e.seq] && !m.deleted[e.entity] {
				delete(m.mayGo, e.seq)
				m.gone[e.seq] = true
			}
		case m.hidden(e) && errors.Is(err, batpak.ErrCorrupt) && len(m.corrupt) > 0:
			// The index keeps no ids: an id is found by reading frames,
			// and where damage hides the ids of visible events next to
			// this one's place, Get cannot tell which of them it named.
			// No read shows a hidden event, so none expects it.
		case m.corruptOK(err, e.seq):
			bad[e.seq] = true
			want = append(want, e)
		default:
			return simFail("missing", "Get(event %d, %s %s v%d): %v", e.seq, e.tag, e.entity, e.version, err)
		}
	}
	from := func(e *simEvent) uint64 { return e.seq + 1 }
	if err := simWalk("ReadAll", func(from uint64) iter.Seq2[batpak.Record, error] { return s.ReadAll(context.Background(), from) }, 1, want, bad, from, m.differs); err != nil {
		return err
	}
	for entity := range m.streams {
		ofStream := slices.DeleteFunc(slices.Clone(want), func(e *simEvent) bool { return e.entity != entity })
		read := func(v uint64) iter.Seq2[batpak.Record, error] {
			return s.ReadStream(context.Background(), simCoord(entity), v)
		}
		byVersion := func(e *simEvent) uint64 { return e.version + 1 }
		if err := simWalk("ReadStream("+entity+")", read, 1, ofStream, bad, byVersion, m.differs); err != nil {
			return err
		}
	}
	if len(bad) > 0 {
		return &simEnd{fmt.Sprintf("reads of %d damaged events failed with ErrCorrupt", len(bad))}
	}
	return nil
}

// checkStreams settles deletions that may have gone either way, then
// checks Streams and StreamVersion against the model.
func (r *simRunner) checkStreams(s *eventstore.Store, flexDel map[string]bool) error {
	m := r.m
	live := map[string]uint64{}
	for info := range s.Streams() {
		live[info.Coordinate.Entity] = info.Version
	}
	for e := range flexDel {
		if _, ok := live[e]; !ok {
			if m.version(e) > 0 {
				m.deleted[e] = true
			}
			continue
		}
		if m.deleted[e] {
			// A deletion undone (its tombstone cut with a torn tail): a
			// compaction may have removed the stream's events meanwhile.
			delete(m.deleted, e)
			for _, seq := range m.streams[e] {
				m.mayGo[seq] = true
			}
		}
	}
	for e, seqs := range m.streams {
		v, ok := live[e]
		switch {
		case m.deleted[e] && ok:
			return simFail("visible", "deleted stream %s is listed by Streams", e)
		case !m.deleted[e] && !ok:
			return simFail("missing", "stream %s (version %d) is not listed by Streams", e, len(seqs))
		case ok && (v != uint64(len(seqs)) || s.StreamVersion(simCoord(e)) != v):
			return simFail("different", "stream %s: Streams says version %d, StreamVersion %d, acknowledged %d", e, v, s.StreamVersion(simCoord(e)), len(seqs))
		}
	}
	for e := range live {
		if len(m.streams[e]) == 0 {
			return simFail("phantom", "Streams lists %s, which has no acknowledged event", e)
		}
	}
	return nil
}

// simWalk reads with read(first) and checks that it yields exactly want,
// in order, identical (differs), except that reads of the events in bad
// fail with an error; after an error it resumes with read(next(event)).
func simWalk(what string, read func(uint64) iter.Seq2[batpak.Record, error], first uint64, want []*simEvent,
	bad map[uint64]bool, next func(*simEvent) uint64, differs func(*simEvent, *batpak.Record) string) error {
	i, from := 0, first
	for {
		resumed := false
		for rec, err := range read(from) {
			if i == len(want) {
				if err != nil {
					return simFail("read-error", "%s after the last expected event: %v", what, err)
				}
				return simFail("phantom", "%s yields %s after every expected event", what, rec)
			}
			e := want[i]
			if err != nil {
				if !bad[e.seq] {
					return simFail("read-error", "%s at event %d (%s): %v", what, e.seq, e.tag, err)
				}
				i++
				from, resumed = next(e), true
				break
			}
			if rec.Sequence != e.seq {
				return simFail("missing", "%s yields #%d where event %d (%s, %s v%d) is expected", what, rec.Sequence, e.seq, e.tag, e.entity, e.version)
			}
			if d := differs(e, &rec); d != "" {
				return simFail("different", "%s, event %d (%s): %s", what, e.seq, e.tag, d)
			}
			i++
		}
		if !resumed {
			break
		}
	}
	if i < len(want) {
		e := want[i]
		return simFail("missing", "%s ends before event %d (%s, %s v%d)", what, e.seq, e.tag, e.entity, e.version)
	}
	return nil
}

// adopt settles the requests of a crash step that failed: each is in the
// store whole, right after what was acknowledged, or not at all.
func (r *simRunner) adopt(maybes []*simReq, last uint64) error {
	m, s := r.m, r.s
	next := m.last() + 1
	for _, q := range maybes {
		if q.del != "" || next > last {
			continue
		}
		rec, err := s.GetSequence(context.Background(), next)
		if err != nil {
			return simFail("phantom", "unacknowledged sequence %d: %v", next, err)
		}
		if !bytes.Equal(rec.Payload, q.items[0].payload) {
			continue // this request was not written
		}
		rs := make([]batpak.Receipt, len(q.items))
		for i, it := range q.items {
			rec, err := s.GetSequence(context.Background(), next+uint64(i))
			if err != nil || !bytes.Equal(rec.Payload, it.payload) || rec.Coordinate.Entity != it.entity {
				return simFail("torn-request", "request %s is in the store only in part (event %d: %v)", it.tag, i, err)
			}
			rs[i] = batpak.Receipt{EventID: rec.ID, Sequence: rec.Sequence, Version: rec.Version, Hash: rec.Hash}
		}
		if err := m.accept(q, rs, false); err != nil {
			return err
		}
		r.stats.adopted++
		next += uint64(len(q.items))
	}
	if next <= last {
		return simFail("phantom", "the store has events %d..%d that no request wrote", next, last)
	}
	return nil
}
