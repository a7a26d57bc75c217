package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/explorer"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/segment"
)

// timeLayout is RFC 3339 in UTC with the store's microsecond precision.
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// checkStoreDir refuses a path that is not a store directory, so a typo
// is not reported as an empty, healthy store. When the directory holds
// exactly one store one level down, as an application's data directory
// often does, the error names it.
func checkStoreDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s does not exist", dir)
		}
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if holdsStore(des) {
		return nil
	}
	err = fmt.Errorf("%s is not a batpak store: it has no segment, checkpoint or %s file", dir, eventstore.LockFileName)
	var below []string
	for _, de := range des {
		if !de.IsDir() {
			continue
		}
		sub := filepath.Join(dir, de.Name())
		if des, rerr := os.ReadDir(sub); rerr == nil && holdsStore(des) {
			below = append(below, sub)
		}
	}
	if len(below) == 1 {
		return fmt.Errorf("%w; did you mean %s?", err, below[0])
	}
	return err
}

// holdsStore reports whether a directory with these entries is a store:
// it has a segment file, a checkpoint or the lock file.
func holdsStore(des []os.DirEntry) bool {
	for _, de := range des {
		name := de.Name()
		if _, ok := segment.ParseFileName(name); ok || name == eventstore.CheckpointFileName || name == eventstore.LockFileName {
			return true
		}
	}
	return false
}

// openReadOnly opens the store in dir read-only, with advice on damage.
func openReadOnly(dir string) (*eventstore.Store, error) {
	if err := checkStoreDir(dir); err != nil {
		return nil, err
	}
	s, err := eventstore.OpenReadOnly(dir)
	if err != nil {
		return nil, damageAdvice(dir, err)
	}
	return s, nil
}

// damageAdvice adds what to do to an error that reports damage.
func damageAdvice(dir string, err error) error {
	if errors.Is(err, batpak.ErrCorrupt) {
		return fmt.Errorf("%w\nthe store is damaged: 'batpak verify %s' lists the damage, 'batpak repair %s' moves it to quarantine", err, dir, dir)
	}
	return err
}

// parseKind accepts a kind as category:type in hex ("1:002", as kinds
// print) or as a number (4098, 0x1002).
func parseKind(s string) (kind.Kind, error) {
	if c, t, ok := strings.Cut(s, ":"); ok {
		cat, err1 := strconv.ParseUint(c, 16, 8)
		typ, err2 := strconv.ParseUint(t, 16, 16)
		if err1 != nil || err2 != nil || cat > 0xF || typ > uint64(kind.MaxType) {
			return 0, fmt.Errorf("invalid kind %q: want category:type in hex, category 0-F and type 000-FFF (like 1:002)", s)
		}
		return kind.Kind(cat<<12 | typ), nil
	}
	n, err := strconv.ParseUint(s, 0, 16)
	if err != nil {
		return 0, fmt.Errorf("invalid kind %q: want category:type in hex (like 1:002) or a number up to 65535", s)
	}
	return kind.Kind(n), nil
}

// parseKindOrName accepts what parseKind does or an event type name that
// the catalog of the store in dir holds.
func parseKindOrName(dir, s string) (kind.Kind, error) {
	k, err := parseKind(s)
	if err == nil || batpak.ValidateTypeName(s) != nil || strings.ContainsRune(s, ':') {
		return k, err
	}
	types, cerr := eventstore.ReadEventTypes(dir)
	if cerr != nil {
		return 0, cerr
	}
	for k, name := range types {
		if name == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("%w, and no event type of the store is named %q", err, s)
}

// formatTime renders a timestamp as RFC 3339 in UTC with microseconds.
func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// eventJSON is one event as dump prints it.
type eventJSON struct {
	Sequence    uint64            `json:"sequence"`
	ID          string            `json:"id"`
	Correlation string            `json:"correlation"`
	Causation   *string           `json:"causation"` // null for a root event
	Entity      string            `json:"entity"`
	Scope       string            `json:"scope"`
	Version     uint64            `json:"version"`
	Kind        string            `json:"kind"`
	Type        string            `json:"type"`
	Timestamp   string            `json:"timestamp"`
	Metadata    map[string]string `json:"metadata"`
	Payload     json.RawMessage   `json:"payload"`
	Erased      bool              `json:"erased,omitempty"`
	PrevHash    string            `json:"prev_hash"`
	Hash        string            `json:"hash"`
}

func newEventJSON(rec *batpak.Record) eventJSON {
	e := eventJSON{
		Sequence:    rec.Sequence,
		ID:          rec.ID.String(),
		Correlation: rec.CorrelationID.String(),
		Entity:      rec.Coordinate.Entity,
		Scope:       rec.Coordinate.Scope,
		Version:     rec.Version,
		Kind:        rec.Kind.String(),
		Type:        rec.Type,
		Timestamp:   formatTime(rec.Timestamp),
		Metadata:    rec.Metadata,
		Payload:     explorer.RecordPayloadJSON(rec),
		Erased:      rec.Erased,
		PrevHash:    hex.EncodeToString(rec.PrevHash[:]),
		Hash:        hex.EncodeToString(rec.Hash[:]),
	}
	if rec.CausationID != uuid.Nil {
		c := rec.CausationID.String()
		e.Causation = &c
	}
	if e.Metadata == nil {
		e.Metadata = map[string]string{}
	}
	return e
}

// eventLine is one event as tail prints it: tab-separated sequence,
// timestamp, entity, version, type name (or kind) and payload as JSON
// ("(erased)" for an event whose subject was forgotten).
func eventLine(rec *batpak.Record) string {
	payload := string(explorer.RecordPayloadJSON(rec))
	if rec.Erased {
		payload = "(erased)"
	}
	return fmt.Sprintf("%d\t%s\t%s\tv%d\t%s\t%s", rec.Sequence, formatTime(rec.Timestamp),
		rec.Coordinate.Entity, rec.Version, rec.KindName(), payload)
}

// humanBytes formats n with a binary unit.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
