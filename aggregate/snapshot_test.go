package aggregate_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate"
)

func TestSnapshotsSavedWhenCrossingMultiples(t *testing.T) {
	tests := []struct {
		name  string
		every int
		sizes []int // events per command
		saved []uint64
	}{
		{"every 3, one event at a time", 3, []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, []uint64{3, 6, 9}},
		{"every 1", 1, []int{1, 1, 1}, []uint64{1, 2, 3}},
		{"every 4, three at a time", 4, []int{1, 2, 3, 3, 3, 3}, []uint64{6, 9, 12}},
		{"a command spanning two multiples saves once", 2, []int{1, 5, 1}, []uint64{6}},
		{"landing on the multiple", 5, []int{1, 4, 5, 1}, []uint64{5, 10}},
		{"never reached", 100, []int{1, 2, 3}, nil},
		{"zero means every event", 0, []int{1, 1}, []uint64{1, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			log := &snapshotLog{SnapshotStore: aggregate.NewMemorySnapshots()}
			r := newGated(t, s, aggregate.WithSnapshots(log, tc.every))
			for i, n := range tc.sizes {
				var cmd aggregate.Command[Account] = Open{}
				if i > 0 {
					cmd = DepositMany{Amounts: slices.Repeat([]int64{1}, n)}
				}
				mustExec(t, r, "s", cmd)
				mustExec(t, r, "s", Nothing{}) // no events: no snapshot
			}
			if !slices.Equal(log.saved, tc.saved) {
				t.Errorf("snapshots at %v, want %v", log.saved, tc.saved)
			}
			snap, ok, err := log.Load(context.Background(), co("s"))
			if len(tc.saved) == 0 {
				if ok {
					t.Errorf("a snapshot exists: %+v", snap)
				}
				return
			}
			if err != nil || !ok || snap.Version != tc.saved[len(tc.saved)-1] || snap.Coordinate != co("s") || snap.Type == "" {
				t.Fatalf("latest snapshot %+v, %v, %v", snap, ok, err)
			}
			var st Account
			if err := msgpack.Unmarshal(snap.Data, &st); err != nil {
				t.Fatal(err)
			}
			if st.Events != int(snap.Version) {
				t.Errorf("the snapshot at v%d holds %d events", snap.Version, st.Events)
			}
		})
	}
}

func TestLoadUsesSnapshotAndTail(t *testing.T) {
	for _, kind := range []string{"memory", "file"} {
		t.Run(kind, func(t *testing.T) {
			s := openStore(t)
			cs := &countingStore{Store: s}
			var snaps aggregate.SnapshotStore = aggregate.NewMemorySnapshots()
			if kind == "file" {
				fs, err := aggregate.NewFileSnapshots(filepath.Join(t.TempDir(), "snaps"))
				if err != nil {
					t.Fatal(err)
				}
				snaps = fs
			}
			r := newGated(t, cs, aggregate.WithSnapshots(snaps, 4))
			full := newGated(t, s)
			ctx := context.Background()
			mustExec(t, r, "e", Open{Limit: 3})
			for i := range 9 {
				mustExec(t, r, "e", Deposit{Amount: int64(i + 1)})
			}
			// Version 10; the latest snapshot is at 8.
			cs.take()
			st, v, err := r.Load(ctx, "e")
			if err != nil || v != 10 {
				t.Fatalf("Load = v%d, %v", v, err)
			}
			if reads := cs.take(); !slices.Equal(reads, []uint64{9}) {
				t.Errorf("ReadStream from %v, want [9] (snapshot at 8 + tail)", reads)
			}
			want, wv, err := full.Load(ctx, "e")
			if err != nil || wv != 10 || *st != *want {
				t.Errorf("snapshot+tail %+v, full replay %+v v%d %v", *st, *want, wv, err)
			}
			if got := fold(t, s, "e"); got != *st {
				t.Errorf("fold %+v, Load %+v", got, *st)
			}
			// Execute loads the same way.
			mustExec(t, r, "e", Deposit{Amount: 1})
			if reads := cs.take(); !slices.Equal(reads, []uint64{9}) {
				t.Errorf("Execute read from %v, want [9]", reads)
			}
			// On a multiple, the tail is empty.
			for range 5 {
				mustExec(t, r, "e", Deposit{Amount: 1})
			}
			cs.take()
			if _, v, _ := r.Load(ctx, "e"); v != 16 {
				t.Fatalf("version %d", v)
			}
			if reads := cs.take(); !slices.Equal(reads, []uint64{17}) {
				t.Errorf("ReadStream from %v, want [17]", reads)
			}
			// Without a snapshot (another entity) the whole stream is read.
			mustExec(t, r, "other", Open{})
			cs.take()
			if _, v, _ := r.Load(ctx, "other"); v != 1 {
				t.Fatalf("version %d", v)
			}
			if reads := cs.take(); !slices.Equal(reads, []uint64{1}) {
				t.Errorf("ReadStream from %v, want [1]", reads)
			}
		})
	}
}

