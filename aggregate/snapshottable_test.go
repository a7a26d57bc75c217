package aggregate_test

import (
	"context"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate"
)

// deposit is a command for any state: it emits Deposited{n}.
type deposit[S any] int64

func (d deposit[S]) Handle(*S) ([]any, error) { return []any{Deposited{Amount: int64(d)}}, nil }

// history keeps every amount in an unexported field: msgpack skips it, so
// a snapshot load would give [] where a replay gives [1 2 3].
type history struct{ amounts []int64 }

func (h *history) Apply(ev any) {
	if e, ok := ev.(Deposited); ok {
		h.amounts = append(h.amounts, e.Amount)
	}
}

// binaryHistory is history with encoding.BinaryMarshaler/Unmarshaler.
type binaryHistory struct{ history }

func (h binaryHistory) MarshalBinary() ([]byte, error) { return msgpack.Marshal(h.amounts) }
func (h *binaryHistory) UnmarshalBinary(b []byte) error {
	return msgpack.Unmarshal(b, &h.amounts)
}

// customHistory is history with msgpack.CustomEncoder/CustomDecoder.
type customHistory struct{ history }

func (h *customHistory) EncodeMsgpack(enc *msgpack.Encoder) error { return enc.Encode(h.amounts) }
func (h *customHistory) DecodeMsgpack(dec *msgpack.Decoder) error { return dec.Decode(&h.amounts) }

// TestSnapshotsRefuseLossyState: a state with an unexported field is
// refused with snapshots (and accepted without); the same state with a
// marshaler is accepted, and its snapshot loads what a replay folds.
func TestSnapshotsRefuseLossyState(t *testing.T) {
	s := openStore(t)
	snaps := aggregate.NewMemorySnapshots()
	_, err := aggregate.NewRepository[history](s, registry(), scope, aggregate.WithSnapshots(snaps, 1))
	if !errors.Is(err, aggregate.ErrNotSnapshottable) || !strings.Contains(err.Error(), "aggregate_test.history.amounts is unexported") {
		t.Fatalf("NewRepository(history, WithSnapshots) = %v, want ErrNotSnapshottable naming the field", err)
	}
	if _, err := aggregate.NewGatedRepository(s, registry(), scope, gates(), aggregate.WithSnapshots(snaps, 1)); err != nil {
		t.Fatalf("Account is snapshottable: %v", err)
	}
	if _, err := aggregate.NewRepository[history](s, registry(), scope); err != nil {
		t.Fatalf("without snapshots: %v", err)
	}
	t.Run("BinaryMarshaler", func(t *testing.T) {
		checkSnapshotRoundTrip(t, s, func(h *binaryHistory) []int64 { return h.amounts })
	})
	t.Run("CustomEncoder", func(t *testing.T) {
		checkSnapshotRoundTrip(t, s, func(h *customHistory) []int64 { return h.amounts })
	})
}

func checkSnapshotRoundTrip[S any, PS interface {
	*S
	aggregate.Root
}](t *testing.T, s aggregate.Store, amounts func(*S) []int64) {
	ctx := context.Background()
	snaps := aggregate.NewMemorySnapshots()
	entity := t.Name()
	r, err := aggregate.NewRepository[S, PS](s, registry(), scope, aggregate.WithSnapshots(snaps, 3))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int64{1, 2, 3} {
		if _, err := r.Execute(ctx, entity, deposit[S](n)); err != nil {
			t.Fatal(err)
		}
	}
	if snap, ok, _ := snaps.Load(ctx, co(entity)); !ok || snap.Version != 3 {
		t.Fatalf("no snapshot at version 3: %+v", snap)
	}
	cs := &countingStore{Store: s}
	fromSnapshot, err := aggregate.NewRepository[S, PS](cs, registry(), scope, aggregate.WithSnapshots(snaps, 3))
	if err != nil {
		t.Fatal(err)
	}
	st, v, err := fromSnapshot.Load(ctx, entity)
	if err != nil || v != 3 || !slices.Equal(amounts(st), []int64{1, 2, 3}) {
		t.Errorf("snapshot load = %v v%d %v, want [1 2 3] v3", amounts(st), v, err)
	}
	if reads := cs.take(); !slices.Equal(reads, []uint64{4}) {
		t.Errorf("read from %v, want [4]: the snapshot was not used", reads)
	}
	replay, err := aggregate.NewRepository[S, PS](s, registry(), scope)
	if err != nil {
		t.Fatal(err)
	}
	if st, _, _ := replay.Load(ctx, entity); !slices.Equal(amounts(st), []int64{1, 2, 3}) {
		t.Errorf("replay = %v", amounts(st))
	}
}

