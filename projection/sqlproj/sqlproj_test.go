package sqlproj_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/projection"
	"github.com/batpak-go/batpak/projection/sqlproj"
)

var kindAdded = kind.Custom(2, 1)

type Added struct{ N int }

// hangContext ends shortly before the test binary's deadline (go test
// -timeout), or with the test: a guard against hangs, not a performance
// budget, so a loaded machine makes the test slower but never fails it.
func hangContext(t *testing.T) context.Context {
	end := time.Now().Add(time.Hour) // go test -timeout 0
	if d, ok := t.Deadline(); ok {
		end = d.Add(-min(time.Until(d)/10, time.Minute))
	}
	ctx, cancel := context.WithDeadline(t.Context(), end)
	t.Cleanup(cancel)
	return ctx
}

// openDB opens the SQLite database at path as several processes share
// one: WAL, and a busy timeout so a writer waits for another's lock. It
// creates the ledger's tables if they are missing.
func openDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db := openShared(t, path)
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS applied (seq INTEGER NOT NULL, by TEXT NOT NULL);
		CREATE TABLE IF NOT EXISTS totals (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
		INSERT OR IGNORE INTO totals (id, n) VALUES (1, 0)`); err != nil {
		t.Fatal(err)
	}
	return db
}

// openShared opens the database at path without writing to it: a helper
// process must not wait for the lock of another that is stuck in a
// transaction.
func openShared(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(60000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func appendN(t testing.TB, s *eventstore.Store, n int) {
	t.Helper()
	for i := range n {
		if _, err := s.Append(context.Background(), batpak.Coordinate{Entity: fmt.Sprintf("e:%d", i%7), Scope: "test"},
			[]batpak.Event{{Kind: kindAdded, Payload: Added{N: i}}}); err != nil {
			t.Fatal(err)
		}
	}
}

// ledger writes one row per event and counts them in a second table, so
// a transaction cut in half would show as a count that disagrees.
type ledger struct {
	by    string
	fail  map[uint64]bool
	block func(seq uint64) // called mid-transaction, after the first write
}

func (l *ledger) Name() string          { return "ledger" }
func (l *ledger) Region() batpak.Region { return batpak.Region{} }
func (l *ledger) ApplyTx(ctx context.Context, tx *sql.Tx, rec batpak.Record) error {
	if l.fail[rec.Sequence] {
		return fmt.Errorf("cannot apply #%d", rec.Sequence)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO applied (seq, by) VALUES (?, ?)", int64(rec.Sequence), l.by); err != nil {
		return err
	}
	if l.block != nil {
		l.block(rec.Sequence)
	}
	_, err := tx.ExecContext(ctx, "UPDATE totals SET n = n + 1 WHERE id = 1")
	return err
}

func (l *ledger) ResetTx(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, "DELETE FROM applied"); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, "UPDATE totals SET n = 0 WHERE id = 1")
	return err
}

type row struct {
	seq uint64
	by  string
}

// rows returns the ledger's rows in sequence order, and checks that the
// count agrees.
func rows(t *testing.T, db *sql.DB) []row {
	t.Helper()
	rs, err := db.Query("SELECT seq, by FROM applied ORDER BY seq, rowid")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var r row
		if err := rs.Scan(&r.seq, &r.by); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow("SELECT n FROM totals WHERE id = 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(out) {
		t.Fatalf("the count says %d events, the table holds %d: a transaction was cut", n, len(out))
	}
	return out
}

func seqs(rs []row) []uint64 {
	out := make([]uint64, len(rs))
	for i, r := range rs {
		out[i] = r.seq
	}
	return out
}

func dense(from, to uint64) []uint64 {
	out := []uint64{}
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func fast(then projection.Action) projection.Policy {
	return projection.Policy{Attempts: 2, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond, Then: then}
}

func TestApplyCommitsWithThePosition(t *testing.T) {
	ctx := hangContext(t)
	dir := t.TempDir()
	s, err := eventstore.Open(filepath.Join(dir, "events"), eventstore.WithSyncMode(eventstore.SyncNone))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	appendN(t, s, 20)
	db := openDB(t, filepath.Join(dir, "read.db"))
	pos, err := sqlproj.NewPositions(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	l := &ledger{by: "here"}
	p := pos.Projection(l)
	r := projection.NewRunner(s, pos)
	if next, err := r.CatchUp(ctx, p); err != nil || next != 21 {
		t.Fatalf("CatchUp = %d, %v", next, err)
	}
	if got := seqs(rows(t, db)); !slices.Equal(got, dense(1, 20)) {
		t.Fatalf("table holds %v", got)
	}
	// An event offered again is recognised and skipped.
	rec, err := s.GetSequence(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if got := seqs(rows(t, db)); !slices.Equal(got, dense(1, 20)) {
		t.Fatalf("after a redelivery the table holds %v", got)
	}
	// A save behind the position does not move it back.
	if err := pos.Save(ctx, "ledger", 3); err != nil {
		t.Fatal(err)
	}
	if next, err := pos.Load(ctx, "ledger"); err != nil || next != 21 {
		t.Fatalf("Load after a save behind = %d, %v", next, err)
	}
	// Rebuild drops the table and the position together, and refills it.
	if _, ok := p.(projection.Resetter); !ok {
		t.Fatal("the projection of a ResetHandler cannot be reset")
	}
	if next, err := r.Rebuild(ctx, p); err != nil || next != 21 {
		t.Fatalf("Rebuild = %d, %v", next, err)
	}
	if got := seqs(rows(t, db)); !slices.Equal(got, dense(1, 20)) {
		t.Fatalf("after Rebuild the table holds %v", got)
	}
	if _, err := sqlproj.NewPositions(ctx, db, sqlproj.WithTable("x; DROP TABLE applied")); !errors.Is(err, sqlproj.ErrBadTable) {
		t.Fatalf("NewPositions with a bad table name = %v", err)
	}
}

// TestParkedRetryLeavesThePosition: an event parked under Continue is
// missing from the table; retried, it is written once and the position
// stays where the later events took it.
func TestParkedRetryLeavesThePosition(t *testing.T) {
	ctx := hangContext(t)
	dir := t.TempDir()
	s, err := eventstore.Open(filepath.Join(dir, "events"), eventstore.WithSyncMode(eventstore.SyncNone))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	appendN(t, s, 10)
	db := openDB(t, filepath.Join(dir, "read.db"))
	pos, err := sqlproj.NewPositions(ctx, db, sqlproj.WithTable("positions"))
	if err != nil {
		t.Fatal(err)
	}
	dls, err := projection.NewFileDeadLetters(filepath.Join(dir, "parked"), nil)
	if err != nil {
		t.Fatal(err)
	}
	l := &ledger{by: "here", fail: map[uint64]bool{4: true}}
	r := projection.NewRunner(s, pos, projection.WithDeadLetters(dls), projection.WithPolicy(fast(projection.Continue)))
	if _, err := r.CatchUp(ctx, pos.Projection(l)); err != nil {
		t.Fatal(err)
	}
	want := slices.DeleteFunc(dense(1, 10), func(s uint64) bool { return s == 4 })
	if got := seqs(rows(t, db)); !slices.Equal(got, want) {
		t.Fatalf("table holds %v", got)
	}
	l.fail = nil
	if err := r.Retry(ctx, "ledger", 4); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CatchUp(ctx, pos.Projection(l)); err != nil {
		t.Fatal(err)
	}
	got := seqs(rows(t, db))
	slices.Sort(got)
	if !slices.Equal(got, dense(1, 10)) {
		t.Fatalf("after the retry the table holds %v", got)
	}
	if next, err := pos.Load(ctx, "ledger"); err != nil || next != 11 {
		t.Fatalf("position %d, %v", next, err)
	}
	if list, _ := dls.Parked(ctx, "ledger"); len(list) != 0 {
		t.Fatalf("still parked: %+v", list)
	}
}