// snapFile returns the only snapshot file in dir.
func snapFile(t *testing.T, dir string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.snap"))
	if err != nil || len(m) != 1 {
		t.Fatalf("snapshot files %v, %v", m, err)
	}
	return m[0]
}

func TestCorruptSnapshotFallsBackToReplay(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	cs := &countingStore{Store: s}
	dir := filepath.Join(t.TempDir(), "snaps")
	fs, err := aggregate.NewFileSnapshots(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := newGated(t, cs, aggregate.WithSnapshots(fs, 5))
	mustExec(t, r, "acct", Open{Limit: 7})
	for i := range 6 {
		mustExec(t, r, "acct", Deposit{Amount: int64(10 * (i + 1))})
	}
	// Version 7, snapshot at 5.
	want := fold(t, s, "acct")
	path := snapFile(t, dir)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	goodSnap, ok, err := fs.Load(ctx, co("acct"))
	if err != nil || !ok || goodSnap.Version != 5 {
		t.Fatalf("snapshot %+v %v %v", goodSnap, ok, err)
	}

	// check loads and expects the state of the full replay, read from
	// version from.
	check := func(t *testing.T, from uint64) {
		t.Helper()
		cs.take()
		st, v, err := r.Load(ctx, "acct")
		if err != nil || v != 7 || *st != want {
			t.Errorf("Load = %+v v%d %v; want %+v v7", st, v, err, want)
		}
		if reads := cs.take(); !slices.Equal(reads, []uint64{from}) {
			t.Errorf("ReadStream from %v, want [%d]", reads, from)
		}
	}
	check(t, 6) // the intact snapshot is used

	// resave writes a snapshot with a valid file checksum.
	resave := func(t *testing.T, snap aggregate.Snapshot) {
		t.Helper()
		if err := fs.Save(ctx, snap); err != nil {
			t.Fatal(err)
		}
	}
	// misleading is msgpack of a plausible but wrong state: if a bad
	// snapshot were trusted, the state would show it.
	misleading, err := msgpack.Marshal(&Account{Open: true, Balance: 999_999, Events: 5})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("every flipped byte", func(t *testing.T) {
		for i := range good {
			bad := bytes.Clone(good)
			bad[i] ^= 0xA5
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, ok, err := fs.Load(ctx, co("acct")); err == nil || ok {
				t.Errorf("byte %d flipped: FileSnapshots.Load = %v, %v; want an error", i, ok, err)
			}
			check(t, 1)
		}
	})
	truncations := []int{0, 1, 3, 4, 5, len(good) / 2, len(good) - 1}
	for _, n := range truncations {
		t.Run("truncated", func(t *testing.T) {
			if err := os.WriteFile(path, good[:n], 0o600); err != nil {
				t.Fatal(err)
			}
			check(t, 1)
		})
	}
	t.Run("appended garbage", func(t *testing.T) {
		if err := os.WriteFile(path, append(bytes.Clone(good), 0, 1, 2), 0o600); err != nil {
			t.Fatal(err)
		}
		check(t, 1)
	})
	t.Run("valid checksum over a body that is not a snapshot", func(t *testing.T) {
		// The file format is crc32(body) || body; a matching CRC over junk.
		body := []byte{0xc1, 0xc1, 0xc1}
		if err := os.WriteFile(path, crcFrame(body), 0o600); err != nil {
			t.Fatal(err)
		}
		check(t, 1)
	})
	t.Run("another type", func(t *testing.T) {
		snap := goodSnap
		snap.Type = "example.com/other.Account"
		snap.Data = misleading
		resave(t, snap)
		check(t, 1)
	})
	t.Run("empty type", func(t *testing.T) {
		snap := goodSnap
		snap.Type, snap.Data = "", misleading
		resave(t, snap)
		check(t, 1)
	})
	t.Run("undecodable data", func(t *testing.T) {
		for _, data := range [][]byte{{0xc1}, {}, []byte("not msgpack"), {0xa3, 'a', 'b', 'c'}, misleading[:len(misleading)/2]} {
			snap := goodSnap
			snap.Data = data
			resave(t, snap)
			check(t, 1)
		}
	})
	t.Run("restored", func(t *testing.T) {
		if err := os.WriteFile(path, good, 0o600); err != nil {
			t.Fatal(err)
		}
		check(t, 6)
	})
	t.Run("missing", func(t *testing.T) {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		check(t, 1)
	})
	t.Run("unreadable", func(t *testing.T) {
		// A directory where the file should be: ReadFile fails.
		if err := os.Mkdir(path, 0o700); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(path)
		if _, _, err := fs.Load(ctx, co("acct")); err == nil {
			t.Error("FileSnapshots.Load read a directory")
		}
		check(t, 1)
	})
	// A later save replaces the damaged snapshot.
	mustExec(t, r, "acct", DepositMany{Amounts: []int64{1, 2, 3}}) // v10
	want = fold(t, s, "acct")
	cs.take()
	if st, v, err := r.Load(ctx, "acct"); err != nil || v != 10 || *st != want {
		t.Errorf("Load = %+v v%d %v", st, v, err)
	}
	if reads := cs.take(); !slices.Equal(reads, []uint64{11}) {
		t.Errorf("ReadStream from %v after a new snapshot, want [11]", reads)
	}
}

func crcFrame(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(body)), body...)
}

