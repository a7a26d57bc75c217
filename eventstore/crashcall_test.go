package eventstore_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/vfs/faultfs"
)

// crashCase is one crash of crashAtEveryCall: the machine stopped at
// call K of the N the action makes (K = N+1: after the last), and what
// the action returned.
type crashCase struct {
	K, N int
	FS   *faultfs.FS
	S    *eventstore.Store
	Dir  string
	Err  error
}

// crashAtEveryCall counts the file calls act makes on a store that setup
// filled, then, for each of them and once past the last, runs act on a
// fresh such store with the machine stopped at that call, and hands the
// outcome to check (which cuts the power and reopens as it needs). It
// returns N.
func crashAtEveryCall(t *testing.T, name string, setup func(*testing.T, *eventstore.Store), act func(*eventstore.Store) error, check func(*testing.T, crashCase)) int {
	t.Helper()
	prepare := func(t *testing.T, f *faultfs.FS) (*eventstore.Store, string) {
		dir := filepath.Join(t.TempDir(), "s")
		s, err := eventstore.Open(dir, eventstore.WithFS(f), eventstore.WithPreallocation(false))
		if err != nil {
			t.Fatal(err)
		}
		setup(t, s)
		return s, dir
	}
	f := faultfs.New(nil)
	s, _ := prepare(t, f)
	before := f.Calls()
	if err := act(s); err != nil {
		t.Fatal(err)
	}
	n := f.Calls() - before
	_ = s.Close()
	for k := 1; k <= n+1; k++ {
		t.Run(fmt.Sprintf("%scrash at call %d of %d", name, k, n), func(t *testing.T) {
			f := faultfs.New(nil)
			s, dir := prepare(t, f)
			f.CrashAt(k)
			err := act(s)
			check(t, crashCase{K: k, N: n, FS: f, S: s, Dir: dir, Err: err})
		})
	}
	return n
}
