package natsstore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// KVOption configures a key-value bucket beside a store: [NewKVSnapshots],
// [NewKVCheckpoints] and [NewKVLeases].
type KVOption func(*kvConfig)

type kvConfig struct {
	bucket string
}

// WithBucket names the bucket (default: the store's stream name and
// "_snapshots", "_checkpoints" or "_leases"). Several stores may share a
// bucket only where their streams or projection names cannot collide.
func WithBucket(name string) KVOption { return func(c *kvConfig) { c.bucket = name } }

var validBucket = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// openBucket binds to the store's bucket named by opts or by the stream's
// name and suffix, creating it if it does not exist: file storage, one
// value per key (History 1) and the replicas of the store's stream. An
// existing bucket keeps its own configuration.
func (s *Store) openBucket(ctx context.Context, suffix, description string, opts []KVOption) (jetstream.KeyValue, error) {
	var c kvConfig
	for _, o := range opts {
		o(&c)
	}
	if c.bucket == "" {
		c.bucket = s.cfg.stream + suffix
	}
	if !validBucket.MatchString(c.bucket) {
		return nil, fmt.Errorf("natsstore: bucket name %q: only letters, digits, '-' and '_' (name it with WithBucket)", c.bucket)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.timeout)
		defer cancel()
	}
	want := jetstream.KeyValueConfig{
		Bucket:      c.bucket,
		Description: description + " of batpak stream " + s.cfg.stream,
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(s.stream.CachedInfo().Config.Replicas, 1),
	}
	wait := 10 * time.Millisecond
	for {
		kv, err := s.js.KeyValue(ctx, c.bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = s.js.CreateKeyValue(ctx, want)
			if errors.Is(err, jetstream.ErrBucketExists) {
				continue // created concurrently, with another configuration
			}
		}
		if err == nil {
			return kv, nil
		}
		if !retryableSetup(err) || ctx.Err() != nil {
			return nil, fmt.Errorf("natsstore: bucket %s: %w", c.bucket, err)
		}
		sleep(ctx, &wait)
	}
}

// ownBucket binds the bucket of the store's own state named by the
// stream's origin and suffix: created if missing, or, on a read-only
// store, bound only if it exists (nil without an error if not).
func (s *Store) ownBucket(ctx context.Context, suffix, description string) (jetstream.KeyValue, error) {
	name := s.cfg.origin() + suffix
	if !s.cfg.readOnly {
		return s.openBucket(ctx, suffix, description, []KVOption{WithBucket(name)})
	}
	wait := 10 * time.Millisecond
	for {
		kv, err := s.js.KeyValue(ctx, name)
		switch {
		case errors.Is(err, jetstream.ErrBucketNotFound):
			return nil, nil
		case err == nil:
			return kv, nil
		case !retryableSetup(err) || ctx.Err() != nil:
			return nil, fmt.Errorf("natsstore: bucket %s: %w", name, err)
		}
		sleep(ctx, &wait)
	}
}

// kvConflict reports a write refused because the key's revision is not
// the one expected (it exists, or moved on).
func kvConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// keySafe reports whether c may appear unescaped in a key written by
// [escapeKey]. Keys of a bucket allow fewer characters than subject tokens
// ([A-Za-z0-9-_/=.]), so the alphabet of [escapeToken] is narrowed and the
// escape character is '=' instead of '%'.
func keySafe(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '/'
}

// escapeKey encodes s (a scope, an entity or a projection name, any
// bytes) as one key token: safe bytes as they are, every other byte ('.',
// '=', ':', spaces, non-ASCII, ...) as =XX. The encoding is injective, so
// two names never share a key, and a key holds no dot, so no empty or
// wildcard token.
func escapeKey(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("natsstore: empty key")
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; keySafe(c) {
			b = append(b, c)
		} else {
			b = append(b, '=', hexDigits[c>>4], hexDigits[c&15])
		}
	}
	return string(b), nil
}
