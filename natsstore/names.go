package natsstore

import (
	"fmt"
	"strings"
)

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
