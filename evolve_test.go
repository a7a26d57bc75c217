package batpak_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

type (
	noteV1 struct{ Text string }
	noteV2 struct {
		Text   string
		Author string
	}
	note struct {
		Text   string
		Author string
		Tags   []string `msgpack:",omitempty" json:",omitempty"`
	}
)

var kindNote = kind.Custom(5, 1)

// record returns the record a store would hand out for ev.
func record(ev batpak.Event) *batpak.Record {
	return &batpak.Record{Kind: ev.Kind, Type: ev.Type, Metadata: ev.Metadata, Payload: []byte(ev.Payload.(batpak.RawPayload))}
}

func mustEvent(t testing.TB, r *batpak.Registry, v any) batpak.Event {
	t.Helper()
	ev, err := r.Event(v)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestDecodeStrict(t *testing.T) {
	for _, c := range []batpak.Codec{batpak.Msgpack, batpak.JSON} {
		t.Run(c.Name(), func(t *testing.T) {
			// The writer's shape: Text and an extra field; no Author.
			type wide struct{ Text, Extra string }
			type narrow struct{ Text string }
			w := batpak.NewRegistry()
			batpak.MustRegister[wide](w, kindNote, "test.Note", batpak.WithCodec(c))
			batpak.MustRegister[narrow](w, kind.Custom(5, 2), "test.Narrow", batpak.WithCodec(c))
			extra := record(mustEvent(t, w, wide{Text: "a", Extra: "x"}))
			short := record(mustEvent(t, w, narrow{Text: "a"}))
			short.Kind = kindNote
			exact := record(mustEvent(t, w, narrow{Text: "a"}))
			exact.Kind = kindNote

			tests := []struct {
				name   string
				opts   []batpak.TypeOption
				rec    *batpak.Record
				target error
			}{
				{"lenient skips an unknown field", nil, extra, nil},
				{"lenient leaves a missing field zero", nil, short, nil},
				{"strict refuses an unknown field", []batpak.TypeOption{batpak.Strict()}, extra, batpak.ErrStrictDecode},
				{"strict refuses a missing field", []batpak.TypeOption{batpak.Strict()}, short, batpak.ErrStrictDecode},
				{"strict takes an exact payload", []batpak.TypeOption{batpak.Strict()}, exact, nil},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					type reader struct {
						Text   string
						Author string
						Tags   []string `msgpack:",omitempty" json:",omitempty"`
					}
					r := batpak.NewRegistry()
					if tt.rec == exact {
						batpak.MustRegister[narrow](r, kindNote, "test.Note", append(tt.opts, batpak.WithCodec(c))...)
					} else {
						batpak.MustRegister[reader](r, kindNote, "test.Note", append(tt.opts, batpak.WithCodec(c))...)
					}
					_, err := r.Decode(tt.rec)
					if !errors.Is(err, tt.target) || (tt.target == nil) != (err == nil) {
						t.Fatalf("Decode: %v, want %v", err, tt.target)
					}
					var de *batpak.DecodeError
					if err != nil && (!errors.As(err, &de) || de.Type != "test.Note") {
						t.Fatalf("error %v is not a *DecodeError naming the type", err)
					}
				})
			}
		})
	}
}

// TestStrictByDefault: a registry's default strictness, undone per type.
func TestStrictByDefault(t *testing.T) {
	w := batpak.NewRegistry()
	batpak.MustRegister[noteV2](w, kindNote, "test.Note")
	rec := record(mustEvent(t, w, noteV2{Text: "a", Author: "b"}))
	strict := batpak.NewRegistry(batpak.StrictByDefault())
	batpak.MustRegister[noteV1](strict, kindNote, "test.Note")
	if _, err := strict.Decode(rec); !errors.Is(err, batpak.ErrStrictDecode) {
		t.Errorf("StrictByDefault: %v", err)
	}
	lenient := batpak.NewRegistry(batpak.StrictByDefault())
	batpak.MustRegister[noteV1](lenient, kindNote, "test.Note", batpak.Lenient())
	if v, err := lenient.Decode(rec); err != nil || v != (noteV1{Text: "a"}) {
		t.Errorf("Lenient: %v, %v", v, err)
	}
}

