package natsstore

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// OpenReadOnly connects to the NATS server(s) at urls, as [Open] does, and
// opens the store kept in an existing stream for reading only: a mirror
// or a sourced copy of a store's stream (in another region, on another
// cluster, for reporting), or a store's own stream. Gets, reads, queries,
// cursors, subscriptions and projections work as on a store opened with
// Open; appends fail with [batpak.ErrReadOnly]. Nothing about the
// stream is created or changed. A stream of an older store format is
// refused ([*FormatError]): a stream with the format marker by it, a
// mirror or sourced copy (which do not carry their origin's metadata) by
// its first message.
//
// The subject prefix is the origin's default, "batpak.<origin stream>",
// where the origin is found by following the stream's mirror or single
// source upstream (as far as this account can see); pass
// [WithSubjectPrefix] for a store with another prefix, a copy whose
// subjects are transformed, or one sourced from several streams.
//
// What holds on a copy:
//
//   - A mirror holds the origin's messages at the origin's sequences, so
//     global sequences, versions, hashes, ids, correlation and causation
//     and idempotency keys are all the origin's. It lags the origin: the
//     reads show what has reached the mirror, requests whole, in order
//     (CatchUp waits for what the mirror holds, not the origin).
//   - A sourced stream renumbers: each message takes the next sequence of
//     the sourced stream, in the order the source delivers it. Everything
//     the headers carry holds (versions, hashes, ids, correlation,
//     causation, idempotency keys); the server drops the Nats-Expected-*
//     and Nats-Batch-* headers and adds Nats-Stream-Source, which the
//     store does not need. Global sequences are the sourced stream's: they
//     equal the origin's only when the stream sources one whole store from
//     its first message and holds nothing else.
//   - A copy holds a whole store only if it holds every event from the
//     first: a mirror or source that starts later, a subject filter that
//     drops some of a stream's events or splits a multi-event request,
//     or a stream that mixes several stores breaks the store's invariants
//     (versions from 1, linked hashes, whole requests, dense sequences),
//     and the index refuses the messages that do not fit, as it does in
//     any store's stream.
//
// The KV snapshot, checkpoint and lease stores work on a read-only store
// (they are buckets of their own): projections can run on a mirror.
func OpenReadOnly(ctx context.Context, urls string, opts ...Option) (*Store, error) {
	return dialAndOpen(ctx, urls, newConfig(opts), openReadOnly)
}

// OpenConnReadOnly is [OpenReadOnly] over an existing connection, which
// Close leaves open. It refuses a clear-text connection as [OpenConn] does:
// a reader's credentials and the events it reads are worth as much.
func OpenConnReadOnly(ctx context.Context, nc *nats.Conn, opts ...Option) (*Store, error) {
	cfg := newConfig(opts)
	if err := checkConnTLS(nc, &cfg); err != nil {
		return nil, err
	}
	return openReadOnly(ctx, nc, cfg)
}

func openReadOnly(ctx context.Context, nc *nats.Conn, cfg config) (*Store, error) {
	cfg.readOnly, cfg.atomic = true, false
	if cfg.prefix == "" {
		if err := validStreamName(cfg.stream); err != nil {
			return nil, err
		}
		js, err := jetstream.New(nc)
		if err != nil {
			return nil, fmt.Errorf("natsstore: %w", err)
		}
		octx, cancel := context.WithTimeout(ctx, cfg.timeout)
		defer cancel()
		origin, err := originOf(octx, js, cfg.stream)
		if err != nil {
			return nil, err
		}
		cfg.prefix = "batpak." + origin
		cfg.originStream = origin
	}
	return open(ctx, nc, cfg)
}

// originOf returns the name of the stream whose store the stream named
// name holds: name itself, or, for a mirror or a stream with one source,
// the origin of its upstream, followed while this account can look it up.
func originOf(ctx context.Context, js jetstream.JetStream, name string) (string, error) {
	for range 16 {
		str, err := findStream(ctx, js, name)
		if err != nil {
			return "", err
		}
		cfg := str.CachedInfo().Config
		up := cfg.Mirror
		if up == nil && len(cfg.Sources) == 1 {
			up = cfg.Sources[0]
		}
		switch {
		case len(cfg.Sources) > 1:
			return "", fmt.Errorf("natsstore: stream %s has %d sources: name the store's subject prefix with WithSubjectPrefix", name, len(cfg.Sources))
		case up == nil:
			return name, nil
		case len(up.SubjectTransforms) > 0:
			return "", fmt.Errorf("natsstore: stream %s transforms the subjects of %s: name the store's subject prefix with WithSubjectPrefix", name, up.Name)
		case up.External != nil || up.Domain != "":
			return up.Name, nil // beyond this account's reach: the upstream's name is the best guess
		}
		name = up.Name
	}
	return "", fmt.Errorf("natsstore: stream %s: more than 16 mirrors or sources upstream; name the subject prefix with WithSubjectPrefix", name)
}

// findStream binds to the existing stream named name, waiting while the
// cluster elects its leader.
func findStream(ctx context.Context, js jetstream.JetStream, name string) (jetstream.Stream, error) {
	wait := 10 * time.Millisecond
	for {
		str, err := js.Stream(ctx, name)
		if err == nil {
			return str, nil
		}
		if !retryableSetup(err) || ctx.Err() != nil {
			return nil, fmt.Errorf("natsstore: stream %s: %w", name, err)
		}
		sleep(ctx, &wait)
	}
}

// bindStream binds the store to its stream: creates or updates it
// ([Store.ensureStream]), or, read-only, takes it as it is if it holds
// this version's store format.
func (s *Store) bindStream(ctx context.Context) error {
	if !s.cfg.readOnly {
		return s.ensureStream(ctx)
	}
	str, err := findStream(ctx, s.js, s.cfg.stream)
	if err != nil {
		return err
	}
	s.stream, s.atomic = str, false
	return s.checkFormatReadOnly(ctx)
}
