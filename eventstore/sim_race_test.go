package eventstore_test

// The simulation's concurrent steps and its read-only store (see
// sim_test.go). Scheduling is not deterministic: these steps run their
// goroutines to the end and the invariant is checked afterwards; the seed
// still fixes what they do.

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
)

// simRO is a read-only store opened alongside the writer, with what the
// model said at its open: it must go on showing those events (it "sees the
// events durable at the time of opening").
type simRO struct {
	s      *eventstore.Store
	last   uint64
	shown  map[uint64]*simEvent // visible at open
	either map[uint64]*simEvent // a policy may have removed it before the open
	turn   int                  // which stream the next partial check reads
}

func (r *simRunner) openRO() error {
	if err := r.closeRO(); err != nil {
		return err
	}
	s, err := eventstore.OpenReadOnly(r.dir)
	if err != nil {
		return simFail("ro-open", "OpenReadOnly: %v", err)
	}
	ro := &simRO{s: s, last: r.m.last(), shown: map[uint64]*simEvent{}, either: map[uint64]*simEvent{}}
	for _, e := range r.m.events {
		switch {
		case r.m.hidden(e):
		case r.m.mayGo[e.seq]:
			ro.either[e.seq] = e
		default:
			ro.shown[e.seq] = e
		}
	}
	r.ro = ro
	return nil
}

// closeRO checks the read-only store in full and closes it.
func (r *simRunner) closeRO() error {
	if r.ro == nil {
		return nil
	}
	err := r.checkRO(true)
	_ = r.ro.s.Close()
	r.ro = nil
	return err
}

// kept reports whether the model still shows event e for sure.
func (m *simModel) kept(e *simEvent) bool { return !m.hidden(e) && !m.mayGo[e.seq] }

// checkRO checks the read-only store: every event it showed at its open
// that the writer still keeps reads identical (Get, ReadAll, ReadStream);
// one deleted or removed since may read identical or fail, never differ;
// nothing else is visible. Unless full, only one stream is read (the next
// in turn), as a reader alongside a writer reads some streams: the
// segments it has not touched yet are those a compaction can pull from
// under it.
func (r *simRunner) checkRO(full bool) error {
	ro, m := r.ro, r.m
	if ro == nil {
		return nil
	}
	r.stats.roChecks++
	if n := ro.s.LastSequence(); n != ro.last {
		return simFail("ro-read", "read-only LastSequence %d, %d at its open", n, ro.last)
	}
	only := ""
	if !full {
		entities := slices.Sorted(maps.Keys(m.streams))
		if len(entities) == 0 {
			return nil
		}
		ro.turn++
		only = entities[ro.turn%len(entities)]
	}
	var want []*simEvent
	bad := map[uint64]bool{}
	for seq := uint64(1); seq <= ro.last; seq++ {
		e := m.events[seq-1]
		if only != "" && e.entity != only {
			continue
		}
		rec, err := ro.s.Get(context.Background(), e.id)
		atOpen := ro.shown[seq] != nil || ro.either[seq] != nil
		switch {
		case err == nil && atOpen:
			if d := simDiffers(e, &rec); d != "" {
				return simFail("ro-read", "read-only Get(event %d, %s): %s", seq, e.tag, d)
			}
			want = append(want, e)
		case err == nil:
			return simFail("ro-read", "read-only Get shows event %d (%s), hidden when it opened", seq, e.tag)
		case errors.Is(err, batpak.ErrNotFound) && (!atOpen || ro.either[seq] != nil):
		case !atOpen && errors.Is(err, batpak.ErrCorrupt) && len(m.corrupt) > 0:
			// Hidden, and Get cannot tell it from the damaged visible
			// events around its place (the index keeps no ids).
		case ro.shown[seq] != nil && m.kept(e):
			return simFail("ro-read", "read-only Get(event %d, %s %s v%d) of a kept stream: %v", seq, e.tag, e.entity, e.version, err)
		case atOpen: // deleted or removed by the writer since the open
			bad[seq] = true
			want = append(want, e)
		default:
			return simFail("ro-read", "read-only Get(event %d, %s): %v", seq, e.tag, err)
		}
	}
	from := func(e *simEvent) uint64 { return e.seq + 1 }
	if full {
		if err := simWalk("read-only ReadAll", func(from uint64) iter.Seq2[batpak.Record, error] { return ro.s.ReadAll(context.Background(), from) }, 1, want, bad, from, simDiffers); err != nil {
			return err
		}
	}
	for entity := range m.streams {
		if only != "" && entity != only {
			continue
		}
		ofStream := slices.DeleteFunc(slices.Clone(want), func(e *simEvent) bool { return e.entity != entity })
		read := func(v uint64) iter.Seq2[batpak.Record, error] {
			return ro.s.ReadStream(context.Background(), simCoord(entity), v)
		}
		byVersion := func(e *simEvent) uint64 { return e.version + 1 }
		if err := simWalk("read-only ReadStream("+entity+")", read, 1, ofStream, bad, byVersion, simDiffers); err != nil {
			return err
		}
	}
	return nil
}

