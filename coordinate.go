package batpak

import (
	"unicode"
	"unicode/utf8"
)

// MaxCoordinateLen is the longest entity or scope, in bytes.
const MaxCoordinateLen = 512

// Coordinate names a stream. Entity names it within its scope (e.g.
// "account:42"); Scope is its isolation boundary (e.g. a tenant,
// "bank:eu"). The whole coordinate is the stream's identity: "user:7" in
// scope "tenantA" and in scope "tenantB" are two streams with their own
// versions, reads and snapshots.
type Coordinate struct {
	Entity string
	Scope  string
}

// NewCoordinate returns a validated coordinate.
func NewCoordinate(entity, scope string) (Coordinate, error) {
	c := Coordinate{Entity: entity, Scope: scope}
	return c, c.Validate()
}

// Validate checks that entity and scope are non-empty, at most
// [MaxCoordinateLen] bytes of valid UTF-8, without control characters.
// It returns a [*CoordinateError].
func (c Coordinate) Validate() error {
	if err := validateName("entity", c.Entity); err != nil {
		return err
	}
	return validateName("scope", c.Scope)
}

func (c Coordinate) String() string { return c.Scope + "/" + c.Entity }

func validateName(field, s string) error {
	bad := func(reason string) error { return &CoordinateError{Field: field, Value: s, Reason: reason} }
	switch {
	case s == "":
		return bad("empty")
	case len(s) > MaxCoordinateLen:
		return bad("longer than 512 bytes")
	case !utf8.ValidString(s):
		return bad("not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return bad("contains a control character")
		}
	}
	return nil
}
