// Package codec turns a batpak.Event into the bytes every backend stores,
// so all of them accept and refuse the same events.
package codec

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/batpak-go/batpak"
)

// Encode checks an event and returns its msgpack payload (a copy of a
// [batpak.RawPayload]) and a copy of its metadata. It refuses reserved
// kinds ([batpak.ErrReservedKind]), a type name that is given but invalid
// ([batpak.ErrInvalidTypeName]), payloads above maxPayload bytes
// ([batpak.ErrPayloadTooLarge]) and metadata whose keys or values are not
// UTF-8, or that use a reserved key ("batpak." but [batpak.MetaSchema] and
// [batpak.MetaCodec], which must parse: [batpak.ParseSchema])
// ([batpak.ErrInvalidMetadata]).
func Encode(ev batpak.Event, maxPayload int) (payload []byte, meta map[string]string, err error) {
	if ev.Kind.IsSystem() {
		return nil, nil, fmt.Errorf("%w: %s", batpak.ErrReservedKind, ev.Kind)
	}
	if ev.Type != "" {
		if err := batpak.ValidateTypeName(ev.Type); err != nil {
			return nil, nil, err
		}
	}
	switch p := ev.Payload.(type) {
	case batpak.RawPayload:
		payload = slices.Clone([]byte(p))
	case nil:
		payload = []byte{0xc0} // msgpack nil
	default:
		if payload, err = msgpack.Marshal(p); err != nil {
			return nil, nil, fmt.Errorf("batpak: encode %s payload %T: %w", ev.Kind, p, err)
		}
	}
	if len(payload) > maxPayload {
		return nil, nil, fmt.Errorf("%w: %d bytes, limit %d", batpak.ErrPayloadTooLarge, len(payload), maxPayload)
	}
	for k, v := range ev.Metadata {
		switch {
		case !utf8.ValidString(k):
			return nil, nil, fmt.Errorf("%w: key %q is not valid UTF-8", batpak.ErrInvalidMetadata, k)
		case !utf8.ValidString(v):
			return nil, nil, fmt.Errorf("%w: value of %q is not valid UTF-8", batpak.ErrInvalidMetadata, k)
		case strings.HasPrefix(k, batpak.MetaPrefix) && k != batpak.MetaSchema && k != batpak.MetaCodec:
			return nil, nil, fmt.Errorf("%w: key %q is reserved", batpak.ErrInvalidMetadata, k)
		}
	}
	if _, err := batpak.ParseSchema(ev.Metadata); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", batpak.ErrInvalidMetadata, err)
	}
	return payload, maps.Clone(ev.Metadata), nil
}

// ScopedKey is the stored form of idempotency key key given in scope: keys
// belong to the scope of the append's stream (a batch's first item's), so
// tenants cannot collide. A scope has no control characters, so the first
// NUL ends it.
func ScopedKey(scope, key string) string {
	if key == "" {
		return ""
	}
	return scope + "\x00" + key
}
