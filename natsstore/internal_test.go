package natsstore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
)

// TestHashMatchesEmbedded: an event hashed by this package has the hash
// the embedded store gives it, so a chain verifies in either backend.
func TestHashMatchesEmbedded(t *testing.T) {
	es, err := eventstore.Open(t.TempDir(), eventstore.WithSyncMode(eventstore.SyncNone))
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	ctx := context.Background()
	c := batpak.Coordinate{Entity: "account:42/ü", Scope: "bank eu"}
	meta := map[string]string{"reason": "bypass ✓", "actor": "ops", "": "empty key"}
	rs, err := es.Append(ctx, c, []batpak.Event{
		{Kind: kind.Custom(1, 1), Payload: map[string]int{"a": 1}, Metadata: meta},
		{Kind: kind.Custom(2, 7), Payload: "x"},
		{Kind: kind.Effect(3), Payload: nil},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := es.Append(ctx, c, []batpak.Event{{Kind: kind.Custom(1, 2), Payload: 7}}, batpak.WithCausation(rs[1].EventID)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for rec, err := range es.ReadStream(ctx, c, 0) {
		if err != nil {
			t.Fatal(err)
		}
		h := eventHash(&event{
			entity: c.Entity, scope: c.Scope, version: rec.Version, kind: uint16(rec.Kind),
			ts: rec.Timestamp.UnixMicro(), id: rec.ID, corr: rec.CorrelationID, cause: rec.CausationID,
			prev: rec.PrevHash, meta: rec.Metadata, payload: rec.Payload,
		})
		if h != rec.Hash {
			t.Fatalf("version %d: hash %x, the embedded store's %x", rec.Version, h[:6], rec.Hash[:6])
		}
		n++
	}
	if n != 4 {
		t.Fatalf("%d events", n)
	}
}

func TestEscapeToken(t *testing.T) {
	for _, s := range []string{"account:42", "a.b", "a b", "*", ">", "%", "%41", "ünï", "a\tb", "x/y_z-1~=+@,!", " lead", "trail "} {
		tok := escapeToken(s)
		if strings.ContainsAny(tok, ".*> \t\r\n") {
			t.Errorf("escapeToken(%q) = %q: not a subject token", s, tok)
		}
		back, err := unescapeToken(tok)
		if err != nil || back != s {
			t.Errorf("unescapeToken(escapeToken(%q)) = %q, %v", s, back, err)
		}
	}
	if escapeToken("%41") == escapeToken("A") {
		t.Error("escaping is not injective")
	}
	for _, bad := range []string{"%", "%4", "%G0"} {
		if _, err := unescapeToken(bad); err == nil {
			t.Errorf("unescapeToken(%q) accepted", bad)
		}
	}
	for _, key := range []string{"k", "deposit-7f3a", "multi\nline: key", strings.Repeat("é", 200)} {
		got, ok := keyOfMsgID(keyMsgID(key))
		if !ok || got != key {
			t.Errorf("key %q round-trips as %q, %v", key, got, ok)
		}
	}
	if _, ok := keyOfMsgID("e:0190"); ok {
		t.Error("an event message id read as a key")
	}
}

// TestConnectOptions: a URL naming another host gets TLS unless the user
// opts out; loopback and tls:// URLs are left alone.
func TestConnectOptions(t *testing.T) {
	secure := func(urls string, opts ...Option) (bool, error) {
		c := defaultConfig()
		for _, o := range opts {
			o(&c)
		}
		nopts, err := connectOptions(urls, &c)
		if err != nil {
			return false, err
		}
		var o nats.Options
		for _, f := range nopts {
			if err := f(&o); err != nil {
				return false, err
			}
		}
		return o.Secure, nil
	}
	tests := []struct {
		urls   string
		opts   []Option
		secure bool
		err    error
	}{
		{"nats://127.0.0.1:4222", nil, false, nil},
		{"nats://localhost:4222", nil, false, nil},
		{"nats://[::1]:4222", nil, false, nil},
		{"127.0.0.1:4222", nil, false, nil},
		{"nats://nats.example.com:4222", nil, true, nil},
		{"nats://user:secret@10.1.2.3:4222", nil, true, nil},
		{"nats://127.0.0.1:4222,nats://db1.example.com:4222", nil, true, nil},
		{"tls://nats.example.com:4222", nil, false, nil}, // nats.go upgrades tls:// itself
		{"nats://nats.example.com:4222", []Option{WithInsecure()}, false, nil},
		{"ws://nats.example.com:8080", nil, false, ErrInsecureURL},
		{"wss://nats.example.com:443", nil, false, nil},
		{"http://nats.example.com", nil, false, errors.New("scheme")},
	}
	for _, tc := range tests {
		got, err := secure(tc.urls, tc.opts...)
		switch {
		case tc.err != nil && err == nil:
			t.Errorf("%s: no error, want %v", tc.urls, tc.err)
		case tc.err == nil && err != nil:
			t.Errorf("%s: %v", tc.urls, err)
		case tc.err != nil && errors.Is(tc.err, ErrInsecureURL) && !errors.Is(err, ErrInsecureURL):
			t.Errorf("%s: %v, want ErrInsecureURL", tc.urls, err)
		case tc.err == nil && got != tc.secure:
			t.Errorf("%s: secure = %v, want %v", tc.urls, got, tc.secure)
		}
	}
	// An explicit TLS configuration is always used.
	if got, err := secure("nats://127.0.0.1:4222", WithTLS(nil)); err != nil || got {
		t.Errorf("WithTLS(nil) on loopback: %v %v", got, err)
	}
}

func TestIDsIncrease(t *testing.T) {
	var g idSource
	now := time.Now()
	prev := g.next(now)
	for i := range 1000 {
		at := now
		if i%10 == 0 {
			at = now.Add(-time.Second) // the clock steps back
		}
		id := g.next(at)
		if id.Version() != 7 || strings.Compare(id.String(), prev.String()) <= 0 {
			t.Fatalf("id %s after %s", id, prev)
		}
		prev = id
	}
}
