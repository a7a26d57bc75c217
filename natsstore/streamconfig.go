package natsstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// ConfigError reports a setting of an existing stream that breaks the
// store's contract or what the caller asked for. It matches
// [ErrStreamConfig]. Setting is the stream configuration's JSON name (as
// `nats stream info --json` shows it).
type ConfigError struct {
	Stream  string
	Setting string
	Want    string
	Got     string
	Reason  string // what the setting would do to the store
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("natsstore: stream %s: %s is %s, want %s: %s", e.Stream, e.Setting, e.Got, e.Want, e.Reason)
}

// Is makes a ConfigError match ErrStreamConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrStreamConfig }

// repairConfig turns on the settings that only restrict the stream and
// that the store needs or asked for: DenyDelete and DenyPurge (and so
// AllowRollup off, which the server allows only with purges), atomic
// batch publish, and direct gets (batched reads from any replica); and it
// marks a stream that has never held a message with the store format
// (format.go). Messages are untouched, and the server never lets deny
// flags be turned off again. If the update fails, it returns the stream as
// it was and the update's error, and the checks that follow report what is
// still missing.
func (s *Store) repairConfig(ctx context.Context, str jetstream.Stream) (jetstream.Stream, error) {
	info := str.CachedInfo()
	cfg := info.Config
	var fixed []string
	if formatMarker(&cfg) != strconv.Itoa(storeFormat) && info.State.LastSeq == 0 {
		cfg.Metadata = maps.Clone(cfg.Metadata)
		if cfg.Metadata == nil {
			cfg.Metadata = make(map[string]string, 1)
		}
		cfg.Metadata[formatKey] = strconv.Itoa(storeFormat)
		fixed = append(fixed, "metadata."+formatKey)
	}
	if !cfg.DenyDelete {
		cfg.DenyDelete = true
		fixed = append(fixed, "deny_delete")
	}
	if !cfg.DenyPurge || cfg.AllowRollup {
		cfg.DenyPurge, cfg.AllowRollup = true, false
		fixed = append(fixed, "deny_purge")
	}
	atomicOnly := len(fixed) == 0 // the rest are features the store does without
	if s.cfg.atomic && !cfg.AllowAtomicPublish {
		cfg.AllowAtomicPublish = true
		fixed = append(fixed, "allow_atomic")
	}
	if !cfg.AllowDirect {
		cfg.AllowDirect = true
		fixed = append(fixed, "allow_direct")
	}
	if len(fixed) == 0 {
		return str, nil
	}
	upd, err := s.js.UpdateStream(ctx, cfg)
	if err != nil {
		if atomicOnly {
			s.cfg.logger.Warn("cannot turn atomic batch publish or direct gets on", zap.String("stream", s.cfg.stream), zap.Strings("settings", fixed), zap.Error(err))
		} else {
			s.cfg.logger.Warn("cannot update the stream's configuration", zap.String("stream", s.cfg.stream), zap.Strings("settings", fixed), zap.Error(err))
		}
		return str, err
	}
	s.cfg.logger.Warn("stream configuration updated", zap.String("stream", s.cfg.stream), zap.Strings("settings", fixed))
	return upd, nil
}

// checkConfig compares the stream's configuration with what the store
// needs (nothing ever removed, nothing acknowledged before it is written)
// and what the caller asked for (storage, replicas). It returns every
// mismatch, each a *ConfigError.
func (s *Store) checkConfig(cfg jetstream.StreamConfig) error {
	var errs []error
	bad := func(setting, want, got, reason string) {
		errs = append(errs, &ConfigError{Stream: s.cfg.stream, Setting: setting, Want: want, Got: got, Reason: reason})
	}
	const removes = "the server would remove events"
	if !covers(cfg.Subjects, s.cfg.prefix+".>") {
		bad("subjects", "to hold "+s.cfg.prefix+".>", "["+strings.Join(cfg.Subjects, ", ")+"]", "the store's subjects are not in this stream")
	}
	if cfg.Mirror != nil {
		bad("mirror", "none", cfg.Mirror.Name, "a mirror accepts no appends")
	}
	if cfg.Sealed {
		bad("sealed", "false", "true", "a sealed stream accepts no appends")
	}
	if cfg.Storage != s.cfg.storage {
		bad("storage", s.cfg.storage.String(), cfg.Storage.String(), "memory storage loses every acknowledged event when the servers holding the stream stop")
	}
	if cfg.Replicas < s.cfg.replicas {
		bad("num_replicas", "at least "+strconv.Itoa(s.cfg.replicas), strconv.Itoa(cfg.Replicas), "fewer copies than WithReplicas asks for")
	}
	if cfg.PersistMode != jetstream.DefaultPersistMode {
		bad("persist_mode", jetstream.DefaultPersistMode.String(), cfg.PersistMode.String(), "the server would acknowledge writes before it flushes them")
	}
	if cfg.Retention != jetstream.LimitsPolicy {
		bad("retention", jetstream.LimitsPolicy.String(), cfg.Retention.String(), removes+" once consumers saw them")
	}
	if cfg.MaxAge != 0 {
		bad("max_age", "0 (no limit)", cfg.MaxAge.String(), removes+" as they age")
	}
	for _, l := range []struct {
		setting string
		v       int64
	}{{"max_msgs", cfg.MaxMsgs}, {"max_bytes", cfg.MaxBytes}, {"max_msgs_per_subject", cfg.MaxMsgsPerSubject}} {
		if l.v > 0 {
			bad(l.setting, "-1 (no limit)", strconv.FormatInt(l.v, 10), removes+" or refuse appends at the limit")
		}
	}
	if cfg.AllowMsgTTL {
		bad("allow_msg_ttl", "false", "true", removes+" (or foreign messages) whose TTL ends")
	}
	if cfg.AllowMsgSchedules {
		bad("allow_msg_schedules", "false", "true", "schedules need roll-ups, which remove messages")
	}
	if cfg.AllowMsgCounter {
		bad("allow_msg_counter", "false", "true", "a counter stream stores increments, not events")
	}
	if !cfg.DenyDelete {
		bad("deny_delete", "true", "false", "messages could be deleted (the update that turns it on failed)")
	}
	if !cfg.DenyPurge || cfg.AllowRollup {
		bad("deny_purge", "true", "false", "the stream could be purged (the update that turns it on failed)")
	}
	return errors.Join(errs...)
}

// checkState refuses a stream from which messages were removed: the
// index needs every sequence from 1, so such a stream would never load.
func (s *Store) checkState(st jetstream.StreamState) error {
	if st.NumDeleted == 0 && (st.LastSeq == 0 || st.FirstSeq == 1) {
		return nil
	}
	return fmt.Errorf("%w: stream %s: messages were removed (%d messages held, first sequence %d, last %d, %d deleted): the store needs every message from sequence 1; CopyValid copies the events that are left into a new stream",
		ErrInvalidMessage, s.cfg.stream, st.Msgs, st.FirstSeq, st.LastSeq, st.NumDeleted)
}
