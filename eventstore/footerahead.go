package eventstore

import (
	"github.com/batpak-go/batpak/segment"
)

// footersAhead reads and decodes the footers of the sealed segments a
// recovery loads, one after the other, on a goroutine of its own, a few
// segments ahead of the recovery: decoding a footer is about half the work
// of loading it, and the index can only take the footers in order. What it
// decoded is only a head start: a footer it could not read is read again
// by the recovery, which decides what to do with it.
type footersAhead struct {
	ids     []uint32
	results []chan *segment.Index // one per id: its footer, or nil
	room    chan struct{}         // a token per footer decoded and not yet taken
	stop    chan struct{}
	done    chan struct{}
	taken   int // how many of ids were taken
}

// aheadFooters is how many decoded footers wait for the recovery at most.
const aheadFooters = 2

// readFootersAhead starts reading the footers of ids, in order.
func (s *Store) readFootersAhead(ids []uint32) *footersAhead {
	a := &footersAhead{ids: ids, results: make([]chan *segment.Index, len(ids)),
		room: make(chan struct{}, aheadFooters), stop: make(chan struct{}), done: make(chan struct{})}
	for i := range a.results {
		a.results[i] = make(chan *segment.Index, 1)
	}
	go func() {
		defer close(a.done)
		for i, id := range ids {
			select {
			case <-a.stop:
				return
			default:
			}
			select {
			case a.room <- struct{}{}:
			case <-a.stop:
				return
			}
			a.results[i] <- s.readFooter(id)
		}
	}()
	return a
}

// readFooter returns the footer of segment id, or nil if it cannot read
// it (the recovery then reads it itself).
func (s *Store) readFooter(id uint32) (ix *segment.Index) {
	path := s.segmentPath(id)
	var err error
	var data []byte
	// A read-only store's segment may be cut by its writer under the
	// mapping: the fault is caught and the recovery reads the footer.
	defer segment.RecoverFault(segment.GuardFaults(), &err, segment.Mapping{Data: &data, FS: s.fs, Path: path})
	data, release, err := segment.MapFile(s.fs, path)
	if err != nil {
		return nil
	}
	defer func() { _ = release() }()
	// The recovery checks the header's version before it uses the footer.
	ix, _, err = segment.ReadFooter(data, id)
	if err != nil {
		return nil
	}
	return ix
}

// take returns the footer of segment id, the next of the ids it was
// started with not yet taken, or nil. Segments are taken in order; one
// that is not (the recovery does not load it from its footer) gets nil.
func (a *footersAhead) take(id uint32) *segment.Index {
	for a.taken < len(a.ids) && a.ids[a.taken] < id {
		<-a.results[a.taken]
		<-a.room
		a.taken++
	}
	if a.taken == len(a.ids) || a.ids[a.taken] != id {
		return nil
	}
	ix := <-a.results[a.taken]
	<-a.room
	a.taken++
	return ix
}

// close stops reading ahead and waits for the goroutine.
func (a *footersAhead) close() {
	close(a.stop)
	<-a.done
}
