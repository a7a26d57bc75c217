package sqlproj_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/projection"
	"github.com/batpak-go/batpak/projection/sqlproj"
)

// totalsView keeps a running total per entity in a table.
type totalsView struct{}

func (totalsView) Name() string          { return "totals" }
func (totalsView) Region() batpak.Region { return batpak.Region{Scope: "demo"} }
func (totalsView) ApplyTx(ctx context.Context, tx *sql.Tx, rec batpak.Record) error {
	a, err := batpak.DecodeAs[Added](&rec)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO entity_totals (entity, total) VALUES (?, ?)
		ON CONFLICT (entity) DO UPDATE SET total = total + excluded.total`, rec.Coordinate.Entity, a.N)
	return err
}

// A read model in SQLite: each event and the projection's position commit
// in one transaction, so a crash never applies an event twice or skips
// one. Parked events go beside the event store, in files.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "batpak-sqlproj-")
	defer os.RemoveAll(dir)
	store, _ := eventstore.Open(filepath.Join(dir, "events"))
	defer store.Close()
	for i := 1; i <= 4; i++ {
		_, _ = store.Append(ctx, batpak.Coordinate{Entity: fmt.Sprintf("counter:%d", i%2), Scope: "demo"},
			[]batpak.Event{{Kind: kindAdded, Payload: Added{N: i}}})
	}

	db, _ := sql.Open("sqlite", filepath.Join(dir, "read.db"))
	defer db.Close()
	_, _ = db.Exec("CREATE TABLE entity_totals (entity TEXT PRIMARY KEY, total INTEGER)")
	positions, _ := sqlproj.NewPositions(ctx, db)
	parked, _ := projection.NewFileDeadLetters(filepath.Join(dir, "parked"), nil)
	runner := projection.NewRunner(store, positions, projection.WithDeadLetters(parked))
	next, err := runner.CatchUp(ctx, positions.Projection(totalsView{}))
	fmt.Println("next:", next, err)

	rows, _ := db.Query("SELECT entity, total FROM entity_totals ORDER BY entity")
	defer rows.Close()
	for rows.Next() {
		var entity string
		var total int
		_ = rows.Scan(&entity, &total)
		fmt.Println(entity, total)
	}
	// Output:
	// next: 5 <nil>
	// counter:0 6
	// counter:1 4
}
