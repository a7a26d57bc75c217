package eventstore

import (
	"context"
	"runtime"
	"slices"
	"sync"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/internal/ctxerr"
	"github.com/batpak-go/batpak/segment"
)

// Replay reads ahead of its consumer: producer goroutines scan the segments
// (check each frame's CRC, decode it, build the record, filter it) and hand
// batches of records over bounded channels, so that scanning runs on another
// core while the consumer works on the records before. With two producers,
// each scans every other segment, and the consumer takes the segments' batches
// back in order.
//
// What the consumer sees does not change: the same records in the same order,
// and an error after every record before it. Two checks stay with the
// consumer, made just before a record is yielded, because they follow the
// moment of reading rather than of scanning: whether the record's stream has
// been deleted since (a deletion hides its events from every read at once),
// and the opening of a sealed payload (after Forget returns, no read opens
// it). A record owns its bytes (the scanner copies them out of the read
// buffer, or of the mapping it falls back to), so a producer closes a
// segment's file and mapping as soon as it has scanned it.
const (
	// readAheadMax is the most segments scanned at once: two keep two
	// cores busy (one scanning while the other scans or consumes).
	readAheadMax = 2
	// readAheadBatch is the most records in a batch; the first batches of
	// each producer are smaller (readAheadFirst, doubling), so the first
	// records reach the consumer soon.
	readAheadBatch = 256
	readAheadFirst = 16
	// readAheadDepth is how many batches of a producer may wait for the
	// consumer: the read-ahead is bounded by producers × (depth + 1)
	// batches.
	readAheadDepth = 4
	// readAheadBelow is the shortest range worth the goroutines: below it
	// Replay scans in the reading goroutine.
	readAheadBelow = 1024
)

// readAheadProducers returns how many producers Replay starts for the
// events [from, from+n) in segments first to end, or 0 to scan inline: on
// one core, or for a range too short to overlap anything.
func readAheadProducers(first, end uint32, n uint64) int {
	procs := runtime.GOMAXPROCS(0)
	if procs < 2 || n < readAheadBelow {
		return 0
	}
	return int(min(uint64(readAheadMax), uint64(end-first)+1))
}

// aheadRecord is a record ready for the consumer, with its stream.
type aheadRecord struct {
	rec batpak.Record
	st  *stream
}

// aheadBatch is a run of records of one segment, in order.
type aheadBatch struct {
	recs     []aheadRecord
	end      bool  // the segment's last batch
	err      error // after recs: the replay ends with it
	panicked any   // what the producer panicked with
}

// producer scans the segments first+k, first+k+n, ... up to end and sends
// their batches on out, reusing those the consumer returns on free.
type producer struct {
	out  chan *aheadBatch
	free chan *aheadBatch
}

// replayAhead is Replay with n producers; see the top of this file.
func (s *Store) replayAhead(ctx context.Context, region batpak.Region, from, last uint64, first, end uint32, n int, yield func(batpak.Record, error) bool) {
	region.Kinds = slices.Clone(region.Kinds) // read by the producers
	stop := make(chan struct{})
	var wg sync.WaitGroup
	ps := make([]producer, n)
	for k := range ps {
		p := &ps[k]
		p.out = make(chan *aheadBatch, readAheadDepth)
		p.free = make(chan *aheadBatch, readAheadDepth+2)
		wg.Go(func() { s.produce(ctx, region, from, last, first+uint32(k), end, uint32(n), p, stop) })
	}
	// Every producer has exited, and released its mapping, before the
	// iteration ends, however it ends.
	defer func() {
		close(stop)
		wg.Wait()
	}()
	for id := first; id <= end; {
		p := &ps[(id-first)%uint32(n)]
		b := <-p.out
		if b.panicked != nil {
			panic(b.panicked)
		}
		for i := range b.recs {
			a := &b.recs[i]
			if err := ctxerr.Of(ctx); err != nil {
				yield(batpak.Record{}, err)
				return
			}
			if a.st.isDeleted() {
				continue
			}
			r, err := s.readable(a.rec)
			if !yield(r, err) || err != nil {
				return
			}
		}
		if b.err != nil {
			yield(batpak.Record{}, s.readFailed(b.err))
			return
		}
		if b.end {
			id++
		}
		b.recs, b.end = b.recs[:0], false
		select {
		case p.free <- b:
		default:
		}
	}
}

// produce is one producer: it scans the segments id, id+step, ... up to
// end and sends each one's records in batches, the last with end set, until
// the range ends, an error (sent in the batch after the records before it),
// or stop.
func (s *Store) produce(ctx context.Context, region batpak.Region, from, last uint64, id, end, step uint32, p *producer, stop <-chan struct{}) {
	size := readAheadFirst
	var b *aheadBatch
	send := func() bool {
		select {
		case p.out <- b:
			b = nil
			return true
		case <-stop:
			return false
		}
	}
	defer func() {
		if v := recover(); v != nil {
			b = &aheadBatch{panicked: v}
			send()
		}
	}()
	next := func() {
		select {
		case b = <-p.free:
		default:
			b = &aheadBatch{recs: make([]aheadRecord, 0, readAheadBatch)}
		}
	}
	done := ctx.Done()
	for ; id <= end; id += step {
		next()
		more, err := s.replaySegment(id, from, last, func(rec *segment.Record, pos segment.Position, st *stream) bool {
			select {
			case <-stop:
				return false
			case <-done:
				b.err = ctxerr.Of(ctx)
				return false
			default:
			}
			r := s.record(rec, pos)
			if !region.Match(&r) {
				return true
			}
			b.recs = append(b.recs, aheadRecord{rec: r, st: st})
			if len(b.recs) < size {
				return true
			}
			size = min(2*size, readAheadBatch)
			if !send() {
				return false
			}
			next()
			return true
		})
		if err != nil {
			b.err = err
		}
		if b.err != nil {
			send()
			return
		}
		if !more {
			return // stopped
		}
		b.end = true
		if !send() {
			return
		}
		if id > end-step { // id+step would overflow or pass end
			return
		}
	}
}
