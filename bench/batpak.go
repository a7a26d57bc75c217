package main

// batpak: this repository's store.
//
// Durability: durable mode is eventstore.SyncEveryCommit (the default): the
// writer makes each group commit durable with one fdatasync of the
// preallocated active segment before any caller of the group is answered.
// Relaxed mode is SyncNone: appends reach the page cache only (they survive
// a process crash, not power loss). Version checks run in the single writer
// goroutine; reads use the in-memory index (ReadStream) and the sequential
// segment scanner (Replay) for the full replay, whose payloads, when the
// workload decodes them, are decoded in worker goroutines
// (eventstore.DecodeParallel) and delivered in order.

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
)

type batpakBackend struct{}

func (batpakBackend) Name() string    { return "batpak" }
func (batpakBackend) Relaxed() string { return "SyncNone" }

func (batpakBackend) Open(dir string, durable bool) (Store, error) {
	mode := eventstore.SyncNone
	if durable {
		mode = eventstore.SyncEveryCommit
	}
	s, err := eventstore.Open(dir, eventstore.WithSyncMode(mode))
	if err != nil {
		return nil, err
	}
	return &batpakStore{s: s}, nil
}

// DropCheckpoint moves the checkpoint of the closed store in dir aside,
// so that the next open rebuilds the index from footers and a scan.
func (batpakBackend) DropCheckpoint(dir string) error {
	err := os.Remove(filepath.Join(dir, eventstore.CheckpointFileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

type batpakStore struct{ s *eventstore.Store }

var batpakKind = kind.Custom(1, 1)

func coord(stream string) batpak.Coordinate {
	return batpak.Coordinate{Entity: stream, Scope: "bench"}
}

func (b *batpakStore) Append(stream string, expected int64, payloads [][]byte) (uint64, error) {
	events := make([]batpak.Event, len(payloads))
	for i, p := range payloads {
		events[i] = batpak.Event{Kind: batpakKind, Payload: batpak.RawPayload(p)}
	}
	var ev batpak.ExpectedVersion = batpak.Any
	if expected >= 0 {
		ev = batpak.Exactly(uint64(expected))
	}
	rs, err := b.s.Append(context.Background(), coord(stream), events, batpak.ExpectVersion(ev))
	if err != nil {
		if errors.Is(err, batpak.ErrVersionConflict) {
			return 0, errors.Join(ErrConflict, err)
		}
		return 0, err
	}
	return rs[len(rs)-1].Version, nil
}

func (b *batpakStore) Load(items []Item) error {
	batch := make([]batpak.BatchItem, len(items))
	for i, it := range items {
		batch[i] = batpak.BatchItem{Coordinate: coord(it.Stream), Event: batpak.Event{Kind: batpakKind, Payload: batpak.RawPayload(it.Payload)}}
	}
	_, err := b.s.AppendBatch(context.Background(), batch)
	return err
}

func (b *batpakStore) ReadStream(stream string, fn func(Event) error) error {
	for rec, err := range b.s.ReadStream(context.Background(), coord(stream), 1) {
		if err != nil {
			return err
		}
		if err := fn(Event{Seq: rec.Sequence, Stream: rec.Coordinate.Entity, Version: rec.Version, Payload: rec.Payload}); err != nil {
			return err
		}
	}
	return nil
}

// ReadAll replays with the sequential scanner; payloads to decode are
// decoded by eventstore.DecodeParallel in worker goroutines, and fn sees the
// events in order.
func (b *batpakStore) ReadAll(decode func([]byte) error, fn func(Event) error) error {
	emit := func(rec *batpak.Record) error {
		return fn(Event{Seq: rec.Sequence, Stream: rec.Coordinate.Entity, Version: rec.Version, Payload: rec.Payload})
	}
	replay := b.s.Replay(context.Background(), batpak.Region{}, 0)
	if decode == nil {
		for rec, err := range replay {
			if err == nil {
				err = emit(&rec)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	decodeRecord := func(rec *batpak.Record) (struct{}, error) { return struct{}{}, decode(rec.Payload) }
	for ev, err := range eventstore.DecodeParallel(replay, 0, decodeRecord) {
		if err == nil {
			err = emit(&ev.Record)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *batpakStore) Close() error { return b.s.Close() }

// Extra reports how well group commit filled the syncs and how the index
// was rebuilt on open.
func (b *batpakStore) Extra() map[string]float64 {
	st := b.s.Stats()
	return map[string]float64{
		"avg_group_size": st.AverageGroupSize, "syncs": float64(st.Syncs), "groups": float64(st.Groups),
		"cold_start_ms":          float64(st.ColdStart.Duration.Microseconds()) / 1000,
		"events_from_checkpoint": float64(st.ColdStart.EventsFromCheckpoint),
		"events_from_footers":    float64(st.ColdStart.EventsFromFooters),
		"events_scanned":         float64(st.ColdStart.EventsScanned),
	}
}