func TestSnapshotStoreMisbehaving(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	plain := newGated(t, s)
	mustExec(t, plain, "m", Open{})
	mustExec(t, plain, "m", Deposit{Amount: 42})
	want := fold(t, s, "m")
	data, _ := msgpack.Marshal(&Account{Open: true, Balance: -1, Events: 1})
	// The real type name, taken from a snapshot the repository wrote.
	mem := aggregate.NewMemorySnapshots()
	mustExec(t, newPlain(t, openStore(t), aggregate.WithSnapshots(mem, 1)), "m", Open{})
	real, _, _ := mem.Load(ctx, co("m"))
	tests := []struct {
		name  string
		snaps aggregate.SnapshotStore
	}{
		{"load error", fixedSnapshots{err: errors.New("disk on fire"), ok: true, snap: aggregate.Snapshot{Coordinate: co("m"), Version: 1, Type: real.Type, Data: data}}},
		{"another entity's snapshot", fixedSnapshots{ok: true, snap: aggregate.Snapshot{Coordinate: co("n"), Version: 1, Type: real.Type, Data: data}}},
		{"another scope's snapshot", fixedSnapshots{ok: true, snap: aggregate.Snapshot{Coordinate: batpak.Coordinate{Entity: "m", Scope: "other"}, Version: 1, Type: real.Type, Data: data}}},
		{"not ok", fixedSnapshots{ok: false, snap: aggregate.Snapshot{Coordinate: co("m"), Version: 1, Type: real.Type, Data: data}}},
		// Past the stream's version 2: trusting it would make every save
		// conflict.
		{"past the stream", fixedSnapshots{ok: true, snap: aggregate.Snapshot{Coordinate: co("m"), Version: 3, Type: real.Type, Data: data}}},
	}
	for _, tc := range tests {
		cs := &countingStore{Store: s}
		r := newPlain(t, cs, aggregate.WithSnapshots(tc.snaps, 1))
		st, v, err := r.Load(ctx, "m")
		if err != nil || v != 2 || *st != want {
			t.Errorf("%s: Load = %+v v%d %v; want %+v", tc.name, st, v, err, want)
		}
		if reads := cs.take(); !slices.Equal(reads, []uint64{1}) {
			t.Errorf("%s: ReadStream from %v, want [1]", tc.name, reads)
		}
	}
	// The control: the same snapshot, well-formed, is trusted.
	r := newPlain(t, s, aggregate.WithSnapshots(fixedSnapshots{ok: true, snap: aggregate.Snapshot{Coordinate: co("m"), Version: 1, Type: real.Type, Data: data}}, 1))
	if st, v, _ := r.Load(ctx, "m"); v != 2 || st.Balance != 41 {
		t.Errorf("a well-formed snapshot was not used: %+v v%d", st, v)
	}
}

// failingSnapshots fails every save.
type failingSnapshots struct{ aggregate.SnapshotStore }

func (failingSnapshots) Save(context.Context, aggregate.Snapshot) error {
	return errors.New("no space left")
}