// TestCodecSwitch: a type written with JSON by one release and msgpack by
// the next decodes from both, each event with the codec it records.
func TestCodecSwitch(t *testing.T) {
	before := batpak.NewRegistry(batpak.DefaultCodec(batpak.JSON))
	batpak.MustRegister[note](before, kindNote, "test.Note")
	after := batpak.NewRegistry()
	batpak.MustRegister[note](after, kindNote, "test.Note")
	old := record(mustEvent(t, before, note{Text: "j"}))
	if old.Metadata[batpak.MetaCodec] != "json" || old.Payload[0] != '{' {
		t.Fatalf("a JSON event: metadata %v, payload %q", old.Metadata, old.Payload)
	}
	cur := record(mustEvent(t, after, note{Text: "m"}))
	if len(cur.Metadata) != 0 {
		t.Fatalf("a msgpack event at version 1 carries metadata %v", cur.Metadata)
	}
	for _, tt := range []struct {
		rec  *batpak.Record
		want string
	}{{old, "j"}, {cur, "m"}} {
		for _, r := range []*batpak.Registry{before, after} {
			v, err := r.Decode(tt.rec)
			if err != nil || v.(note).Text != tt.want {
				t.Errorf("Decode = %v, %v; want text %q", v, err, tt.want)
			}
		}
		var n note
		if err := tt.rec.Decode(&n); err != nil || n.Text != tt.want {
			t.Errorf("Record.Decode = %v, %v", n, err)
		}
	}
}

func TestUpcastChain(t *testing.T) {
	up1 := batpak.Upcast(func(v noteV1) (noteV2, error) { return noteV2{Text: v.Text, Author: "unknown"}, nil })
	up2 := batpak.Upcast(func(v noteV2) (note, error) { return note{Text: v.Text, Author: v.Author}, nil })
	bad := batpak.Upcast(func(v noteV1) (note, error) { return note{}, nil })
	failing := batpak.Upcast(func(v noteV2) (note, error) { return note{}, errors.New("no") })
	tests := []struct {
		name   string
		opts   []batpak.TypeOption
		target error
	}{
		{"a chain to the type", []batpak.TypeOption{up1, up2}, nil},
		{"a gap in the chain", []batpak.TypeOption{bad, up2}, batpak.ErrUpcast},
		{"a chain to another type", []batpak.TypeOption{up1}, batpak.ErrUpcast},
		{"a nil upcaster", []batpak.TypeOption{batpak.Upcast[noteV1, note](nil)}, batpak.ErrUpcast},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := batpak.Register[note](batpak.NewRegistry(), kindNote, "test.Note", tt.opts...)
			if !errors.Is(err, tt.target) || (tt.target == nil) != (err == nil) {
				t.Fatalf("Register: %v, want %v", err, tt.target)
			}
		})
	}
	v1, v2 := batpak.NewRegistry(), batpak.NewRegistry()
	batpak.MustRegister[noteV1](v1, kindNote, "test.Note")
	batpak.MustRegister[noteV2](v2, kindNote, "test.Note", up1)
	r := batpak.NewRegistry()
	batpak.MustRegister[note](r, kindNote, "test.Note", up1, failing)
	_, err := r.Decode(record(mustEvent(t, v2, noteV2{Text: "a"})))
	if !errors.Is(err, batpak.ErrUpcast) {
		t.Errorf("a failing upcaster: %v", err)
	}
	if v, ok := r.SchemaVersion(kindNote); !ok || v != 3 {
		t.Errorf("SchemaVersion = %d, %v", v, ok)
	}
	// A payload at a version the registry has never heard of.
	rec := record(mustEvent(t, v1, noteV1{Text: "a"}))
	for _, meta := range []map[string]string{{batpak.MetaSchema: "4"}, {batpak.MetaSchema: "x"}, {batpak.MetaCodec: "cbor"}} {
		rec.Metadata = meta
		if _, err := r.Decode(rec); !errors.Is(err, batpak.ErrSchema) {
			t.Errorf("metadata %v: %v, want ErrSchema", meta, err)
		}
	}
}

