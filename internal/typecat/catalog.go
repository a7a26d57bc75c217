// Package typecat is a store's catalog of event type names: which name each
// kind was appended under. Every backend keeps one (the embedded store in a
// file, [Marshal] and [Unmarshal] give its bytes; JetStream in a bucket;
// memstore in memory) and checks appends against it with the same rules:
// a kind keeps its first name, and a name its first kind.
//
// A [Catalog] never changes once made: [Catalog.With] returns a new one, so
// readers load it through an atomic pointer without a lock.
package typecat

import (
	"fmt"
	"maps"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

// Catalog binds kinds to type names, one to one. The zero value and nil
// are empty catalogs.
type Catalog struct {
	byKind map[kind.Kind]string
	byName map[string]kind.Kind
}

// Entry is one binding of a catalog.
type Entry struct {
	Kind kind.Kind
	Name string
}

// Name returns the name of kind k, or "".
func (c *Catalog) Name(k kind.Kind) string {
	if c == nil {
		return ""
	}
	return c.byKind[k]
}

// Len returns the number of bindings.
func (c *Catalog) Len() int {
	if c == nil {
		return 0
	}
	return len(c.byKind)
}

// Map returns a copy of the bindings, by kind.
func (c *Catalog) Map() map[kind.Kind]string {
	if c == nil {
		return map[kind.Kind]string{}
	}
	m := maps.Clone(c.byKind)
	if m == nil {
		m = map[kind.Kind]string{}
	}
	return m
}

// Check reports whether kind k under name is new to the catalog (and
// valid: a non-system kind and a name [batpak.ValidateTypeName] accepts),
// already in it, or in conflict with it (a [*batpak.TypeConflictError]).
func (c *Catalog) Check(k kind.Kind, name string) (isNew bool, err error) {
	if k.IsSystem() {
		return false, fmt.Errorf("%w: %s", batpak.ErrReservedKind, k)
	}
	if err := batpak.ValidateTypeName(name); err != nil {
		return false, err
	}
	old, hasKind := "", false
	var oldKind kind.Kind
	hasName := false
	if c != nil {
		old, hasKind = c.byKind[k]
		oldKind, hasName = c.byName[name]
	}
	switch {
	case hasKind && old == name:
		return false, nil
	case hasKind:
		return false, &batpak.TypeConflictError{Kind: k, Name: name, Catalog: true,
			Reason: fmt.Sprintf("kind %s is %q", k, old)}
	case hasName:
		return false, &batpak.TypeConflictError{Kind: k, Name: name, Catalog: true,
			Reason: fmt.Sprintf("%q is kind %s", name, oldKind)}
	}
	return true, nil
}

// Additions returns the bindings of events that c does not hold yet, each
// once, or the first conflict (with c or between the events). Events
// without a type name are skipped.
func (c *Catalog) Additions(events []batpak.Event) ([]Entry, error) {
	var add []Entry
	var pending *Catalog
	for i := range events {
		ev := &events[i]
		if ev.Type == "" {
			continue
		}
		isNew, err := c.Check(ev.Kind, ev.Type)
		if err != nil {
			return nil, err
		}
		if !isNew {
			continue
		}
		if isNew, err = pending.Check(ev.Kind, ev.Type); err != nil {
			return nil, err
		}
		if isNew {
			add = append(add, Entry{ev.Kind, ev.Type})
			pending = pending.With(Entry{ev.Kind, ev.Type})
		}
	}
	return add, nil
}

// With returns a catalog holding c's bindings and entries. The caller has
// checked the entries ([Catalog.Check]); an entry that conflicts replaces
// nothing and is dropped.
func (c *Catalog) With(entries ...Entry) *Catalog {
	n := &Catalog{byKind: make(map[kind.Kind]string, c.Len()+len(entries)), byName: make(map[string]kind.Kind, c.Len()+len(entries))}
	if c != nil {
		maps.Copy(n.byKind, c.byKind)
		maps.Copy(n.byName, c.byName)
	}
	for _, e := range entries {
		if isNew, err := n.Check(e.Kind, e.Name); err == nil && isNew {
			n.byKind[e.Kind], n.byName[e.Name] = e.Name, e.Kind
		}
	}
	return n
}
