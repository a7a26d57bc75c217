package eventstore

import (
	"iter"
	"runtime"
	"sync"

	"github.com/batpak-go/batpak"
)

// Decoded is an event together with the value its payload decoded to.
type Decoded[T any] struct {
	batpak.Record
	Value T
}

// decodeBatchSize is how many events a worker decodes at a time.
const decodeBatchSize = 256

// decodeBatch is a run of consecutive events of the source, decoded by one
// worker.
type decodeBatch[T any] struct {
	items    []Decoded[T]
	srcErr   error // what the source yielded after items, if anything
	err      error // the first error, once decoded: of decode, or srcErr
	errAt    int   // the events before it are delivered, once decoded
	panicked any   // what decode panicked with, if it did
	done     chan struct{}
}

// DecodeParallel yields the events of src in src's order, each with the
// value decode returned for it. decode runs in worker goroutines (workers;
// 0 or less: GOMAXPROCS) on batches of events read ahead of the consumer,
// so that decoding the payloads of a long read such as [Store.Replay] uses
// every core while the events still arrive strictly in order. decode must
// be safe to call from several goroutines at once; a Record it is given is
// not shared.
//
// An error from src or decode is yielded after the events before it and
// ends the sequence; a panic in decode is raised again in the consumer.
// Breaking out of the loop stops src and the workers, and waits for them,
// before the loop ends.
func DecodeParallel[T any](src iter.Seq2[batpak.Record, error], workers int, decode func(*batpak.Record) (T, error)) iter.Seq2[Decoded[T], error] {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return func(yield func(Decoded[T], error) bool) {
		// The consumer's goroutine reads src into batches, hands them to
		// the workers and, once readAhead are under way, yields the oldest
		// when it is decoded. No more than readAhead batches exist, so
		// sending one to the workers never blocks.
		readAhead := 2*workers + 2
		work := make(chan *decodeBatch[T], readAhead)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for b := range work {
					b.decode(decode, stop)
					b.done <- struct{}{}
				}
			})
		}
		defer func() {
			close(stop)
			close(work)
			wg.Wait()
		}()
		var pending, spare []*decodeBatch[T] // pending in src's order
		var cur *decodeBatch[T]
		// deliver yields the oldest pending batch once it is decoded, and
		// reports whether the sequence goes on.
		deliver := func() bool {
			b := pending[0]
			pending = pending[1:]
			<-b.done
			if b.panicked != nil {
				panic(b.panicked)
			}
			for i := range b.items[:b.errAt] {
				if !yield(b.items[i], nil) {
					return false
				}
			}
			if b.err != nil {
				yield(Decoded[T]{}, b.err)
				return false
			}
			spare = append(spare, b)
			return true
		}
		submit := func() bool {
			work <- cur
			pending = append(pending, cur)
			cur = nil
			return len(pending) < readAhead || deliver()
		}
		for rec, err := range src {
			if cur == nil {
				if len(spare) > 0 {
					cur, spare = spare[len(spare)-1], spare[:len(spare)-1]
					cur.items, cur.srcErr = cur.items[:0], nil
				} else {
					cur = &decodeBatch[T]{items: make([]Decoded[T], 0, decodeBatchSize), done: make(chan struct{}, 1)}
				}
			}
			if err != nil {
				cur.srcErr = err
				break
			}
			cur.items = append(cur.items, Decoded[T]{Record: rec})
			if len(cur.items) == decodeBatchSize && !submit() {
				return
			}
		}
		if cur != nil && !submit() {
			return
		}
		for len(pending) > 0 && deliver() {
		}
	}
}

// decode decodes the batch's events up to the first error, unless stop is
// closed: then nobody waits for them.
func (b *decodeBatch[T]) decode(decode func(*batpak.Record) (T, error), stop <-chan struct{}) {
	b.err, b.errAt, b.panicked = b.srcErr, len(b.items), nil
	select {
	case <-stop:
		return
	default:
	}
	defer func() {
		if p := recover(); p != nil {
			b.panicked = p
		}
	}()
	for i := range b.items {
		v, err := decode(&b.items[i].Record)
		if err != nil {
			b.err, b.errAt = err, i
			return
		}
		b.items[i].Value = v
	}
}
