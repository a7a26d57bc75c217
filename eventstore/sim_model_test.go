package eventstore_test

// The simulation's model (see sim_test.go): every acknowledged event with
// its receipt, which streams are deleted, which idempotency keys are
// committed, and what compaction or damage may have taken. It predicts each
// request's outcome before the runner sends it and settles the answer.

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/google/uuid"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

var simKind = kind.Custom(2, 9)

const simScope = "sim"

func simCoord(entity string) batpak.Coordinate {
	return batpak.Coordinate{Entity: entity, Scope: simScope}
}

// simPayload is every simulated event's payload; Class drives retention.
type simPayload struct {
	Tag   string `msgpack:"t"`
	Class int    `msgpack:"c"`
	Pad   []byte `msgpack:"p"`
}

// simPayloadBytes is the payload of event i of a step. The runner appends
// it raw, so a read must return exactly these bytes.
func simPayloadBytes(tag string, i, class, pad int) []byte {
	p := simPayload{Tag: fmt.Sprintf("%s.%d", tag, i), Class: class, Pad: bytes.Repeat([]byte{byte('a' + i%26)}, pad)}
	b, err := msgpack.Marshal(&p)
	if err != nil {
		panic(err)
	}
	return b
}

// simEvent is an acknowledged event as its receipt and request describe it.
type simEvent struct {
	seq, version uint64
	id           uuid.UUID
	entity       string
	hash         [32]byte
	payload      []byte
	class        int
	tag          string
}

// simItem is one event of a request as the runner sends it.
type simItem struct {
	entity  string
	payload []byte
	class   int
	tag     string
	expect  batpak.ExpectedVersion
}

type simOutcome uint8

const (
	simOK            simOutcome = iota
	simConflict                 // ErrVersionConflict, nothing written
	simDeletedStream            // ErrStreamDeleted, nothing written
	simRetry                    // the key's original receipts
	simRetryGone                // the key's events are deleted: ErrNotFound
	simRetryMaybe               // a policy may have removed some of the key's events: either
	simNotFound                 // DeleteStream of a stream that never had events
)

// simReq is a request and its predicted outcome.
type simReq struct {
	items   []simItem
	key     string
	del     string // DeleteStream of this stream
	outcome simOutcome
	retry   []uint64 // simRetry*: the key's sequences
}

type simModel struct {
	mu      sync.Mutex  // concurrent steps settle appends from several goroutines
	events  []*simEvent // event seq at seq-1; nil until a concurrent append's receipt is settled
	streams map[string][]uint64
	deleted map[string]bool
	keys    map[string][]uint64
	gone    map[uint64]bool // a compaction removed it (seen absent)
	mayGo   map[uint64]bool // a retention policy may have removed it
	corrupt map[uint64]bool // damaged: a read may fail with ErrCorrupt
}

func newSimModel() *simModel {
	return &simModel{streams: map[string][]uint64{}, deleted: map[string]bool{}, keys: map[string][]uint64{},
		gone: map[uint64]bool{}, mayGo: map[uint64]bool{}, corrupt: map[uint64]bool{}}
}

// clone copies the model (events are never changed once made).
func (m *simModel) clone() *simModel {
	c := &simModel{events: slices.Clone(m.events), streams: map[string][]uint64{}, deleted: maps.Clone(m.deleted),
		keys: maps.Clone(m.keys), gone: maps.Clone(m.gone), mayGo: maps.Clone(m.mayGo), corrupt: maps.Clone(m.corrupt)}
	for e, seqs := range m.streams {
		c.streams[e] = slices.Clone(seqs)
	}
	return c
}

func (m *simModel) last() uint64 { return uint64(len(m.events)) }

func (m *simModel) version(entity string) uint64 { return uint64(len(m.streams[entity])) }

// hidden reports whether no read may show event e: its stream is deleted
// or a compaction removed it.
func (m *simModel) hidden(e *simEvent) bool { return m.deleted[e.entity] || m.gone[e.seq] }

