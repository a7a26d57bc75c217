// Package sqlproj keeps read models in a database/sql database exactly
// once: each event is applied in a transaction that also stores the
// projection's position, so the table and the position always agree.
//
// # Guarantees
//
//   - Exactly once, across crashes: an event's writes and the position
//     past it commit together or not at all. A process killed at any
//     moment (SIGKILL, power loss on a database that keeps its commits)
//     leaves the read model equal to the events before the stored
//     position: none applied twice, none skipped. A restart goes on from
//     that position.
//   - [Positions] is the runner's [projection.Checkpoints]: a runner
//     resumes from the position the last transaction stored, not from a
//     checkpoint saved later. Saves only move a position forward, so a
//     runner's periodic save never moves it back behind a transaction.
//   - An event offered again (a runner that lost its lease and has not
//     yet stopped, a replay after a stale checkpoint) is recognised in the
//     transaction by its sequence below the stored position, and skipped.
//     With [projection.WithLeases], a handover applies each event once.
//   - A failing handler rolls its transaction back; the runner retries
//     and parks the event as its [projection.Policy] says. A retry of an
//     event parked behind the position ([projection.ParkedRetry]) is
//     applied and leaves the position alone.
//
// # Caveats
//
//   - The handler must do all its writes through the transaction it is
//     given; anything it does outside (a file, a message, another
//     database) is at least once, as with any projection.
//   - A parked event retried with success is applied once in the read
//     model, but a crash between that commit and the removal of its dead
//     letter retries it again after the restart: make handlers of events
//     that can be parked under [projection.Continue] idempotent, or keep
//     the default [projection.Stop], which retries them in order.
//   - The position table is created with portable SQL (CREATE TABLE IF
//     NOT EXISTS, VARCHAR and BIGINT) and written with UPDATE and INSERT,
//     no upsert, so it works on SQLite, PostgreSQL and MySQL; set the
//     placeholder style with [WithDollarPlaceholders] for PostgreSQL.
//   - Transactions use the database's default isolation. Two runners
//     writing the same projection at once, without leases, may both fail
//     on a conflict or a lock; that is what leases are for.
package sqlproj

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/projection"
)

// Handler is a read model kept in a database: ApplyTx applies one event
// with tx, which the projection commits with the new position.
type Handler interface {
	// Name identifies the projection's position; keep it stable.
	Name() string
	// Region selects the events it wants.
	Region() batpak.Region
	// ApplyTx applies rec through tx. An error rolls tx back.
	ApplyTx(ctx context.Context, tx *sql.Tx, rec batpak.Record) error
}

// ResetHandler is a Handler that can be rebuilt ([projection.Runner.Rebuild]):
// ResetTx drops what it built, in the transaction that also forgets its
// position.
type ResetHandler interface {
	Handler
	ResetTx(ctx context.Context, tx *sql.Tx) error
}

// Positions keeps projection positions in a table of db (by default
// "batpak_positions": name VARCHAR(128) PRIMARY KEY, next BIGINT), the
// next global sequence each projection will apply. It is a
// [projection.Checkpoints].
type Positions struct {
	db     *sql.DB
	table  string
	dollar bool
}

// Option configures [Positions].
type Option func(*Positions)

// WithTable names the position table (letters, digits and underscores,
// not starting with a digit).
func WithTable(name string) Option { return func(p *Positions) { p.table = name } }

// WithDollarPlaceholders writes queries with $1, $2 placeholders
// (PostgreSQL) instead of ? (SQLite, MySQL).
func WithDollarPlaceholders() Option { return func(p *Positions) { p.dollar = true } }

var validTable = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// ErrBadTable is returned by NewPositions for a table name it will not
// put into SQL.
var ErrBadTable = errors.New("sqlproj: table name must match [A-Za-z_][A-Za-z0-9_]{0,62}")

// NewPositions returns the positions kept in db, creating the table if
// it is missing.
func NewPositions(ctx context.Context, db *sql.DB, opts ...Option) (*Positions, error) {
	p := &Positions{db: db, table: "batpak_positions"}
	for _, o := range opts {
		o(p)
	}
	if !validTable.MatchString(p.table) {
		return nil, fmt.Errorf("%w: %q", ErrBadTable, p.table)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+p.table+
		" (name VARCHAR(128) NOT NULL PRIMARY KEY, next BIGINT NOT NULL)"); err != nil {
		return nil, fmt.Errorf("sqlproj: create %s: %w", p.table, err)
	}
	return p, nil
}

