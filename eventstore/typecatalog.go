package eventstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/internal/typecat"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/vfs"
)

// CatalogFile is the store's catalog of event type names, in its directory
// (format in docs/format.md). It is replaced whole, with
// [vfs.WriteFileAtomic], before the first event of a new type is written:
// every event's kind that an append named has its name in the file.
const CatalogFile = "catalog"

// typeCatalog is the catalog in memory: readers load it without a lock,
// appenders that bring a new name write the file under mu and then
// publish the new catalog.
type typeCatalog struct {
	cur atomic.Pointer[typecat.Catalog]
	mu  sync.Mutex // one write of the file at a time
}

// loadCatalog reads the catalog file of the store; a missing file is an
// empty catalog, a damaged one an error matching [batpak.ErrCorrupt] that
// names the file (the store does not open: names would be lost silently).
func (s *Store) loadCatalog() error {
	c, err := readCatalog(s.fs, s.dir)
	if err != nil {
		return err
	}
	s.types.cur.Store(c)
	return nil
}

// readCatalog reads and checks the catalog file in dir.
func readCatalog(fsys vfs.FS, dir string) (*typecat.Catalog, error) {
	path := filepath.Join(dir, CatalogFile)
	b, err := vfs.ReadFile(fsys, path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("eventstore: read %s: %w", path, err)
	}
	c, err := typecat.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("eventstore: %s: %w", path, err)
	}
	return c, nil
}

// ReadEventTypes reads the catalog of event type names of the store in
// dir without opening it: what [Store.EventTypes] returns. A store without
// a catalog has none; a damaged catalog is an error matching
// [batpak.ErrCorrupt].
func ReadEventTypes(dir string, opts ...VerifyOption) (map[kind.Kind]string, error) {
	cfg := verifyConfig{fs: vfs.OSFS{}}
	for _, o := range opts {
		o(&cfg)
	}
	c, err := readCatalog(cfg.fs, dir)
	if err != nil {
		return nil, err
	}
	return c.Map(), nil
}

// recordTypes makes the type names of events durable in the catalog
// before they are appended, or returns the conflict that refuses the
// append ([*batpak.TypeConflictError]). A name is thus in the catalog
// before any event carries it; an append that fails afterwards leaves
// its name there, bound to its kind.
func (s *Store) recordTypes(events []batpak.Event) error {
	add, err := s.types.cur.Load().Additions(events)
	if err != nil || len(add) == 0 {
		return err
	}
	if err := s.checkWritable(); err != nil {
		return err
	}
	s.types.mu.Lock()
	defer s.types.mu.Unlock()
	cur := s.types.cur.Load()
	if add, err = cur.Additions(events); err != nil || len(add) == 0 {
		return err // another appender wrote them meanwhile
	}
	next := cur.With(add...)
	if err := vfs.WriteFileAtomic(s.fs, filepath.Join(s.dir, CatalogFile), typecat.Marshal(next), s.cfg.fileMode); err != nil {
		return fmt.Errorf("eventstore: record event type names: %w", err)
	}
	s.types.cur.Store(next)
	return nil
}

// typeName returns the catalog's name of kind k, or "".
func (s *Store) typeName(k kind.Kind) string { return s.types.cur.Load().Name(k) }

// EventTypes returns the catalog of event type names: the name of every
// kind an append named.
func (s *Store) EventTypes(ctx context.Context) (map[kind.Kind]string, error) {
	if err := s.checkRead(ctx); err != nil {
		return nil, err
	}
	return s.types.cur.Load().Map(), nil
}
