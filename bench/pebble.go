package main

// Pebble (github.com/cockroachdb/pebble): key "g" + global sequence
// (big-endian) holds the event's envelope; key "s" + stream + 0x00 +
// version (big-endian) holds the global sequence. Pebble has no
// transactions, so the adapter serialises the version check and the
// sequence assignment with a mutex over an in-memory cache of stream tips
// (loaded from the keys on first use), builds one batch per append and
// commits it outside the mutex, so that concurrent commits share Pebble's
// group commit. A failed commit fails the adapter (its cache may be ahead).
//
// Durability: durable mode commits with pebble.Sync (the WAL is fsynced
// before Commit returns; concurrent syncing commits share one fsync).
// Relaxed mode uses pebble.NoSync (the WAL reaches the page cache only:
// a commit survives a process crash, not power loss).

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble"
)

type pebbleBackend struct{}

func (pebbleBackend) Name() string    { return "pebble" }
func (pebbleBackend) Relaxed() string { return "pebble.NoSync" }

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)           {}
func (quietLogger) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

func (pebbleBackend) Open(dir string, durable bool) (Store, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		return nil, err
	}
	s := &pebbleStore{db: db, wo: pebble.NoSync, tips: make(map[string]uint64)}
	if durable {
		s.wo = pebble.Sync
	}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte("g"), UpperBound: []byte("h")})
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	if it.Last() {
		s.lastSeq = binary.BigEndian.Uint64(it.Key()[1:])
	}
	if err := it.Close(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

type pebbleStore struct {
	db *pebble.DB
	wo *pebble.WriteOptions

	mu      sync.Mutex
	lastSeq uint64
	tips    map[string]uint64
	failed  error
}

func pebbleGlobalKey(seq uint64) []byte { return binary.BigEndian.AppendUint64([]byte{'g'}, seq) }

func pebbleStreamPrefix(stream string) []byte {
	return append(append([]byte{'s'}, stream...), 0)
}

// tip returns stream's version; s.mu is held.
func (s *pebbleStore) tip(stream string) (uint64, error) {
	if v, ok := s.tips[stream]; ok {
		return v, nil
	}
	lo := pebbleStreamPrefix(stream)
	hi := append(append([]byte{'s'}, stream...), 1)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return 0, err
	}
	var v uint64
	if it.Last() {
		v = binary.BigEndian.Uint64(it.Key()[len(lo):])
	}
	if err := it.Close(); err != nil {
		return 0, err
	}
	s.tips[stream] = v
	return v, nil
}

// put adds one event to b; s.mu is held.
func (s *pebbleStore) put(b *pebble.Batch, stream string, version uint64, p []byte) {
	s.lastSeq++
	_ = b.Set(pebbleGlobalKey(s.lastSeq), appendEnvelope(nil, stream, version, p), nil)
	_ = b.Set(binary.BigEndian.AppendUint64(pebbleStreamPrefix(stream), version), binary.BigEndian.AppendUint64(nil, s.lastSeq), nil)
}

func (s *pebbleStore) commit(b *pebble.Batch) error {
	err := b.Commit(s.wo)
	_ = b.Close()
	if err != nil {
		s.mu.Lock()
		s.failed = err
		s.mu.Unlock()
	}
	return err
}

func (s *pebbleStore) Append(stream string, expected int64, payloads [][]byte) (uint64, error) {
	s.mu.Lock()
	if s.failed != nil {
		s.mu.Unlock()
		return 0, s.failed
	}
	v, err := s.tip(stream)
	if err != nil {
		s.mu.Unlock()
		return 0, err
	}
	if expected >= 0 && uint64(expected) != v {
		s.mu.Unlock()
		return 0, conflict(stream, expected, v)
	}
	b := s.db.NewBatch()
	for _, p := range payloads {
		v++
		s.put(b, stream, v, p)
	}
	s.tips[stream] = v
	s.mu.Unlock()
	return v, s.commit(b)
}

func (s *pebbleStore) Load(items []Item) error {
	s.mu.Lock()
	if s.failed != nil {
		s.mu.Unlock()
		return s.failed
	}
	b := s.db.NewBatch()
	for _, it := range items {
		v, err := s.tip(it.Stream)
		if err != nil {
			s.mu.Unlock()
			_ = b.Close()
			return err
		}
		s.put(b, it.Stream, v+1, it.Payload)
		s.tips[it.Stream] = v + 1
	}
	s.mu.Unlock()
	return s.commit(b)
}

func (s *pebbleStore) ReadStream(stream string, fn func(Event) error) error {
	lo := pebbleStreamPrefix(stream)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: append(append([]byte{'s'}, stream...), 1)})
	if err != nil {
		return err
	}
	var seqs []uint64
	for valid := it.First(); valid; valid = it.Next() {
		seqs = append(seqs, binary.BigEndian.Uint64(it.Value()))
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, seq := range seqs {
		val, closer, err := s.db.Get(pebbleGlobalKey(seq))
		if err != nil {
			return err
		}
		_, v, p, err := parseEnvelope(val)
		if err == nil {
			err = fn(Event{Seq: seq, Stream: stream, Version: v, Payload: p})
		}
		_ = closer.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *pebbleStore) ReadAll(decode func([]byte) error, fn func(Event) error) error {
	fn = decodeInline(decode, fn)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte("g"), UpperBound: []byte("h")})
	if err != nil {
		return err
	}
	for valid := it.First(); valid; valid = it.Next() {
		st, v, p, err := parseEnvelope(it.Value())
		if err == nil {
			err = fn(Event{Seq: binary.BigEndian.Uint64(it.Key()[1:]), Stream: string(st), Version: v, Payload: p})
		}
		if err != nil {
			_ = it.Close()
			return err
		}
	}
	return it.Close()
}

func (s *pebbleStore) Close() error { return s.db.Close() }