// expectFor turns a step's relative expectation into an ExpectedVersion.
func (m *simModel) expectFor(entity string, x simExpect) batpak.ExpectedVersion {
	v := m.version(entity)
	switch x {
	case simRight:
		return batpak.Exactly(v)
	case simWrong:
		return batpak.Exactly(v + 7)
	case simNoStream:
		return batpak.NoStream
	}
	return batpak.Any
}

// request builds the request of an append, batch or delete step and
// predicts its outcome from the model.
func (m *simModel) request(st *simStep) *simReq {
	q := &simReq{key: st.Key}
	switch st.Op {
	case simDelete:
		q.del = st.Entity
		if m.version(st.Entity) == 0 {
			q.outcome = simNotFound
		}
		return q
	case simBatch:
		for i, e := range st.Entities {
			it := simItem{entity: e, payload: simPayloadBytes(st.Tag, i, st.Class, st.Pad), class: st.Class, tag: st.Tag, expect: batpak.Any}
			if st.Fail == i+1 {
				it.expect = batpak.Exactly(m.version(e) + uint64(len(st.Entities)) + 7)
			}
			q.items = append(q.items, it)
		}
	default:
		for i := range max(st.N, 1) {
			q.items = append(q.items, simItem{entity: st.Entity, payload: simPayloadBytes(st.Tag, i, st.Class, st.Pad),
				class: st.Class, tag: st.Tag, expect: batpak.Any})
		}
		q.items[0].expect = m.expectFor(st.Entity, st.Expect)
	}
	if seqs, ok := m.keys[st.Key]; ok && st.Key != "" {
		q.retry, q.outcome = seqs, simRetry
		for _, seq := range seqs {
			switch e := m.events[seq-1]; {
			case m.hidden(e):
				q.outcome = simRetryGone
			case m.mayGo[seq] && q.outcome == simRetry:
				q.outcome = simRetryMaybe
			}
		}
		return q
	}
	local := map[string]uint64{}
	for _, it := range q.items {
		v, ok := local[it.entity]
		if !ok {
			v = m.version(it.entity)
		}
		switch {
		case m.deleted[it.entity]:
			q.outcome = simDeletedStream
			return q
		case !it.expect.Accepts(v):
			q.outcome = simConflict
			return q
		}
		local[it.entity] = v + 1
	}
	return q
}

// accept records the events of an acknowledged request. With concurrent
// set, other requests may be settled in any order, so the sequences are
// only checked to be new; versions are still predictable, since concurrent
// steps never share a stream.
func (m *simModel) accept(q *simReq, rs []batpak.Receipt, concurrent bool) error {
	if len(rs) != len(q.items) {
		return simFail("append-outcome", "%d receipts for %d events", len(rs), len(q.items))
	}
	local := map[string]uint64{}
	seqs := make([]uint64, len(rs))
	for i, it := range q.items {
		v, ok := local[it.entity]
		if !ok {
			v = m.version(it.entity)
		}
		local[it.entity] = v + 1
		r := rs[i]
		want := m.last() + 1
		if concurrent {
			want = r.Sequence
		}
		if r.Sequence != want || r.Sequence == 0 || r.Version != v+1 || r.EventID == uuid.Nil {
			return simFail("append-outcome", "receipt %d of %s.%d: sequence %d version %d, want sequence %d version %d",
				i, it.tag, i, r.Sequence, r.Version, want, v+1)
		}
		if n := int(r.Sequence); n > len(m.events) {
			m.events = append(m.events, make([]*simEvent, n-len(m.events))...)
		} else if m.events[n-1] != nil {
			return simFail("append-outcome", "sequence %d handed out twice", r.Sequence)
		}
		m.events[r.Sequence-1] = &simEvent{seq: r.Sequence, version: r.Version, id: r.EventID, entity: it.entity, hash: r.Hash,
			payload: it.payload, class: it.class, tag: fmt.Sprintf("%s.%d", it.tag, i)}
		m.streams[it.entity] = append(m.streams[it.entity], r.Sequence)
		seqs[i] = r.Sequence
	}
	if q.key != "" {
		m.keys[q.key] = seqs
	}
	return nil
}