func TestSnapshotSaveFailureIsNotAnError(t *testing.T) {
	s := openStore(t)
	r := newPlain(t, s, aggregate.WithSnapshots(failingSnapshots{aggregate.NewMemorySnapshots()}, 1))
	mustExec(t, r, "f", Open{})
	res := mustExec(t, r, "f", Deposit{Amount: 3})
	if res.Version != 2 || res.State.Balance != 3 || s.StreamVersion(co("f")) != 2 {
		t.Errorf("result %+v", res)
	}
}

func TestFileSnapshotsNamesStayInDir(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	dir := filepath.Join(base, "a", "snaps")
	fs, err := aggregate.NewFileSnapshots(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir %v %v", fi, err)
	}
	var coords []batpak.Coordinate
	for _, e := range []string{
		"../../etc/passwd", "../escape", "..", ".", "/etc/passwd", "a/b/c", `..\..\windows`,
		"", " ", "nul", "con", "x\x00y", "snap-1.tmp", strings.Repeat("long/", 2000), "ünïcødé/../..",
	} {
		coords = append(coords, co(e))
	}
	// Scopes are part of the name, and no two coordinates share one, even
	// where scope+entity concatenate alike.
	coords = append(coords,
		batpak.Coordinate{Entity: "../../etc/passwd", Scope: "../.."},
		batpak.Coordinate{Entity: "c", Scope: "ab"}, batpak.Coordinate{Entity: "bc", Scope: "a"},
		batpak.Coordinate{Entity: "a", Scope: ""}, batpak.Coordinate{Entity: "", Scope: "a"},
		batpak.Coordinate{Entity: "", Scope: ""}, batpak.Coordinate{Entity: "acct", Scope: "bank\x00"},
	)
	for i, c := range coords {
		snap := aggregate.Snapshot{Coordinate: c, Version: uint64(i + 1), Type: "t", Data: []byte{byte(i)}}
		if err := fs.Save(ctx, snap); err != nil {
			t.Fatalf("Save(%q): %v", c, err)
		}
	}
	for i, c := range coords {
		got, ok, err := fs.Load(ctx, c)
		if err != nil || !ok || got.Coordinate != c || got.Version != uint64(i+1) || !bytes.Equal(got.Data, []byte{byte(i)}) {
			t.Errorf("Load(%q) = %+v, %v, %v", c, got, ok, err)
		}
	}
	if _, ok, err := fs.Load(ctx, co("never saved")); ok || err != nil {
		t.Errorf("Load of an unknown entity = %v, %v", ok, err)
	}
	// Everything is a flat, hashed file name inside dir; nothing else
	// appeared anywhere under base, and no temp file is left.
	name := regexp.MustCompile(`^[0-9a-f]{32}\.snap$`)
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(des) != len(coords) {
		t.Errorf("%d files for %d streams", len(des), len(coords))
	}
	for _, de := range des {
		if !de.Type().IsRegular() || !name.MatchString(de.Name()) {
			t.Errorf("unexpected entry %q (%v)", de.Name(), de.Type())
		}
	}
	var all []string
	err = filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			if filepath.Dir(rel) != "." {
				t.Errorf("file %s outside the snapshot dir", p)
			}
			all = append(all, rel)
		}
		return nil
	})
	if err != nil || len(all) != len(coords) {
		t.Errorf("files under base: %v, %v", all, err)
	}
	// A save replaces the previous snapshot of the same entity.
	if err := fs.Save(ctx, aggregate.Snapshot{Coordinate: co("../../etc/passwd"), Version: 99}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := fs.Load(ctx, co("../../etc/passwd")); got.Version != 99 {
		t.Errorf("replaced snapshot at v%d", got.Version)
	}
	if des, _ := os.ReadDir(dir); len(des) != len(coords) {
		t.Errorf("%d files after a replace", len(des))
	}
}

func TestNewFileSnapshotsError(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := aggregate.NewFileSnapshots(filepath.Join(f, "sub")); err == nil {
		t.Error("NewFileSnapshots under a file succeeded")
	}
}

func TestMemorySnapshots(t *testing.T) {
	ctx := context.Background()
	m := aggregate.NewMemorySnapshots()
	if _, ok, err := m.Load(ctx, co("x")); ok || err != nil {
		t.Errorf("Load of nothing = %v, %v", ok, err)
	}
	for v := range uint64(3) {
		if err := m.Save(ctx, aggregate.Snapshot{Coordinate: co("x"), Version: v + 1}); err != nil {
			t.Fatal(err)
		}
	}
	if s, ok, err := m.Load(ctx, co("x")); !ok || err != nil || s.Version != 3 {
		t.Errorf("Load = %+v, %v, %v", s, ok, err)
	}
}