// q rewrites ? placeholders for the database.
func (p *Positions) q(query string) string {
	if !p.dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (p *Positions) load(ctx context.Context, q querier, name string) (uint64, error) {
	var next int64
	err := q.QueryRowContext(ctx, p.q("SELECT next FROM "+p.table+" WHERE name = ?"), name).Scan(&next)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlproj: load position of %s: %w", name, err)
	}
	return uint64(next), nil
}

// advance moves name's position to next if it is behind.
func (p *Positions) advance(ctx context.Context, q querier, name string, next uint64) error {
	res, err := q.ExecContext(ctx, p.q("UPDATE "+p.table+" SET next = ? WHERE name = ? AND next < ?"), int64(next), name, int64(next))
	if err != nil {
		return fmt.Errorf("sqlproj: save position of %s: %w", name, err)
	}
	if n, err := res.RowsAffected(); err == nil && n > 0 {
		return nil
	}
	var one int
	err = q.QueryRowContext(ctx, p.q("SELECT 1 FROM "+p.table+" WHERE name = ?"), name).Scan(&one)
	if err == nil {
		return nil // at or past next already
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlproj: save position of %s: %w", name, err)
	}
	if _, err := q.ExecContext(ctx, p.q("INSERT INTO "+p.table+" (name, next) VALUES (?, ?)"), name, int64(next)); err != nil {
		return fmt.Errorf("sqlproj: save position of %s: %w", name, err)
	}
	return nil
}

// Load returns the position of name (0: none yet).
func (p *Positions) Load(ctx context.Context, name string) (uint64, error) {
	return p.load(ctx, p.db, name)
}

// Save moves the position of name forward to next; a save behind the
// stored position does nothing (the transactions of the projection are
// ahead of the runner's periodic saves, and stay so).
func (p *Positions) Save(ctx context.Context, name string, next uint64) error {
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlproj: save position of %s: %w", name, err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := p.advance(ctx, tx, name, next); err != nil {
		return err
	}
	return tx.Commit()
}

// Projection returns h as a projection whose every event commits with its
// position. It is a [projection.Resetter] when h is a [ResetHandler].
func (p *Positions) Projection(h Handler) projection.Projection {
	pr := &proj{pos: p, h: h}
	if rh, ok := h.(ResetHandler); ok {
		return &resettable{proj: pr, rh: rh}
	}
	return pr
}

type proj struct {
	pos *Positions
	h   Handler
}

func (p *proj) Name() string          { return p.h.Name() }
func (p *proj) Region() batpak.Region { return p.h.Region() }

// Apply applies rec and stores the position past it in one transaction;
// an event below the stored position was applied already and is skipped.
func (p *proj) Apply(ctx context.Context, rec batpak.Record) error {
	name := p.h.Name()
	tx, err := p.pos.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlproj: %s: begin: %w", name, err)
	}
	defer func() { _ = tx.Rollback() }()
	retry := projection.ParkedRetry(ctx)
	if !retry {
		next, err := p.pos.load(ctx, tx, name)
		if err != nil {
			return err
		}
		if rec.Sequence < next {
			return nil // applied before: offered again
		}
	}
	if err := p.h.ApplyTx(ctx, tx, rec); err != nil {
		return err
	}
	if !retry {
		if err := p.pos.advance(ctx, tx, name, rec.Sequence+1); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlproj: %s: commit #%d: %w", name, rec.Sequence, err)
	}
	return nil
}

type resettable struct {
	*proj
	rh ResetHandler
}

// Reset drops the read model and its position in one transaction.
func (r *resettable) Reset(ctx context.Context) error {
	name := r.h.Name()
	tx, err := r.pos.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlproj: %s: begin: %w", name, err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := r.rh.ResetTx(ctx, tx); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, r.pos.q("DELETE FROM "+r.pos.table+" WHERE name = ?"), name); err != nil {
		return fmt.Errorf("sqlproj: %s: forget position: %w", name, err)
	}
	return tx.Commit()
}

var (
	_ projection.Checkpoints = (*Positions)(nil)
	_ projection.Resetter    = (*resettable)(nil)
)
