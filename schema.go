package batpak

import (
	"fmt"
	"strconv"
)

// Metadata keys the library writes beside an event's own metadata. Every
// backend stores metadata as it is and covers it by the event's hash, so
// these travel with the event and cannot be changed unseen.
const (
	// MetaSchema holds the schema version of the payload ("2"), written
	// by [Registry.Event] for a type at version 2 or later; an event
	// without it is at version 1.
	MetaSchema = "batpak.schema"
	// MetaCodec holds the name of the codec that encoded the payload
	// ("json"), written for every codec but the default [Msgpack]; an
	// event without it is msgpack.
	MetaCodec = "batpak.codec"
)

// MetaPrefix starts every metadata key the library reserves.
const MetaPrefix = "batpak."

// Schema is what an event records about the shape of its payload.
type Schema struct {
	Version uint16 // from 1
	Codec   string // "msgpack" unless the event says otherwise
}

// ParseSchema reads the schema of an event from its metadata: the
// version in [MetaSchema] (1 without it) and the codec in [MetaCodec]
// ("msgpack" without it). A value that is not a decimal version from 1 to
// 65535 in canonical form, or not a valid codec name, is an error
// matching [ErrSchema].
func ParseSchema(meta map[string]string) (Schema, error) {
	s := Schema{Version: 1, Codec: "msgpack"}
	if v, ok := meta[MetaSchema]; ok {
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil || n == 0 || strconv.FormatUint(n, 10) != v {
			return s, fmt.Errorf("%w: %s %q is not a version from 1 to 65535", ErrSchema, MetaSchema, v)
		}
		s.Version = uint16(n)
	}
	if c, ok := meta[MetaCodec]; ok {
		if !validCodecName(c) {
			return s, fmt.Errorf("%w: %s %q is not a codec name", ErrSchema, MetaCodec, c)
		}
		s.Codec = c
	}
	return s, nil
}

// metadata adds s to meta (a new map if meta is nil) as [ParseSchema]
// reads it: nothing for version 1 in msgpack.
func (s Schema) metadata(meta map[string]string) map[string]string {
	if s.Version <= 1 && (s.Codec == "" || s.Codec == "msgpack") {
		return meta
	}
	if meta == nil {
		meta = make(map[string]string, 2)
	}
	if s.Version > 1 {
		meta[MetaSchema] = strconv.FormatUint(uint64(s.Version), 10)
	}
	if s.Codec != "" && s.Codec != "msgpack" {
		meta[MetaCodec] = s.Codec
	}
	return meta
}
