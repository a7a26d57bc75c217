package main

// bbolt (go.etcd.io/bbolt): a global bucket "events" maps the global
// sequence (the bucket's NextSequence, big-endian key) to the event's
// envelope, and one bucket per stream, nested in "streams", maps the stream
// version to the global sequence; the stream bucket's own sequence is the
// stream's version, checked inside the write transaction.
//
// Durability: durable mode is bbolt's default: a commit writes the dirty
// pages, fdatasyncs, writes the meta page and fdatasyncs again before
// Update returns. Relaxed mode sets DB.NoSync (commits reach the page cache
// only: they survive a process crash, not power loss). bbolt has one
// writer; concurrent appends are grouped with DB.Batch (several callers'
// functions in one transaction and one commit) whenever another append is
// in flight, and a lone append uses Update, so it does not wait for
// MaxBatchDelay.

import (
	"encoding/binary"
	"path/filepath"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

type boltBackend struct{}

func (boltBackend) Name() string    { return "bbolt" }
func (boltBackend) Relaxed() string { return "NoSync" }

var (
	boltEvents  = []byte("events")
	boltStreams = []byte("streams")
)

// boltBatchDelay is how long DB.Batch waits for more callers. bbolt's
// default is 10 ms; of 0.2, 0.5, 2 and 10 ms, 0.5 ms did best for W3 on
// the machine of docs/benchmarks.md.
const boltBatchDelay = 500 * time.Microsecond

func (boltBackend) Open(dir string, durable bool) (Store, error) {
	db, err := bolt.Open(filepath.Join(dir, "events.bolt"), 0o600, &bolt.Options{Timeout: time.Second, NoSync: !durable})
	if err != nil {
		return nil, err
	}
	db.MaxBatchDelay = boltBatchDelay
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(boltEvents); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(boltStreams)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return &boltStore{db: db}, nil
}

type boltStore struct {
	db       *bolt.DB
	inflight atomic.Int32
}

// put appends one event to stream inside tx and returns the new version.
func boltPut(tx *bolt.Tx, sb *bolt.Bucket, stream string, p []byte) (uint64, error) {
	g := tx.Bucket(boltEvents)
	seq, err := g.NextSequence()
	if err != nil {
		return 0, err
	}
	v := sb.Sequence() + 1
	if err := sb.SetSequence(v); err != nil {
		return 0, err
	}
	if err := g.Put(be64(seq), appendEnvelope(nil, stream, v, p)); err != nil {
		return 0, err
	}
	return v, sb.Put(be64(v), be64(seq))
}

func (b *boltStore) Append(stream string, expected int64, payloads [][]byte) (uint64, error) {
	var version uint64
	fn := func(tx *bolt.Tx) error {
		sb, err := tx.Bucket(boltStreams).CreateBucketIfNotExists([]byte(stream))
		if err != nil {
			return err
		}
		if v := sb.Sequence(); expected >= 0 && uint64(expected) != v {
			return conflict(stream, expected, v)
		}
		for _, p := range payloads {
			if version, err = boltPut(tx, sb, stream, p); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	if b.inflight.Add(1) > 1 {
		err = b.db.Batch(fn)
	} else {
		err = b.db.Update(fn)
	}
	b.inflight.Add(-1)
	return version, err
}

func (b *boltStore) Load(items []Item) error {
	return b.db.Update(func(tx *bolt.Tx) error {
		streams := tx.Bucket(boltStreams)
		for _, it := range items {
			sb, err := streams.CreateBucketIfNotExists([]byte(it.Stream))
			if err != nil {
				return err
			}
			if _, err := boltPut(tx, sb, it.Stream, it.Payload); err != nil {
				return err
			}
		}
		return nil
	})
}

func (b *boltStore) ReadStream(stream string, fn func(Event) error) error {
	return b.db.View(func(tx *bolt.Tx) error {
		sb := tx.Bucket(boltStreams).Bucket([]byte(stream))
		if sb == nil {
			return nil
		}
		g := tx.Bucket(boltEvents)
		c := sb.Cursor()
		for k, seq := c.First(); k != nil; k, seq = c.Next() {
			_, v, p, err := parseEnvelope(g.Get(seq))
			if err != nil {
				return err
			}
			if err := fn(Event{Seq: binary.BigEndian.Uint64(seq), Stream: stream, Version: v, Payload: p}); err != nil {
				return err
			}
		}
		return nil
	})
}

func (b *boltStore) ReadAll(decode func([]byte) error, fn func(Event) error) error {
	fn = decodeInline(decode, fn)
	return b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(boltEvents).Cursor()
		for k, val := c.First(); k != nil; k, val = c.Next() {
			s, v, p, err := parseEnvelope(val)
			if err != nil {
				return err
			}
			if err := fn(Event{Seq: binary.BigEndian.Uint64(k), Stream: string(s), Version: v, Payload: p}); err != nil {
				return err
			}
		}
		return nil
	})
}

func (b *boltStore) Close() error { return b.db.Close() }

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
