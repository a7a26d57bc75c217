package eventstore

import (
	"fmt"
	"sync"

	"github.com/batpak-go/batpak/segment"
)

// prepStep is how many published events wake the footer preparer: the
// seal of a segment encodes at most about this many entries itself.
const prepStep = 8192

// footerPrep encodes the active segment's footer index as its events are
// published, in a goroutine of its own, so that sealing a segment does not
// hold up the appends behind it while it encodes every entry: a segment of
// 200,000 events took 0.4-0.7 s to seal that way. The footer is still
// written, whole, by the seal; only its encoding is done ahead.
type footerPrep struct {
	wake chan struct{} // a send asks for the published events to be added
	quit chan struct{} // closed by stop
	done chan struct{} // closed when the goroutine has exited

	// mu is held by whoever adds entries (the goroutine, or the seal) and
	// by rotate and resume while they start a segment; it protects the
	// fields below.
	mu       sync.Mutex
	b        *segment.IndexBuilder
	next     uint64 // the next sequence to add
	first    uint64 // the segment's first sequence
	metaFrom uint64 // the pipeline's metaFrom: events before it are read from their frames
	// touched holds the streams with events in the segment, with their
	// names in b.Strings, for the tails.
	touched map[uint32]segment.StreamRef
	err     error // why the goroutine stopped adding; the seal tries again
}

func newFooterPrep() *footerPrep {
	return &footerPrep{wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
}

// reset starts the footer of a segment whose events start at first, of
// which the pipeline publishes those from metaFrom on. Caller holds mu.
func (f *footerPrep) reset(first, metaFrom uint64) {
	f.b, f.next, f.first, f.metaFrom = new(segment.IndexBuilder), first, first, metaFrom
	f.touched, f.err = make(map[uint32]segment.StreamRef), nil
}

// run adds the published events when woken, until quit.
func (f *footerPrep) run(p *commitPipeline) {
	defer close(f.done)
	for {
		select {
		case <-f.wake:
			f.mu.Lock()
			if f.err == nil {
				f.err = f.add(p)
			}
			f.mu.Unlock()
		case <-f.quit:
			return
		}
	}
}

// poke wakes the goroutine if the sequences from through to, just
// published, end a step.
func (f *footerPrep) poke(from, to uint64) {
	if (from-1)/prepStep != to/prepStep {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// stop ends the goroutine, if it was started, and waits for it.
func (f *footerPrep) stop(started bool) {
	close(f.quit)
	if started {
		<-f.done
	}
}

// add encodes the events published since the last add. Caller holds mu.
func (f *footerPrep) add(p *commitPipeline) error {
	ix := p.env.ix
	ix.mu.RLock()
	v, metas := view{entryLog: ix.entries, streams: ix.streams}, p.activeMetas
	ix.mu.RUnlock()
	for ; f.next <= v.len(); f.next++ {
		seq := f.next
		var m eventMeta
		if seq < f.metaFrom {
			var err error
			if m, err = p.env.metaAt(&v, seq); err != nil {
				return err
			}
		} else {
			m = *metas.at(int(seq - f.metaFrom))
		}
		e := v.at(seq)
		ref, ok := f.touched[e.Stream]
		if !ok {
			id := v.streams.id(v.streams.at(e.Stream))
			ref = segment.StreamRef{Entity: f.b.Strings.ID(id.entity), Scope: f.b.Strings.ID(id.scope)}
			f.touched[e.Stream] = ref
		}
		f.b.Add(&segment.IndexEntry{
			Seq: seq, Version: m.version, Timestamp: m.ts, ID: m.id, Correlation: m.corr, Causation: m.cause,
			Kind: e.Kind, Flags: e.Flags, Entity: ref.Entity, Scope: ref.Scope,
			Segment: e.Pos.Segment, Offset: e.Pos.Offset, Length: e.Pos.Length,
		})
	}
	return nil
}

// sealActive writes the active segment's footer: the entries the
// goroutine has not added yet, the tails, keys and deleted streams.
// Caller holds the commit mutex and f.mu, and nothing is being published.
func (f *footerPrep) sealActive(p *commitPipeline) error {
	if err := f.add(p); err != nil {
		return err
	}
	ix := p.env.ix
	// An index opened from a checkpoint that covers part of the segment
	// may still hold the checkpoint's hashes of its streams.
	err := ix.rereadHashes(func(yield func(*stream) bool) {
		for si := range f.touched {
			if !yield(ix.streams.at(si)) {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if want := ix.lastSeq() + 1 - f.first; uint64(f.b.Len()) != want {
		return fmt.Errorf("footer of %d events, %d known", want, f.b.Len())
	}
	rest := &segment.Index{Keys: p.activeKeys, Tails: make([]segment.StreamTail, 0, len(f.touched))}
	for si, ref := range f.touched {
		st := ix.streams.at(si)
		h, ok := ix.streams.lastHash(st)
		if !ok { // rereadHashes replaced it
			return fmt.Errorf("footer: the last hash of %v: its checkpoint chunk is damaged", ref)
		}
		rest.Tails = append(rest.Tails, segment.StreamTail{Entity: ref.Entity, Scope: ref.Scope, Version: st.version(), LastHash: h})
	}
	rest.Deleted = ix.deletedRefs(nil, &f.b.Strings)
	return p.w.SealBuilt(f.b, rest)
}
