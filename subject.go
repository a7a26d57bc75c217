package batpak

import (
	"fmt"

	"github.com/batpak-go/batpak/kind"
)

// MetaSubject holds the data subject of an event whose payload is sealed
// with the subject's key ([Event.Subject]). The store writes it; an
// append that sets it in an event's metadata is refused.
const MetaSubject = "batpak.subject"

// Subject is a data subject: a person whose personal data events hold, in
// one scope (the scope of the streams of those events). The same ID in two
// scopes is two subjects, as the same entity is two streams.
type Subject struct {
	Scope string
	ID    string
}

// Validate checks the scope and the ID as a coordinate's scope and entity
// are checked ([Coordinate.Validate]).
func (s Subject) Validate() error {
	if err := validateName("scope", s.Scope); err != nil {
		return err
	}
	if err := validateName("subject", s.ID); err != nil {
		return err
	}
	return nil
}

func (s Subject) String() string { return s.Scope + "/" + s.ID }

// Personal is implemented by payload types that hold a data subject's
// personal data: [Registry.Event] sets the event's Subject to
// DataSubject(), so the store seals the payload with the subject's key
// and [Store.Forget] erases it. Keep what must outlive the person
// (amounts, dates) in other event types: an erased payload is gone whole.
type Personal interface {
	DataSubject() string
}

// Erased is what [Registry.Decode] returns in place of the payload of an
// event whose subject was forgotten ([Store.Forget]): the event's kind,
// type name and subject are still known, its content is not.
type Erased struct {
	Kind    kind.Kind
	Type    string
	Subject Subject
}

func (e Erased) String() string {
	name := e.Type
	if name == "" {
		name = e.Kind.String()
	}
	return fmt.Sprintf("erased %s of %s", name, e.Subject)
}

// erasedOf returns the Erased value of rec.
func erasedOf(rec *Record) Erased {
	return Erased{Kind: rec.Kind, Type: rec.Type, Subject: Subject{Scope: rec.Coordinate.Scope, ID: rec.Metadata[MetaSubject]}}
}
