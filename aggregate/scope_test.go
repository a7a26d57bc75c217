package aggregate_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate"
)

// TestScopesIsolate runs two repositories, of scopes tenantA and tenantB,
// on the same entity id over one store and one snapshot store: each loads
// only its own events and its own snapshots.
func TestScopesIsolate(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []string{"memory", "file"} {
		t.Run(kind, func(t *testing.T) {
			s := openStore(t)
			var snaps aggregate.SnapshotStore = aggregate.NewMemorySnapshots()
			if kind == "file" {
				fs, err := aggregate.NewFileSnapshots(filepath.Join(t.TempDir(), "snaps"))
				if err != nil {
					t.Fatal(err)
				}
				snaps = fs
			}
			cs := &countingStore{Store: s}
			repo := func(scope string) *gated {
				t.Helper()
				r, err := aggregate.NewGatedRepository(cs, registry(), scope, gates(), aggregate.WithSnapshots(snaps, 2))
				if err != nil {
					t.Fatal(err)
				}
				if r.Scope() != scope {
					t.Fatalf("Scope() = %q", r.Scope())
				}
				return r
			}
			a, b := repo("tenantA"), repo("tenantB")
			coordA := batpak.Coordinate{Entity: "user:7", Scope: "tenantA"}
			coordB := batpak.Coordinate{Entity: "user:7", Scope: "tenantB"}

			mustExec(t, a, "user:7", Open{Limit: 5})
			mustExec(t, b, "user:7", Open{Limit: 1}) // no "already open": another stream
			mustExec(t, a, "user:7", Deposit{Amount: 10})
			mustExec(t, a, "user:7", Deposit{Amount: 20})
			mustExec(t, b, "user:7", Deposit{Amount: 1})
			// tenantA at version 3 (snapshot at 2), tenantB at 2 (snapshot at 2).
			if va, vb := s.StreamVersion(coordA), s.StreamVersion(coordB); va != 3 || vb != 2 {
				t.Fatalf("stream versions %d and %d, want 3 and 2", va, vb)
			}
			wantA := Account{Open: true, Limit: 5, Balance: 30, Deposits: 30, Events: 3}
			wantB := Account{Open: true, Limit: 1, Balance: 1, Deposits: 1, Events: 2}
			for _, tc := range []struct {
				r     *gated
				coord batpak.Coordinate
				want  Account
				v     uint64
				from  uint64 // the read after the snapshot
			}{{a, coordA, wantA, 3, 3}, {b, coordB, wantB, 2, 3}} {
				cs.take()
				st, v, err := tc.r.Load(ctx, "user:7")
				if err != nil || v != tc.v || *st != tc.want {
					t.Errorf("%s: Load = %+v v%d %v; want %+v v%d", tc.coord, st, v, err, tc.want, tc.v)
				}
				if reads := cs.take(); !slices.Equal(reads, []uint64{tc.from}) {
					t.Errorf("%s: read from %v, want [%d]: the snapshot was not used", tc.coord, reads, tc.from)
				}
				snap, ok, err := snaps.Load(ctx, tc.coord)
				if err != nil || !ok || snap.Coordinate != tc.coord || snap.Version != 2 {
					t.Errorf("%s: snapshot %+v %v %v", tc.coord, snap, ok, err)
				}
				for _, rec := range recordsOf(t, s, tc.coord) {
					if rec.Coordinate != tc.coord {
						t.Errorf("%s: record %s", tc.coord, rec.String())
					}
				}
			}
			// Without snapshots too, and a third scope sees nothing.
			for scope, want := range map[string]Account{"tenantA": wantA, "tenantB": wantB, "tenantC": {}} {
				r, err := aggregate.NewRepository[Account](s, registry(), scope)
				if err != nil {
					t.Fatal(err)
				}
				if st, _, err := r.Load(ctx, "user:7"); err != nil || *st != want {
					t.Errorf("%s without snapshots: %+v %v, want %+v", scope, st, err, want)
				}
			}
			// A conflict on one scope's stream is not one on the other's:
			// tenantB appends at its own version.
			if res := mustExec(t, b, "user:7", Deposit{Amount: 2}); res.Version != 3 || res.Attempts != 1 {
				t.Errorf("tenantB deposit: %+v", res)
			}
		})
	}
}

func recordsOf(t *testing.T, s aggregate.Store, coord batpak.Coordinate) []batpak.Record {
	t.Helper()
	var out []batpak.Record
	for rec, err := range s.ReadStream(context.Background(), coord, 0) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}

func TestInvalidScopeAndEntity(t *testing.T) {
	s := openStore(t)
	for _, scope := range []string{"", "a\nb", string([]byte{0xff})} {
		if _, err := aggregate.NewRepository[Account](s, registry(), scope); !errors.Is(err, batpak.ErrInvalidCoordinate) {
			t.Errorf("NewRepository(scope %q) = %v, want ErrInvalidCoordinate", scope, err)
		}
		if _, err := aggregate.NewGatedRepository(s, registry(), scope, gates()); !errors.Is(err, batpak.ErrInvalidCoordinate) {
			t.Errorf("NewGatedRepository(scope %q) = %v, want ErrInvalidCoordinate", scope, err)
		}
	}
	r := newGated(t, s)
	for _, entity := range []string{"", "a\x00b"} {
		if _, _, err := r.Load(context.Background(), entity); !errors.Is(err, batpak.ErrInvalidCoordinate) {
			t.Errorf("Load(%q) = %v, want ErrInvalidCoordinate", entity, err)
		}
		if _, err := execute(r, entity, Open{}); !errors.Is(err, batpak.ErrInvalidCoordinate) {
			t.Errorf("Execute(%q) = %v, want ErrInvalidCoordinate", entity, err)
		}
	}
	if _, err := aggregate.NewRepository[Account](nil, registry(), "s"); err == nil {
		t.Error("NewRepository without a store succeeded")
	}
	if _, err := aggregate.NewRepository[Account](s, nil, "s"); err == nil {
		t.Error("NewRepository without a registry succeeded")
	}
	if _, err := aggregate.NewGatedRepository[Account, *Account, Policy](s, registry(), "s", nil); err == nil {
		t.Error("NewGatedRepository without gates succeeded")
	}
}
