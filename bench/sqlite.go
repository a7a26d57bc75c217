package main

// SQLite (modernc.org/sqlite, pure Go): one events table,
//
//	events(seq INTEGER PRIMARY KEY, stream, version, kind, ts, id, payload, UNIQUE(stream, version))
//
// where seq (the rowid) is the global order and the unique key guards the
// stream versions.
//
// Durability: journal_mode=WAL with synchronous=FULL: every commit fsyncs
// the WAL before it returns. Relaxed mode is synchronous=NORMAL (the WAL is
// synced only at checkpoints: a commit survives a process crash, not power
// loss). Writes go through one connection (SetMaxOpenConns(1), the usual
// advice for SQLite writers): each append is its own BEGIN IMMEDIATE
// transaction and its own fsync; SQLite has no group commit. Reads use a
// separate pool.

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/google/uuid"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

type sqliteBackend struct{}

func (sqliteBackend) Name() string    { return "sqlite" }
func (sqliteBackend) Relaxed() string { return "WAL, synchronous=NORMAL" }

const sqliteSchema = `CREATE TABLE IF NOT EXISTS events (
	seq     INTEGER PRIMARY KEY,
	stream  TEXT    NOT NULL,
	version INTEGER NOT NULL,
	kind    INTEGER NOT NULL,
	ts      INTEGER NOT NULL,
	id      BLOB    NOT NULL,
	payload BLOB    NOT NULL,
	UNIQUE (stream, version)
)`

func (sqliteBackend) Open(dir string, durable bool) (Store, error) {
	sync := "NORMAL"
	if durable {
		sync = "FULL"
	}
	dsn := fmt.Sprintf("file:%s?_pragma=journal_mode(WAL)&_pragma=synchronous(%s)&_pragma=busy_timeout(10000)&_txlock=immediate",
		filepath.Join(dir, "events.db"), sync)
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	if _, err := w.Exec(sqliteSchema); err != nil {
		_ = w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		_ = w.Close()
		return nil, err
	}
	s := &sqliteStore{w: w, r: r}
	for _, p := range []struct {
		db  *sql.DB
		dst **sql.Stmt
		q   string
	}{
		{w, &s.tip, `SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?`},
		{w, &s.insert, `INSERT INTO events (stream, version, kind, ts, id, payload) VALUES (?, ?, ?, ?, ?, ?)`},
		{w, &s.insertNext, `INSERT INTO events (stream, version, kind, ts, id, payload)
			SELECT ?1, COALESCE(MAX(version), 0) + 1, ?2, ?3, ?4, ?5 FROM events WHERE stream = ?1`},
		{r, &s.stream, `SELECT seq, version, payload FROM events WHERE stream = ? ORDER BY version`},
		{r, &s.all, `SELECT seq, stream, version, payload FROM events ORDER BY seq`},
	} {
		if *p.dst, err = p.db.Prepare(p.q); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	return s, nil
}

type sqliteStore struct {
	w, r                                 *sql.DB
	tip, insert, insertNext, stream, all *sql.Stmt
}

func (s *sqliteStore) Append(stream string, expected int64, payloads [][]byte) (uint64, error) {
	tx, err := s.w.Begin()
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	var version uint64
	if err := tx.Stmt(s.tip).QueryRow(stream).Scan(&version); err != nil {
		return 0, err
	}
	if expected >= 0 && uint64(expected) != version {
		return 0, conflict(stream, expected, version)
	}
	ins := tx.Stmt(s.insert)
	for _, p := range payloads {
		version++
		if _, err := ins.Exec(stream, version, benchKind, nowMicros(), newID(), p); err != nil {
			return 0, sqliteErr(err)
		}
	}
	return version, sqliteErr(tx.Commit())
}

func (s *sqliteStore) Load(items []Item) error {
	tx, err := s.w.Begin()
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	ins := tx.Stmt(s.insertNext)
	for _, it := range items {
		if _, err := ins.Exec(it.Stream, benchKind, nowMicros(), newID(), it.Payload); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// sqliteErr turns a unique-key violation on (stream, version) into a conflict.
func sqliteErr(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE {
		return errors.Join(ErrConflict, err)
	}
	return err
}

func (s *sqliteStore) ReadStream(stream string, fn func(Event) error) error {
	rows, err := s.stream.Query(stream)
	if err != nil {
		return err
	}
	defer func() { _ = rows.Close() }()
	ev := Event{Stream: stream}
	var payload sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&ev.Seq, &ev.Version, &payload); err != nil {
			return err
		}
		ev.Payload = payload
		if err := fn(ev); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (s *sqliteStore) ReadAll(decode func([]byte) error, fn func(Event) error) error {
	fn = decodeInline(decode, fn)
	rows, err := s.all.Query()
	if err != nil {
		return err
	}
	defer func() { _ = rows.Close() }()
	var ev Event
	var stream, payload sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&ev.Seq, &stream, &ev.Version, &payload); err != nil {
			return err
		}
		ev.Stream, ev.Payload = string(stream), payload
		if err := fn(ev); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (s *sqliteStore) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.tip, s.insert, s.insertNext, s.stream, s.all} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(append(errs, s.r.Close(), s.w.Close())...)
}

func newID() []byte {
	id := uuid.Must(uuid.NewV7())
	return id[:]
}
