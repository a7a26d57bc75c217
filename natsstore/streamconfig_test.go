package natsstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/batpak-go/batpak/natsstore"
)

// goodConfig is the configuration Open gives a new stream.
func goodConfig(name string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:       name,
		Subjects:   []string{"batpak." + name + ".>"},
		Retention:  jetstream.LimitsPolicy,
		Storage:    jetstream.FileStorage,
		Replicas:   1,
		Discard:    jetstream.DiscardNew,
		MaxMsgs:    -1,
		MaxBytes:   -1,
		DenyDelete: true,
		DenyPurge:  true,
		Metadata:   map[string]string{"batpak_format": "2"},
	}
}

func jsClient(t *testing.T, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.Timeout(hangTimeout(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// TestOpenRefusesStreamConfig: Open refuses an existing stream that could
// remove events, acknowledges less than asked for, or cannot take appends,
// with a *ConfigError naming the setting.
func TestOpenRefusesStreamConfig(t *testing.T) {
	ns := startServer(t)
	_, js := jsClient(t, ns.ClientURL())
	ctx := hangContext(t)
	for _, tc := range []struct {
		setting string
		edit    func(*jetstream.StreamConfig)
		opts    []natsstore.Option
	}{
		{"storage", func(c *jetstream.StreamConfig) { c.Storage = jetstream.MemoryStorage }, nil},
		{"num_replicas", func(*jetstream.StreamConfig) {}, []natsstore.Option{natsstore.WithReplicas(3)}},
		{"max_age", func(c *jetstream.StreamConfig) { c.MaxAge = time.Hour }, nil},
		{"max_msgs", func(c *jetstream.StreamConfig) { c.MaxMsgs = 1000 }, nil},
		{"max_bytes", func(c *jetstream.StreamConfig) { c.MaxBytes = 1 << 30 }, nil},
		{"max_msgs_per_subject", func(c *jetstream.StreamConfig) { c.MaxMsgsPerSubject = 10 }, nil},
		{"retention", func(c *jetstream.StreamConfig) { c.Retention = jetstream.InterestPolicy }, nil},
		{"allow_msg_ttl", func(c *jetstream.StreamConfig) { c.AllowMsgTTL = true }, nil},
		{"persist_mode", func(c *jetstream.StreamConfig) { c.PersistMode = jetstream.AsyncPersistMode }, nil},
		{"sealed", func(c *jetstream.StreamConfig) { c.Sealed = true }, nil},
		{"subjects", func(c *jetstream.StreamConfig) { c.Subjects = []string{"elsewhere.>"} }, nil},
	} {
		t.Run(tc.setting, func(t *testing.T) {
			name := uniqueStream("CFG")
			cfg := goodConfig(name)
			if tc.setting != "sealed" {
				tc.edit(&cfg)
			}
			if _, err := js.CreateStream(ctx, cfg); err != nil {
				t.Fatal(err)
			}
			if tc.setting == "sealed" {
				// A stream is created open and sealed by an update.
				tc.edit(&cfg)
				if _, err := js.UpdateStream(ctx, cfg); err != nil {
					t.Fatal(err)
				}
			}
			s, err := natsstore.Open(ctx, ns.ClientURL(), patient(t, append([]natsstore.Option{natsstore.WithStream(name)}, tc.opts...)...)...)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open accepted a stream with a bad %s", tc.setting)
			}
			var ce *natsstore.ConfigError
			if !errors.Is(err, natsstore.ErrStreamConfig) || !errors.As(err, &ce) || ce.Setting != tc.setting || ce.Stream != name {
				t.Fatalf("Open: %v; want a *ConfigError for %s", err, tc.setting)
			}
			t.Log(err)
		})
	}
	// WithStorage(memory) asks for what the stream has.
	name := uniqueStream("CFG")
	cfg := goodConfig(name)
	cfg.Storage = jetstream.MemoryStorage
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, ns, natsstore.WithStream(name), natsstore.WithStorage(jetstream.MemoryStorage))
	if _, err := s.Append(ctx, coord("x"), one(kOpened, 1)); err != nil {
		t.Fatal(err)
	}
}

// TestOpenDeniesRemoval: Open turns on DenyDelete and DenyPurge (and off
// roll-ups, which purge) on a stream that lacks them: they only restrict
// the stream, and the server never lets them be turned off again.
func TestOpenDeniesRemoval(t *testing.T) {
	ns := startServer(t)
	_, js := jsClient(t, ns.ClientURL())
	ctx := hangContext(t)
	name := uniqueStream("DENY")
	cfg := goodConfig(name)
	cfg.DenyDelete, cfg.DenyPurge, cfg.AllowRollup = false, false, true
	str, err := js.CreateStream(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := openStore(t, ns, natsstore.WithStream(name))
	rs, err := s.Append(ctx, coord("x"), one(kOpened, 1))
	if err != nil {
		t.Fatal(err)
	}
	info, err := str.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := info.Config; !c.DenyDelete || !c.DenyPurge || c.AllowRollup {
		t.Fatalf("after Open: deny_delete %v, deny_purge %v, allow_rollup_hdrs %v", c.DenyDelete, c.DenyPurge, c.AllowRollup)
	}
	if err := str.DeleteMsg(ctx, rs[0].Sequence); err == nil {
		t.Fatal("an event could be deleted")
	}
	if err := str.Purge(ctx); err == nil {
		t.Fatal("the stream could be purged")
	}
}

// TestOpenRemovedMessagesFailsFast: a stream whose messages were all
// purged (or expired) starts past sequence 1 and holds nothing; Open must
// say so at once rather than wait for sequences that will never come.
func TestOpenRemovedMessagesFailsFast(t *testing.T) {
	ns := startServer(t)
	_, js := jsClient(t, ns.ClientURL())
	ctx := hangContext(t)
	name := uniqueStream("GONE")
	cfg := goodConfig(name)
	cfg.DenyPurge = false
	str, err := js.CreateStream(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := js.Publish(ctx, "batpak."+name+".x", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := str.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = natsstore.Open(ctx, ns.ClientURL(), patient(t, natsstore.WithStream(name))...)
	if !errors.Is(err, natsstore.ErrInvalidMessage) {
		t.Fatalf("Open of a purged stream: %v; want ErrInvalidMessage at once", err)
	}
	t.Log(err)
}
