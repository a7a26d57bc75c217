package batpak

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxTypeNameLen is the longest event type name, in bytes.
const MaxTypeNameLen = 128

// ValidateTypeName checks an event type name ("bank.Deposited"): non-empty,
// at most [MaxTypeNameLen] bytes of valid UTF-8, without white space or
// control characters. It returns an error matching [ErrInvalidTypeName].
func ValidateTypeName(name string) error {
	bad := func(reason string) error { return fmt.Errorf("%w %q: %s", ErrInvalidTypeName, name, reason) }
	switch {
	case name == "":
		return bad("empty")
	case len(name) > MaxTypeNameLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxTypeNameLen))
	case !utf8.ValidString(name):
		return bad("not valid UTF-8")
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return bad("contains white space or a control character")
		}
	}
	return nil
}
