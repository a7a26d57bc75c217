package natsstore

import (
	"fmt"
	"strings"

	"github.com/batpak-go/batpak"
)

// Messages that are not events.
//
// Anyone allowed to publish on the store's subjects can put a message into
// its stream that no batpak client wrote: a stray publish, a tool, an
// attacker. Such a message (one whose headers do not decode as an event, or
// an event that breaks its stream's versions or hash chain, or a request
// cut short) cannot be removed, since the stream denies deletes. The index
// skips it: it keeps its sequence in the log as an entry of version 0
// (which no event has), so the sequences of the events around it stay
// theirs, and reads, cursors and subscriptions pass over it. When the
// message was published on a stream's subject (its scope and entity) it
// occupies a sequence of that subject, which the server's
// expected-last-subject-sequence check counts: the index keeps the
// subject's last sequence (subjLast) so that the next append to the stream
// expects it. Each skip is counted
// (Stats.Skipped) and logged; CopyValid copies the events of such a stream
// to a new one without them.

// skipNote describes a skipped message for the log.
type skipNote struct {
	seq     uint64
	subject string
	reason  string
}

// skipped reports whether the entry holds a message that is not an event.
func (e *entry) skipped() bool { return e.version == 0 }

// coord returns the entry's stream: for a skipped message, the stream on
// whose subject it was published (entity "" for none).
func (e *entry) coord() batpak.Coordinate { return batpak.Coordinate{Entity: e.entity, Scope: e.scope} }

// foreignMessage is the index's view of a message that did not decode as
// an event: its sequence, and the stream whose subject it was published
// on (none: entity and scope "").
func foreignMessage(prefix, subject string, seq uint64, err error) event {
	reason := strings.TrimPrefix(err.Error(), fmt.Sprintf("%v: sequence %d: ", ErrInvalidMessage, seq))
	c, _ := subjectStream(prefix, subject)
	return event{seq: seq, entity: c.Entity, scope: c.Scope, subject: subject, invalid: reason, part: 1, parts: 1}
}

// skip takes evs, the messages that follow the last indexed sequence, as
// messages that are not events. Caller holds mu.
func (ix *index) skip(evs []event, reason string) {
	for i := range evs {
		ev := &evs[i]
		// The slot past the published end was never written: all but the
		// stream stays zero, version 0 included.
		en := ix.log.slot(uint64(i))
		en.entity, en.scope = ev.entity, ix.intern(ev.scope)
		if ev.entity != "" {
			ix.subjLast[ev.coord()] = ev.seq
		}
		why := reason
		if ev.invalid != "" {
			why = ev.invalid
		}
		ix.skips = append(ix.skips, skipNote{seq: ev.seq, subject: ev.subject, reason: why})
	}
	ix.log.n += uint64(len(evs))
	ix.skippedN += uint64(len(evs))
	close(ix.notify)
	ix.notify = make(chan struct{})
}

// noteSubjectSeq learns from the server's "wrong last sequence: seq"
// refusal: if the index holds a skipped message at seq on a stream's
// subject, that is the subject's last sequence. skip records it as it
// goes; this covers an index that was not built message by message (one
// loaded from a checkpoint that lacks it).
func (ix *index) noteSubjectSeq(seq uint64) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if seq == 0 || seq > ix.log.len() {
		return
	}
	if e := ix.log.at(seq); e.skipped() && e.entity != "" && ix.subjLast[e.coord()] < seq {
		ix.subjLast[e.coord()] = seq
	}
}

// takeSkips returns the skips noted since the last call.
func (ix *index) takeSkips() []skipNote {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	n := ix.skips
	ix.skips = nil
	return n
}

// skippedCount returns how many messages the index skipped.
func (ix *index) skippedCount() uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.skippedN
}

// check reports the first event of evs (a whole request following the
// last indexed sequence) that breaks its stream's versions or hash chain.
// Caller holds mu.
func (ix *index) check(evs []event) (uint64, string) {
	tips := make(map[batpak.Coordinate]streamState, 1)
	for i := range evs {
		ev := &evs[i]
		c := ev.coord()
		tip, ok := tips[c]
		if !ok {
			if st := ix.streams[c]; st != nil {
				tip = streamState{version: st.version, lastHash: st.lastHash}
			}
		}
		if ev.version != tip.version+1 {
			return ev.seq, fmt.Sprintf("%s version %d after version %d", c, ev.version, tip.version)
		}
		if ev.prev != tip.lastHash {
			return ev.seq, fmt.Sprintf("%s version %d does not link to the hash of version %d", c, ev.version, tip.version)
		}
		tips[c] = streamState{version: ev.version, lastHash: ev.hash}
	}
	return 0, ""
}
