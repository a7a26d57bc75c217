package bank

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/projection"
	"github.com/batpak-go/batpak/projection/sqlproj"
)

// The balances read model again, in a SQL database: package sqlproj
// commits each event's row change with the projection's position, so a
// process killed at any moment leaves the table equal to the events before
// the stored position, and the next run goes on from there. Unlike the
// in-memory read models, it survives the process.

// SQLBalancesName is the name of the SQL balances projection, under which
// its position is stored.
const SQLBalancesName = "bank-balances-sql"

// positionsTable is where sqlproj keeps the projection's position.
const positionsTable = "batpak_positions"

// sqlBalances keeps, per account, its balance and how many of its events
// were applied (the count shows an event applied twice even when it moves
// no money).
type sqlBalances struct{ reg *batpak.Registry }

func (sqlBalances) Name() string { return SQLBalancesName }

func (sqlBalances) Region() batpak.Region {
	return batpak.Region{Scope: Scope, EntityPrefix: "account:"}
}

func (v sqlBalances) ApplyTx(ctx context.Context, tx *sql.Tx, rec batpak.Record) error {
	ev, err := v.reg.Decode(&rec)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO balances (account, balance, events) VALUES (?, ?, 1)
		ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance, events = events + 1`,
		strings.TrimPrefix(rec.Coordinate.Entity, "account:"), Delta(ev))
	return err
}

func (sqlBalances) ResetTx(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, "DELETE FROM balances")
	return err
}

// openSQL creates the balances table and the positions table in db if
// they are missing, and returns the positions.
func openSQL(ctx context.Context, db *sql.DB) (*sqlproj.Positions, error) {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS balances (
		account TEXT NOT NULL PRIMARY KEY, balance INTEGER NOT NULL, events INTEGER NOT NULL)`); err != nil {
		return nil, fmt.Errorf("bank: create table balances: %w", err)
	}
	return sqlproj.NewPositions(ctx, db, sqlproj.WithTable(positionsTable))
}

// SQLRow is one account's row of the balances table.
type SQLRow struct {
	Balance int64
	Events  int // events of the account applied
}

// SQLTable is the balances table as one transaction read it.
type SQLTable struct {
	Rows map[string]SQLRow // by account
	// Next is the projection's stored position: the rows hold exactly
	// the events of the accounts before it.
	Next uint64
}

// ReadSQL reads the balances table and the projection's position in one
// transaction, so the two agree. The tables are there once a session
// started with the database ([WithSQL]).
func ReadSQL(ctx context.Context, db *sql.DB) (*SQLTable, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }()
	t := &SQLTable{Rows: make(map[string]SQLRow)}
	var next int64
	err = tx.QueryRowContext(ctx, "SELECT next FROM "+positionsTable+" WHERE name = ?", SQLBalancesName).Scan(&next)
	switch {
	case errors.Is(err, sql.ErrNoRows): // nothing applied yet
	case err != nil:
		return nil, fmt.Errorf("bank: read the position of %s: %w", SQLBalancesName, err)
	}
	t.Next = uint64(next)
	rows, err := tx.QueryContext(ctx, "SELECT account, balance, events FROM balances")
	if err != nil {
		return nil, fmt.Errorf("bank: read table balances: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var r SQLRow
		if err := rows.Scan(&id, &r.Balance, &r.Events); err != nil {
			return nil, err
		}
		t.Rows[id] = r
	}
	return t, rows.Err()
}

// checkpoints keeps the SQL read model's position in its database, where
// it commits with each event, and the in-memory read models' in memory,
// where they start over with each run: one runner runs them all.
type checkpoints struct {
	mem *projection.MemoryCheckpoints
	sql *sqlproj.Positions // nil without a database
}

func (c checkpoints) of(name string) projection.Checkpoints {
	if name == SQLBalancesName && c.sql != nil {
		return c.sql
	}
	return c.mem
}

func (c checkpoints) Load(ctx context.Context, name string) (uint64, error) {
	return c.of(name).Load(ctx, name)
}

func (c checkpoints) Save(ctx context.Context, name string, next uint64) error {
	return c.of(name).Save(ctx, name, next)
}

// DeadLetters keeps parked events in memory, for every read model.
func (c checkpoints) DeadLetters() projection.DeadLetters { return c.mem.DeadLetters() }

var _ projection.Checkpoints = checkpoints{}