// settle checks a request's answer against its prediction and records it.
// Inside a crash step an error may mean anything, so a request that could
// have been written becomes a maybe (returned) for the next open to settle.
func (m *simModel) settle(q *simReq, rs []batpak.Receipt, err error, crashing, concurrent bool) (maybe bool, fail error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil && crashing {
		return q.outcome == simOK, nil
	}
	what := "append"
	if q.del != "" {
		what = "delete " + q.del
	}
	bad := func(want string) error {
		return simFail("append-outcome", "%s (%s): want %s, got receipts %v, error %v", what, q.tagName(), want, len(rs), err)
	}
	switch q.outcome {
	case simOK:
		if err != nil {
			return false, bad("success")
		}
		if q.del != "" {
			m.deleted[q.del] = true
			return false, nil
		}
		return false, m.accept(q, rs, concurrent)
	case simConflict:
		if !errors.Is(err, batpak.ErrVersionConflict) {
			return false, bad("ErrVersionConflict")
		}
	case simDeletedStream:
		if !errors.Is(err, batpak.ErrStreamDeleted) {
			return false, bad("ErrStreamDeleted")
		}
	case simNotFound, simRetryGone:
		if !errors.Is(err, batpak.ErrNotFound) {
			return false, bad("ErrNotFound")
		}
	case simRetry, simRetryMaybe:
		if q.outcome == simRetryMaybe && errors.Is(err, batpak.ErrNotFound) {
			return false, nil
		}
		if err != nil || len(rs) != len(q.retry) {
			return false, bad(fmt.Sprintf("the %d original receipts", len(q.retry)))
		}
		for i, seq := range q.retry {
			e := m.events[seq-1]
			if r := rs[i]; r.Sequence != seq || r.EventID != e.id || r.Version != e.version || r.Hash != e.hash {
				return false, simFail("append-outcome", "retry of key %s: receipt %d is sequence %d version %d, the original was %d version %d",
					q.key, i, r.Sequence, r.Version, seq, e.version)
			}
		}
	}
	return false, nil
}

func (q *simReq) tagName() string {
	if len(q.items) > 0 {
		return q.items[0].tag
	}
	return "tombstone"
}

// retained is a compaction's retention policy.
func simRetained(dropClass int, dropEntity string) func(*batpak.Record) bool {
	return func(rec *batpak.Record) bool {
		if rec.Coordinate.Entity == dropEntity {
			return false
		}
		var p simPayload
		return dropClass == 0 || rec.Decode(&p) != nil || p.Class != dropClass
	}
}

// compacted marks the events a policy may have removed (those acknowledged
// before the compaction ended; which of them lay in sealed segments is the
// store's business).
func (m *simModel) compacted(dropClass int, dropEntity string) {
	for _, e := range m.events {
		if e != nil && !m.hidden(e) && (e.entity == dropEntity || dropClass != 0 && e.class == dropClass) {
			m.mayGo[e.seq] = true
		}
	}
}

// truncate forgets every event after last: a cut the damage verdict
// allowed. Keys of lost requests are forgotten with them.
func (m *simModel) truncate(last uint64) {
	m.events = m.events[:last]
	for e, seqs := range m.streams {
		seqs = slices.DeleteFunc(seqs, func(s uint64) bool { return s > last })
		if len(seqs) == 0 {
			delete(m.streams, e)
			delete(m.deleted, e)
		} else {
			m.streams[e] = seqs
		}
	}
	for k, seqs := range m.keys {
		if seqs[len(seqs)-1] > last {
			delete(m.keys, k)
		}
	}
	for _, set := range []map[uint64]bool{m.gone, m.mayGo, m.corrupt} {
		for seq := range set {
			if seq > last {
				delete(set, seq)
			}
		}
	}
}

// afterCrash: a compaction's rename that was not followed by a directory
// sync may be undone by a power loss, so removed events may come back.
func (m *simModel) afterCrash() {
	for seq := range m.gone {
		m.mayGo[seq] = true
	}
	clear(m.gone)
}
