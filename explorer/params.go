package explorer

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
)

// Every value a request carries is checked here before it reaches the
// store; a bad one is an *inputError (400) naming the parameter.

// Page sizes.
const (
	defaultLimit = 50
	maxLimit     = 500
)

func badInput(format string, args ...any) error {
	return &inputError{msg: fmt.Sprintf(format, args...)}
}

// name reads an entity, entity prefix or scope: at most
// eventstore.MaxCoordinateLen bytes of valid UTF-8 without control
// characters, like the coordinates the store accepts.
func name(q url.Values, param string, required bool) (string, error) {
	s := q.Get(param)
	switch {
	case s == "" && required:
		return "", badInput("%s is required", param)
	case len(s) > batpak.MaxCoordinateLen:
		return "", badInput("%s is longer than %d bytes", param, batpak.MaxCoordinateLen)
	case !utf8.ValidString(s):
		return "", badInput("%s is not valid UTF-8", param)
	case strings.ContainsFunc(s, unicode.IsControl):
		return "", badInput("%s contains a control character", param)
	}
	return s, nil
}

// number reads an unsigned decimal number; def when absent.
func number(q url.Values, param string, def uint64) (uint64, error) {
	s := q.Get(param)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || len(s) > 20 {
		return 0, badInput("%s must be a number from 0 to %d", param, uint64(1<<64-1))
	}
	return n, nil
}

// limit reads the page size.
func limit(q url.Values) (int, error) {
	n, err := number(q, "limit", defaultLimit)
	if err != nil || n < 1 || n > maxLimit {
		return 0, badInput("limit must be a number from 1 to %d", maxLimit)
	}
	return int(n), nil
}

// descending reads the order of a page: "asc" (oldest first) or "desc".
func descending(q url.Values, def bool) (bool, error) {
	switch q.Get("order") {
	case "":
		return def, nil
	case "asc":
		return false, nil
	case "desc":
		return true, nil
	}
	return false, badInput(`order must be "asc" or "desc"`)
}

// eventRef reads an event reference: an event id (a UUID), or a global
// sequence number, optionally with a leading #.
func eventRef(s string) (uuid.UUID, uint64, error) {
	if len(s) > 64 {
		return uuid.Nil, 0, badInput("an event is an id (a UUID) or a sequence number")
	}
	if n, err := strconv.ParseUint(strings.TrimPrefix(s, "#"), 10, 64); err == nil {
		if n == 0 {
			return uuid.Nil, 0, badInput("sequences start at 1")
		}
		return uuid.Nil, n, nil
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, 0, badInput("%q is neither an event id (a UUID) nor a sequence number", s)
	}
	return id, 0, nil
}

// getEvent reads the event ref names.
func getEvent(ctx context.Context, s Store, ref string) (batpak.Record, error) {
	id, seq, err := eventRef(ref)
	if err != nil {
		return batpak.Record{}, err
	}
	var rec batpak.Record
	if seq != 0 {
		rec, err = s.GetSequence(ctx, seq)
	} else {
		rec, err = s.Get(ctx, id)
	}
	if isNotFound(err) {
		return rec, &notFoundError{msg: fmt.Sprintf("no event %s in the store (it holds sequences up to %d)", ref, s.LastSequence())}
	}
	return rec, err
}
