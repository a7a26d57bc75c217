package natsstore

import (
	"fmt"
	"strings"

	"github.com/batpak-go/batpak"
)

// subjectOf returns the subject of the events of stream c:
// "<prefix>.<scope>.<entity>", each part one token (escapeToken). prefix
// includes its trailing dot.
func subjectOf(prefix string, c batpak.Coordinate) string {
	return prefix + escapeToken(c.Scope) + "." + escapeToken(c.Entity)
}

// subjectStream returns the stream whose subject is subject (prefix
// includes its trailing dot), or false when subject is no stream's: not
// two tokens after the prefix, or not as subjectOf writes them.
func subjectStream(prefix, subject string) (batpak.Coordinate, bool) {
	rest, ok := strings.CutPrefix(subject, prefix)
	if !ok {
		return batpak.Coordinate{}, false
	}
	st, et, ok := strings.Cut(rest, ".")
	if !ok || st == "" || et == "" || strings.IndexByte(et, '.') >= 0 {
		return batpak.Coordinate{}, false
	}
	scope, err1 := unescapeToken(st)
	entity, err2 := unescapeToken(et)
	if err1 != nil || err2 != nil || scope == "" || entity == "" || escapeToken(scope) != st || escapeToken(entity) != et {
		return batpak.Coordinate{}, false
	}
	return batpak.Coordinate{Entity: entity, Scope: scope}, true
}

// subjectEntityV1 returns the entity whose subject is subject in format 1
// ("<prefix>.<entity>", see format.go), or false when no entity's is.
func subjectEntityV1(prefix, subject string) (string, bool) {
	tok, ok := strings.CutPrefix(subject, prefix)
	if !ok || tok == "" || strings.IndexByte(tok, '.') >= 0 {
		return "", false
	}
	e, err := unescapeToken(tok)
	if err != nil || e == "" || escapeToken(e) != tok {
		return "", false
	}
	return e, true
}

// tokenSafe reports whether c may appear unescaped in a subject token or a
// header value written by [escapeToken]: letters, digits and a few
// punctuation marks that mean nothing to NATS. Everything else, '%'
// included, is written as %XX, so the encoding is injective and a token
// never holds '.', '*', '>', white space or a control character.
func tokenSafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-_:~=+@,!/", c) >= 0
}

const hexDigits = "0123456789ABCDEF"

// escapeToken encodes s (an entity or a scope) as one subject token.
func escapeToken(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !tokenSafe(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if tokenSafe(c) {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
	}
	return string(b)
}

// unescapeToken reverses escapeToken.
func unescapeToken(t string) (string, error) {
	if strings.IndexByte(t, '%') < 0 {
		return t, nil
	}
	b := make([]byte, 0, len(t))
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(t) {
			return "", fmt.Errorf("bad escape in %q", t)
		}
		hi, lo := unhex(t[i+1]), unhex(t[i+2])
		if hi < 0 || lo < 0 {
			return "", fmt.Errorf("bad escape in %q", t)
		}
		b = append(b, byte(hi<<4|lo))
		i += 2
	}
	return string(b), nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}

// validStreamName reports whether name can name a JetStream stream.
func validStreamName(name string) error {
	if name == "" || len(name) > 200 {
		return fmt.Errorf("natsstore: stream name %q: empty or longer than 200 bytes", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(".*>/\\", c) >= 0 {
			return fmt.Errorf("natsstore: stream name %q: character %q is not allowed", name, c)
		}
	}
	return nil
}

// validSubjectPrefix reports whether p is a literal subject (tokens
// separated by dots, no wildcards, no white space).
func validSubjectPrefix(p string) error {
	if p == "" {
		return fmt.Errorf("natsstore: empty subject prefix")
	}
	for tok := range strings.SplitSeq(p, ".") {
		if tok == "" || tok == "*" || tok == ">" {
			return fmt.Errorf("natsstore: subject prefix %q: empty token or wildcard", p)
		}
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; c <= ' ' || c >= 0x7f {
				return fmt.Errorf("natsstore: subject prefix %q: character %q is not allowed", p, c)
			}
		}
	}
	return nil
}