// Types for the table of TestSnapshottable.
type (
	inner       struct{ A, b int }
	exportedIn  struct{ X int }
	embedsInner struct{ inner }
	embedsOK    struct{ exportedIn } // promoted exported fields survive
	embedsPtr   struct{ *exportedIn }
	withTagged  struct {
		cache int `msgpack:"-"`
	}
	withAny     struct{ Last any }
	withFunc    struct{ F func() }
	withChan    struct{ C chan int }
	nested      struct{ M map[string][]*inner }
	mapKey      struct{ M map[inner]int }
	withTime    struct{ At time.Time }
	withBig     struct{ N *big.Int }
	encodeOnly  struct{ x int }
	withEncOnly struct{ E encodeOnly }
	recursive   struct{ Next *recursive }
	fine        struct {
		A []int
		M map[string]exportedIn
		T [2]exportedIn
	}
	binaryInside struct{ H binaryHistory }
)

func (encodeOnly) MarshalBinary() ([]byte, error) { return nil, nil }

func (*withAny) Apply(any)      {}
func (*withFunc) Apply(any)     {}
func (*withChan) Apply(any)     {}
func (*nested) Apply(any)       {}
func (*mapKey) Apply(any)       {}
func (*withTime) Apply(any)     {}
func (*withBig) Apply(any)      {}
func (*withEncOnly) Apply(any)  {}
func (*recursive) Apply(any)    {}
func (*fine) Apply(any)         {}
func (*binaryInside) Apply(any) {}
func (*embedsInner) Apply(any)  {}
func (*embedsOK) Apply(any)     {}
func (*embedsPtr) Apply(any)    {}
func (*withTagged) Apply(any)   {}

// newSnapshotted builds a repository of S with snapshots.
func newSnapshotted[S any, PS interface {
	*S
	aggregate.Root
}](s aggregate.Store) error {
	_, err := aggregate.NewRepository[S, PS](s, batpak.NewRegistry(), scope, aggregate.WithSnapshots(aggregate.NewMemorySnapshots(), 1))
	return err
}

func TestSnapshottable(t *testing.T) {
	s := openStore(t)
	tests := []struct {
		name string
		err  error
		want string // in the error
	}{
		{"unexported in a nested map of slices of pointers", newSnapshotted[nested](s), "nested.M[value][][].b is unexported"},
		{"unexported in a map key", newSnapshotted[mapKey](s), "mapKey.M[key].b is unexported"},
		{"unexported fields of an embedded struct", newSnapshotted[embedsInner](s), "embedsInner.inner.b is unexported"},
		{"embedded unexported pointer", newSnapshotted[embedsPtr](s), "embedsPtr.exportedIn is unexported"},
		{"interface field", newSnapshotted[withAny](s), "withAny.Last is an interface"},
		{"func field", newSnapshotted[withFunc](s), "withFunc.F is a func"},
		{"chan field", newSnapshotted[withChan](s), "withChan.C is a chan"},
		{"encodes but does not decode", newSnapshotted[withEncOnly](s), "withEncOnly.E (aggregate_test.encodeOnly) encodes with encoding.BinaryMarshaler/BinaryUnmarshaler but does not decode with it"},
		{"embedded struct with exported fields", newSnapshotted[embedsOK](s), ""},
		{"tagged out on purpose", newSnapshotted[withTagged](s), ""},
		{"time.Time", newSnapshotted[withTime](s), ""},
		{"*big.Int", newSnapshotted[withBig](s), ""},
		{"recursive", newSnapshotted[recursive](s), ""},
		{"exported all the way", newSnapshotted[fine](s), ""},
		{"a field that encodes itself", newSnapshotted[binaryInside](s), ""},
	}
	for _, tc := range tests {
		if tc.want == "" {
			if tc.err != nil {
				t.Errorf("%s: %v", tc.name, tc.err)
			}
			continue
		}
		if !errors.Is(tc.err, aggregate.ErrNotSnapshottable) || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrNotSnapshottable with %q", tc.name, tc.err, tc.want)
		}
	}
}