func TestParseSchema(t *testing.T) {
	tests := []struct {
		meta map[string]string
		want batpak.Schema
		ok   bool
	}{
		{nil, batpak.Schema{Version: 1, Codec: "msgpack"}, true},
		{map[string]string{batpak.MetaSchema: "2", batpak.MetaCodec: "json"}, batpak.Schema{Version: 2, Codec: "json"}, true},
		{map[string]string{batpak.MetaSchema: "65535"}, batpak.Schema{Version: 65535, Codec: "msgpack"}, true},
		{map[string]string{batpak.MetaSchema: "0"}, batpak.Schema{}, false},
		{map[string]string{batpak.MetaSchema: "02"}, batpak.Schema{}, false},
		{map[string]string{batpak.MetaSchema: "65536"}, batpak.Schema{}, false},
		{map[string]string{batpak.MetaSchema: "+2"}, batpak.Schema{}, false},
		{map[string]string{batpak.MetaCodec: ""}, batpak.Schema{}, false},
		{map[string]string{batpak.MetaCodec: "JSON"}, batpak.Schema{}, false},
	}
	for _, tt := range tests {
		got, err := batpak.ParseSchema(tt.meta)
		if (err == nil) != tt.ok || (tt.ok && !reflect.DeepEqual(got, tt.want)) || (!tt.ok && !errors.Is(err, batpak.ErrSchema)) {
			t.Errorf("ParseSchema(%v) = %+v, %v", tt.meta, got, err)
		}
	}
}

// FuzzParseSchema: no metadata panics the schema header's parser, and
// what it accepts it writes back the same.
func FuzzParseSchema(f *testing.F) {
	f.Add("2", "json")
	f.Add("1", "msgpack")
	f.Add("", "")
	f.Add("65536", "a/b")
	f.Fuzz(func(t *testing.T, version, codec string) {
		meta := map[string]string{batpak.MetaSchema: version, batpak.MetaCodec: codec}
		s, err := batpak.ParseSchema(meta)
		if err != nil {
			if !errors.Is(err, batpak.ErrSchema) {
				t.Fatalf("error %v does not match ErrSchema", err)
			}
			return
		}
		if s.Version == 0 || s.Codec != codec {
			t.Fatalf("ParseSchema(%q, %q) = %+v", version, codec, s)
		}
	})
}

// BenchmarkDecode measures what upcasting adds to a decode: a payload at
// the current version, and one two versions older.
func BenchmarkDecode(b *testing.B) {
	up1 := batpak.Upcast(func(v noteV1) (noteV2, error) { return noteV2{Text: v.Text, Author: "unknown"}, nil })
	up2 := batpak.Upcast(func(v noteV2) (note, error) { return note{Text: v.Text, Author: v.Author}, nil })
	v1 := batpak.NewRegistry()
	batpak.MustRegister[noteV1](v1, kindNote, "test.Note")
	r := batpak.NewRegistry()
	batpak.MustRegister[note](r, kindNote, "test.Note", up1, up2)
	plain := batpak.NewRegistry()
	batpak.MustRegister[note](plain, kindNote, "test.Note")
	for _, bc := range []struct {
		name string
		r    *batpak.Registry
		rec  *batpak.Record
	}{
		{"current", plain, record(mustEvent(b, plain, note{Text: "hello", Author: "ann"}))},
		{"upcast_v1_to_v3", r, record(mustEvent(b, v1, noteV1{Text: "hello"}))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.r.Decode(bc.rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
