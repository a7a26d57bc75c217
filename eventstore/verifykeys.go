package eventstore

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/internal/shred"
	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
)

// subject notes the data subject of rec, if its payload is sealed.
func (v *verifier) subject(rec *segment.Record) {
	id, ok := rec.Metadata[batpak.MetaSubject]
	if !ok {
		return
	}
	s := batpak.Subject{Scope: rec.Scope, ID: id}
	if v.subjects == nil {
		v.subjects = make(map[batpak.Subject]uint64)
	}
	if _, seen := v.subjects[s]; !seen {
		v.subjects[s] = rec.Seq
	}
}

// fileProblem records damage to a file other than a segment.
func (v *verifier) fileProblem(path, kind, detail string) {
	v.report.Problems = append(v.report.Problems, Problem{Path: path, Kind: kind, Detail: detail})
}

// catalog checks the catalog of event type names.
func (v *verifier) catalog(fsys vfs.FS) {
	c, err := readCatalog(fsys, v.dir)
	if err != nil {
		v.fileProblem(filepath.Join(v.dir, CatalogFile), "catalog", err.Error())
		return
	}
	v.report.TypeNames = c.Len()
}

// keys checks every key file (it decodes, and holds the subject its name
// is made of) and that every subject of a sealed event has one: a key, or
// the tombstone of a Forget. A sealed event without either lost its key.
func (v *verifier) keys(fsys vfs.FS) {
	dir := filepath.Join(v.dir, KeysDir)
	des, err := fsys.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		v.fileProblem(dir, "key", err.Error())
		return
	}
	have := make(map[string]bool, len(des))
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), ".key")
		if !ok {
			continue // a temporary file a crash left: the next open removes it
		}
		path := filepath.Join(dir, de.Name())
		b, err := vfs.ReadFile(fsys, path)
		if err == nil {
			var e *shred.Entry
			if e, err = shred.Unmarshal(b); err == nil && shred.Name(e.Subject) != name {
				err = fmt.Errorf("it holds the key of %s, whose file is %s.key", e.Subject, shred.Name(e.Subject))
			}
			if err == nil && e.Forgotten {
				v.report.Forgotten++
			} else if err == nil {
				v.report.Keys++
			}
		}
		if err != nil {
			v.fileProblem(path, "key", err.Error())
		}
		have[name] = true // a damaged file is reported once, above
	}
	subjects := make([]batpak.Subject, 0, len(v.subjects))
	for s := range v.subjects {
		if !have[shred.Name(s)] {
			subjects = append(subjects, s)
		}
	}
	slices.SortFunc(subjects, func(a, b batpak.Subject) int { return strings.Compare(a.String(), b.String()) })
	for _, s := range subjects {
		v.fileProblem(filepath.Join(dir, shred.Name(s)+".key"), "key",
			fmt.Sprintf("subject %s of event %d has no key file: its sealed events are unreadable", s, v.subjects[s]))
	}
}
