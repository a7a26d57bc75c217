package natsstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// The store format: how a store lays its events out in a JetStream stream.
//
// Format 2, the one this version writes and reads: a stream is a whole
// coordinate, so an event's subject is "<prefix>.<scope>.<entity>" (both
// escaped as tokens), the expected last subject sequence of an append is
// its stream's, and an idempotency key belongs to a scope (its
// Nats-Msg-Id is "k:" + base64url(scope, NUL, key)). A stream created by
// this version records the format in its configuration's metadata,
// "batpak_format": "2".
//
// Format 1, written before: the subject was "<prefix>.<entity>" with the
// scope in a Batpak-Scope header, so one entity in two scopes was one
// stream (one version sequence, one hash chain), and keys were global. Its
// streams have no marker. Open refuses such a stream if it holds messages
// ([*FormatError]); [CopyValid] reads format 1 and copies the events into
// a new stream of format 2.
const (
	storeFormat = 2
	formatKey   = "batpak_format"
)

// ErrStreamFormat is matched by the [*FormatError] Open returns for a
// stream whose events are laid out in another store format than this
// version's. It also matches [ErrStreamConfig].
var ErrStreamFormat = errors.New("natsstore: the stream holds another store format")

// FormatError reports a stream Open cannot use because of its store
// format: events written by an older version (no format marker, or
// "batpak_format" below 2: streams keyed by entity alone), by a newer one,
// or an empty stream without the marker that Open could not add. It
// matches [ErrStreamFormat] and [ErrStreamConfig].
type FormatError struct {
	Stream string
	// Marker is the stream's "batpak_format" metadata value: "" when it
	// has none.
	Marker string
	// Messages is how many messages the stream holds.
	Messages uint64
	// Cause is why the marker could not be added to an empty stream (the
	// update's error), if that is the refusal.
	Cause error
}

func (e *FormatError) Error() string {
	switch {
	case e.Cause != nil:
		return fmt.Sprintf("natsstore: stream %s is empty and has no store format marker, and it could not be added (%v): "+
			"set the stream's metadata %q to %q, or open it once with permission to update the stream",
			e.Stream, e.Cause, formatKey, strconv.Itoa(storeFormat))
	case e.older():
		found := "no store format marker: format 1"
		if e.Marker != "" {
			found = "store format " + e.Marker
		}
		return fmt.Sprintf("natsstore: stream %s (%d messages) has %s, where one entity in several scopes is one stream; "+
			"this version keeps one stream per scope and entity (format %d): copy the events into a new stream with "+
			"CopyValid(ctx, nc, %q, <new stream>), which converts them, and open that one",
			e.Stream, e.Messages, found, storeFormat, e.Stream)
	}
	return fmt.Sprintf("natsstore: stream %s holds store format %q, which this version (format %d) cannot read: "+
		"open it with the version of natsstore that wrote it", e.Stream, e.Marker, storeFormat)
}

// older reports whether the stream's marker names a format before this
// version's.
func (e *FormatError) older() bool { return olderFormat(e.Marker) }

// olderFormat reports whether a "batpak_format" value names a format
// before this version's: none (format 1) or a smaller number.
func olderFormat(marker string) bool {
	if marker == "" {
		return true
	}
	n, err := strconv.Atoi(marker)
	return err == nil && n >= 1 && n < storeFormat
}

// Is makes a FormatError match ErrStreamFormat and ErrStreamConfig.
func (e *FormatError) Is(target error) bool {
	return target == ErrStreamFormat || target == ErrStreamConfig
}

// Unwrap returns the error of the failed update, if any.
func (e *FormatError) Unwrap() error { return e.Cause }

// formatMarker returns the stream's "batpak_format" metadata value.
func formatMarker(cfg *jetstream.StreamConfig) string { return cfg.Metadata[formatKey] }

// checkFormat refuses, before Open changes anything, a stream that holds
// messages and is not marked with this version's format, and one marked
// with a format this version does not know, even empty.
func (s *Store) checkFormat(info *jetstream.StreamInfo) error {
	marker := formatMarker(&info.Config)
	switch {
	case marker == strconv.Itoa(storeFormat):
		return nil
	case olderFormat(marker) && info.State.LastSeq == 0:
		return nil // repairConfig marks it
	}
	return &FormatError{Stream: s.cfg.stream, Marker: marker, Messages: info.State.Msgs}
}

// checkFormatReadOnly is checkFormat for a stream opened read-only, which
// may be a mirror or a sourced copy: those do not take their origin's
// metadata, so a stream without a marker is judged by its first message.
// It is refused if that is an event of format 1.
func (s *Store) checkFormatReadOnly(ctx context.Context) error {
	info := s.stream.CachedInfo()
	marker := formatMarker(&info.Config)
	switch {
	case marker == strconv.Itoa(storeFormat), olderFormat(marker) && info.State.LastSeq == 0:
		return nil
	case marker != "":
		return &FormatError{Stream: s.cfg.stream, Marker: marker, Messages: info.State.Msgs}
	}
	f, err := sniffFormat(ctx, s.stream, info.State.FirstSeq, s.prefix)
	if err != nil {
		return fmt.Errorf("natsstore: stream %s: reading its first message: %w", s.cfg.stream, err)
	}
	if f == 1 {
		return &FormatError{Stream: s.cfg.stream, Messages: info.State.Msgs}
	}
	return nil
}

// sniffFormat tells the store format of a stream without a marker by its
// message at seq (its first): 1 for a batpak event on a subject of format
// 1, 2 for one on a subject of format 2, 0 when the message is not a
// batpak event. prefix includes its trailing dot.
func sniffFormat(ctx context.Context, str jetstream.Stream, seq uint64, prefix string) (int, error) {
	m, err := str.GetMsg(ctx, seq)
	if err != nil {
		return 0, err
	}
	if m.Header.Get(hdrID) == "" {
		return 0, nil
	}
	tok, ok := strings.CutPrefix(m.Subject, prefix)
	switch {
	case !ok:
		return 0, nil
	case strings.Count(tok, ".") == 0:
		return 1, nil
	case strings.Count(tok, ".") == 1:
		return 2, nil
	}
	return 0, nil
}
