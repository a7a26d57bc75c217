package eventstore

import (
	"iter"
	"runtime"
	"sync"
)

// Decoded is an event together with the value its payload decoded to.
type Decoded[T any] struct {
	Record
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
// every core while the events still arrive strictly in order. src is
// iterated in a goroutine of its own, and decode must be safe to call from
// several goroutines at once; a Record it is given is not shared.
//
// An error from src or decode is yielded after the events before it and
// ends the sequence; a panic in decode is raised again in the consumer.
// Breaking out of the loop stops src and the workers, and waits for them,
// before the loop ends.
func DecodeParallel[T any](src iter.Seq2[Record, error], workers int, decode func(*Record) (T, error)) iter.Seq2[Decoded[T], error] {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return func(yield func(Decoded[T], error) bool) {
		// Batches circulate: free → producer → work and order → worker →
		// consumer → free. There are n of them, so no send ever blocks; the
		// producer waits for a free one, the consumer for its batch's done.
		n := 2*workers + 2
		free := make(chan *decodeBatch[T], n)
		work := make(chan *decodeBatch[T], n)
		order := make(chan *decodeBatch[T], n)
		stop := make(chan struct{})
		for range n {
			free <- &decodeBatch[T]{items: make([]Decoded[T], 0, decodeBatchSize), done: make(chan struct{}, 1)}
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			defer close(order)
			defer close(work)
			produceBatches(src, free, work, order, stop)
		})
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
			wg.Wait()
		}()
		for b := range order {
			<-b.done
			if b.panicked != nil {
				panic(b.panicked)
			}
			for i := range b.items[:b.errAt] {
				if !yield(b.items[i], nil) {
					return
				}
			}
			if b.err != nil {
				yield(Decoded[T]{}, b.err)
				return
			}
			free <- b
		}
	}
}

// produceBatches reads src into batches and hands each to the workers and,
// in src's order, to the consumer. It returns at the end of src, after an
// error from it, or when stop is closed.
func produceBatches[T any](src iter.Seq2[Record, error], free <-chan *decodeBatch[T], work, order chan<- *decodeBatch[T], stop <-chan struct{}) {
	var b *decodeBatch[T]
	send := func() {
		work <- b
		order <- b
		b = nil
	}
	for rec, err := range src {
		if b == nil {
			select {
			case b = <-free:
				b.items, b.srcErr = b.items[:0], nil
			case <-stop:
				return
			}
		}
		if err != nil {
			b.srcErr = err
			send()
			return
		}
		b.items = append(b.items, Decoded[T]{Record: rec})
		if len(b.items) == decodeBatchSize {
			send()
		}
	}
	if b != nil {
		send()
	}
}

// decode decodes the batch's events up to the first error, unless stop is
// closed: then nobody waits for them.
func (b *decodeBatch[T]) decode(decode func(*Record) (T, error), stop <-chan struct{}) {
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