// group sends the step's appends at once from as many goroutines: some
// fail their expected version, which must not take the others down.
func (r *simRunner) group(st *simStep) error {
	errs := make([]error, len(st.Do))
	var wg sync.WaitGroup
	for i := range st.Do {
		wg.Go(func() { errs[i] = r.request(&st.Do[i], true) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// raceCompact compacts in a loop, dropping DropEntity's events, while two
// goroutines append N events each to Entity and DropEntity, so that
// segments rotate under the compaction.
func (r *simRunner) raceCompact(st *simStep) error {
	if r.s == nil {
		return nil
	}
	r.stats.races++
	r.slow.Store(true)
	defer r.slow.Store(false)
	s := r.s
	var done atomic.Bool
	var compactErr error
	started := make(chan struct{})
	start := sync.OnceFunc(func() { close(started) })
	var wg sync.WaitGroup
	wg.Go(func() {
		defer start()
		for n := 0; n == 0 || !done.Load(); n++ {
			if _, err := s.Compact(context.Background(), eventstore.RetainIf(simRetained(0, st.DropEntity))); err != nil {
				compactErr = err
				return
			}
			start()
			time.Sleep(200 * time.Microsecond) // leave the appenders some of the two cores
		}
	})
	<-started // the appends rotate (or create the first active segment) while compactions run
	appendErrs := make([]error, 2)
	var appenders sync.WaitGroup
	for j, entity := range []string{st.Entity, st.DropEntity} {
		appenders.Go(func() {
			for i := range st.N {
				a := simStep{Op: simAppend, Tag: fmt.Sprintf("%s.%d.%d", st.Tag, j, i), Entity: entity, N: 1, Pad: st.Pad, Class: 1}
				if err := r.request(&a, true); err != nil {
					appendErrs[j] = err
					return
				}
			}
		})
	}
	appenders.Wait()
	done.Store(true)
	wg.Wait()
	r.m.compacted(0, st.DropEntity)
	if err := errors.Join(appendErrs...); err != nil {
		return err
	}
	if compactErr != nil {
		return simFail("compact-error", "Compact racing appends: %v", compactErr)
	}
	return nil
}

// raceRead opens a read-only store and reads Entity's stream in a loop
// while the writer appends to it, deletes DropEntity, compacts and appends
// again. Every event the reader yields must be one it had at its open,
// identical; a read may fail only at an event the writer deleted or
// removed meanwhile. The read-only store stays open for the next steps.
func (r *simRunner) raceRead(st *simStep) error {
	if r.s == nil {
		return nil
	}
	r.stats.races++
	if err := r.openRO(); err != nil || r.ro == nil {
		return err
	}
	ro := r.ro
	type failure struct {
		after uint64 // the last sequence read before err
		err   error
	}
	var done atomic.Bool
	var readFails []failure
	var readBad error
	var wg sync.WaitGroup
	wg.Go(func() {
		for n := 0; n < 2 || !done.Load(); n++ {
			var after uint64
			for rec, err := range ro.s.Query(context.Background(), batpak.Region{Entity: st.Entity}) {
				if err != nil {
					readFails = append(readFails, failure{after, err})
					break
				}
				e := ro.shown[rec.Sequence]
				if e == nil {
					e = ro.either[rec.Sequence]
				}
				if e == nil {
					readBad = simFail("ro-read", "read-only Query yields #%d, hidden or absent at its open", rec.Sequence)
					return
				}
				if d := simDiffers(e, &rec); d != "" {
					readBad = simFail("ro-read", "read-only Query, event %d (%s): %s", e.seq, e.tag, d)
					return
				}
				after = rec.Sequence
			}
			time.Sleep(200 * time.Microsecond) // leave the writer some of the two cores
		}
	})
	err := r.raceWriter(st)
	done.Store(true)
	wg.Wait()
	if err != nil {
		return err
	}
	if readBad != nil {
		return readBad
	}
	for _, f := range readFails {
		// The read failed at the next event of the stream visible at the
		// open after f.after (or at one a policy may have removed before).
		ok := false
		for seq := f.after + 1; seq <= ro.last && !ok; seq++ {
			e := r.m.events[seq-1]
			switch {
			case e.entity != st.Entity:
			case ro.either[seq] != nil:
				ok = !r.m.kept(e)
			case ro.shown[seq] != nil:
				if ok = !r.m.kept(e); !ok {
					return simFail("ro-read", "read-only Query(%s) alongside the writer, at event %d (%s v%d) of a kept stream: %v",
						st.Entity, seq, e.tag, e.version, f.err)
				}
			}
		}
		if !ok {
			return simFail("ro-read", "read-only Query(%s) after #%d: %v", st.Entity, f.after, f.err)
		}
	}
	return nil
}

// raceWriter is the writer's side of raceRead.
func (r *simRunner) raceWriter(st *simStep) error {
	for i := range st.N {
		a := simStep{Op: simAppend, Tag: fmt.Sprintf("%s.a%d", st.Tag, i), Entity: st.Entity, N: 1 + i%2, Pad: st.Pad, Class: 1 + i%3}
		if err := r.request(&a, false); err != nil {
			return err
		}
	}
	if st.DropEntity != "" {
		if err := r.request(&simStep{Op: simDelete, Tag: st.Tag + ".d", Entity: st.DropEntity}, false); err != nil {
			return err
		}
	}
	if err := r.compact(&simStep{Op: simCompact, Drop: 3}); err != nil {
		return err
	}
	for i := range st.N / 2 {
		a := simStep{Op: simAppend, Tag: fmt.Sprintf("%s.b%d", st.Tag, i), Entity: st.Entity, N: 1, Pad: st.Pad, Class: 2}
		if err := r.request(&a, false); err != nil {
			return err
		}
	}
	return nil
}
