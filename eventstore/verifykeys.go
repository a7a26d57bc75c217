package eventstore

import (
	"crypto/cipher"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/internal/shred"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
)

// subject notes the data subject of rec, if its payload is sealed, and
// checks that the payload opens with the subject's key: a key file that
// was replaced (a lost key recreated, an older backup of the keys
// restored) leaves the events sealed before unreadable, and only opening
// them finds that.
func (v *verifier) subject(id uint32, off int64, rec *segment.Record) {
	sid, ok := rec.Metadata[batpak.MetaSubject]
	if !ok {
		return
	}
	s := batpak.Subject{Scope: rec.Scope, ID: sid}
	if v.subjects == nil {
		v.subjects = make(map[batpak.Subject]uint64)
	}
	if _, seen := v.subjects[s]; !seen {
		v.subjects[s] = rec.Seq
	}
	k := v.keyFiles[shred.Name(s)]
	if k == nil || k.forgotten || k.aead == nil {
		return // no file, a damaged one (reported by keys) or a Forget
	}
	if _, err := shred.OpenWith(k.aead, s, kind.Kind(rec.Kind), rec.Payload); err != nil {
		v.problem(id, off, "key", fmt.Sprintf("event %d of subject %s does not open with the subject's key: the key file was replaced or the payload is damaged", rec.Seq, s))
	}
}

// keyFile is what Verify read of one key file.
type keyFile struct {
	forgotten bool
	aead      cipher.AEAD // nil for a damaged file
}

// loadKeys reads every key file before the segments are read, reporting
// the damaged ones.
func (v *verifier) loadKeys(fsys vfs.FS) {
	dir := filepath.Join(v.dir, KeysDir)
	des, err := fsys.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		v.fileProblem(dir, "key", err.Error())
		return
	}
	v.keyFiles = make(map[string]*keyFile, len(des))
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), ".key")
		if !ok {
			continue // a temporary file a crash left: the next open removes it
		}
		path := filepath.Join(dir, de.Name())
		kf := &keyFile{}
		v.keyFiles[name] = kf // a damaged file is reported once, here
		b, err := vfs.ReadFile(fsys, path)
		if err == nil {
			var e *shred.Entry
			if e, err = shred.Unmarshal(b); err == nil && shred.Name(e.Subject) != name {
				err = fmt.Errorf("it holds the key of %s, whose file is %s.key", e.Subject, shred.Name(e.Subject))
			}
			switch {
			case err != nil:
			case e.Forgotten:
				kf.forgotten = true
				v.report.Forgotten++
			default:
				kf.aead = shred.AEAD(&e.Key)
				v.report.Keys++
			}
		}
		if err != nil {
			v.fileProblem(path, "key", err.Error())
		}
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

// keys checks that every subject of a sealed event has a key file: a
// key, or the tombstone of a Forget. A sealed event without either lost
// its key.
func (v *verifier) keys() {
	subjects := make([]batpak.Subject, 0, len(v.subjects))
	for s := range v.subjects {
		if v.keyFiles[shred.Name(s)] == nil {
			subjects = append(subjects, s)
		}
	}
	slices.SortFunc(subjects, func(a, b batpak.Subject) int { return strings.Compare(a.String(), b.String()) })
	for _, s := range subjects {
		v.fileProblem(filepath.Join(v.dir, KeysDir, shred.Name(s)+".key"), "key",
			fmt.Sprintf("subject %s of event %d has no key file: its sealed events are unreadable", s, v.subjects[s]))
	}
}
