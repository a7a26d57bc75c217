package natsstore_test

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/natsstore"
)

// eventLike returns a message with a batpak event's headers (version
// version, part i of n, no valid hash link) on subject.
func eventLike(subject string, version, i, n int) *nats.Msg {
	m := nats.NewMsg(subject)
	id := uuid.Must(uuid.NewV7())
	m.Header.Set("Batpak-Id", id.String())
	m.Header.Set("Batpak-Kind", "4097")
	m.Header.Set("Batpak-Version", strconv.Itoa(version))
	m.Header.Set("Batpak-Time", strconv.FormatInt(time.Now().UnixMicro(), 10))
	m.Header.Set("Batpak-Correlation", id.String())
	m.Header.Set("Batpak-Prev", strings.Repeat("ab", 32))
	m.Header.Set("Batpak-Hash", strings.Repeat("cd", 32))
	if n > 1 {
		m.Header.Set("Batpak-Request", strconv.Itoa(i)+"/"+strconv.Itoa(n))
	}
	m.Data = []byte{0xc0}
	return m
}

// publishForeign stores msgs in the stream as a client that is not batpak
// would, and returns their sequences.
func publishForeign(t *testing.T, js jetstream.JetStream, msgs ...*nats.Msg) []uint64 {
	t.Helper()
	var seqs []uint64
	for _, m := range msgs {
		ack, err := js.PublishMsg(hangContext(t), m)
		if err != nil {
			t.Fatalf("publish on %s: %v", m.Subject, err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	return seqs
}

// readAll returns every record of s in order.
func readAll(t *testing.T, s *natsstore.Store) []batpak.Record {
	t.Helper()
	var out []batpak.Record
	for rec, err := range s.ReadAll(hangContext(t), 0) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}

// TestForeignMessagesSkipped: messages that no batpak client wrote, on the
// store's subjects, are skipped, counted and logged; they keep their
// sequences, a foreign message on an entity's subject counts for the
// entity's next append, and the stream opens again.
func TestForeignMessagesSkipped(t *testing.T) {
	ns := startServer(t)
	stream := uniqueStream("FOREIGN")
	core, logs := observer.New(zapcore.WarnLevel)
	s := openStore(t, ns, natsstore.WithStream(stream), natsstore.WithLogger(zap.New(core)))
	ctx := hangContext(t)
	if _, err := s.Append(ctx, coord("x"), one(kOpened, 1)); err != nil {
		t.Fatal(err)
	}
	_, js := jsClient(t, ns.ClientURL())
	p := "batpak." + stream + ".test." // coord's subjects
	bad := publishForeign(t, js,
		&nats.Msg{Subject: p + "x", Data: []byte("hello")}, // on x's subject
		&nats.Msg{Subject: p + "a.b", Data: []byte("deeper")},
		eventLike(p+"y", 5, 1, 1),   // version 5 of a new stream, no link
		eventLike(p+"z", 1, 2, 2),   // the second part of a request without its first
		eventLike(p+"%41", 1, 1, 1), // entity "A" but not A's subject
		// x's subject in format 1; scope "test" but not its subject
		&nats.Msg{Subject: "batpak." + stream + ".x", Data: []byte("shallower")},
		eventLike("batpak."+stream+".%74est.B", 1, 1, 1),
	)
	// The append to x must expect x's subject sequence, the foreign message's.
	rs, err := s.Append(ctx, coord("x"), one(kNoted, 2), batpak.ExpectVersion(batpak.Exactly(1)))
	if err != nil {
		t.Fatalf("append after foreign messages: %v", err)
	}
	if rs[0].Version != 2 || rs[0].Sequence != bad[len(bad)-1]+1 {
		t.Fatalf("receipt %+v, want version 2 at sequence %d", rs[0], bad[len(bad)-1]+1)
	}
	check := func(s *natsstore.Store, who string) {
		t.Helper()
		if err := s.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.Skipped != uint64(len(bad)) || st.Events != 2 {
			t.Fatalf("%s: stats %+v, want %d skipped and 2 events", who, st, len(bad))
		}
		var seqs []uint64
		for _, rec := range readAll(t, s) {
			seqs = append(seqs, rec.Sequence)
		}
		if want := []uint64{1, rs[0].Sequence}; !slices.Equal(seqs, want) {
			t.Fatalf("%s: ReadAll yields sequences %v, want %v", who, seqs, want)
		}
		for _, seq := range bad {
			if _, err := s.GetSequence(ctx, seq); !errors.Is(err, batpak.ErrNotFound) {
				t.Fatalf("%s: GetSequence(%d) of a foreign message: %v", who, seq, err)
			}
		}
		c := s.Cursor(batpak.Region{}, 0)
		for _, want := range []uint64{1, rs[0].Sequence} {
			rec, ok, err := c.TryNext(ctx)
			if err != nil || !ok || rec.Sequence != want {
				t.Fatalf("%s: cursor: %v %v %v, want sequence %d", who, rec.Sequence, ok, err, want)
			}
		}
		if v := s.StreamVersion(coord("x")); v != 2 {
			t.Fatalf("%s: x at version %d", who, v)
		}
		if err := s.VerifyChain(ctx, coord("x")); err != nil {
			t.Fatal(err)
		}
	}
	check(s, "the writer")
	deadline := hangDeadline(t)
	for logs.FilterMessageSnippet("not a batpak event").Len() < len(bad) {
		if time.Now().After(deadline) {
			t.Fatalf("%d skips logged, want %d", logs.FilterMessageSnippet("not a batpak event").Len(), len(bad))
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, e := range logs.FilterMessageSnippet("not a batpak event").All() {
		t.Logf("%s %v", e.Message, e.ContextMap())
	}

	// A client that opens the stream now reads it the same way, and its
	// first append to x expects the foreign message's subject sequence too.
	// (Its cache holds nothing, so its reads fetch from the server.)
	s2 := openStore(t, ns, natsstore.WithStream(stream), natsstore.WithCacheBytes(0))
	check(s2, "a fresh client")
	bad = append(bad, publishForeign(t, js, &nats.Msg{Subject: p + "x", Data: []byte("again")})...)
	if err := s2.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Append(ctx, coord("x"), one(kNoted, 3), batpak.ExpectVersion(batpak.Exactly(2))); err != nil {
		t.Fatalf("fresh client's append after another foreign message: %v", err)
	}
	if st := s2.Stats(); st.Skipped != uint64(len(bad)) || st.Events != 3 || st.ServerConflicts != 0 {
		t.Fatalf("stats %+v: want %d skipped, 3 events, no server conflict", st, len(bad))
	}
}

// TestLeastPrivilege: a client with exactly the permissions the package
// documentation lists opens, appends and reads; a client without publish
// permission on the store's subjects cannot put a message into the stream.
func TestLeastPrivilege(t *testing.T) {
	stream := uniqueStream("PERM")
	api := "$JS.API."
	app := &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			"batpak." + stream + ".>",
			api + "STREAM.INFO." + stream,
			api + "CONSUMER.CREATE." + stream + ".>",
			api + "CONSUMER.MSG.NEXT." + stream + ".>",
			api + "CONSUMER.INFO." + stream + ".>",
			api + "CONSUMER.DELETE." + stream + ".>",
			api + "STREAM.MSG.GET." + stream,
			api + "DIRECT.GET." + stream,
			api + "DIRECT.GET." + stream + ".>",
			api + "STREAM.INFO.KV_" + stream + "_catalog",
			api + "DIRECT.GET.KV_" + stream + "_catalog.>",
			api + "CONSUMER.CREATE.KV_" + stream + "_catalog.>",
			"$KV." + stream + "_catalog.>",
			api + "STREAM.INFO.KV_" + stream + "_keys",
			api + "DIRECT.GET.KV_" + stream + "_keys.>",
			api + "CONSUMER.CREATE.KV_" + stream + "_keys.>",
			"$KV." + stream + "_keys.>",
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}
	other := &server.Permissions{Publish: &server.SubjectPermission{Deny: []string{"batpak.>"}}}
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
		Users: []*server.User{
			{Username: "admin", Password: "a"},
			{Username: "app", Password: "b", Permissions: app},
			{Username: "other", Password: "c", Permissions: other},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(hangTimeout(t)) {
		t.Fatal("server did not start")
	}
	ctx := hangContext(t)
	url := ns.ClientURL()
	// The stream is created by an administrator (the app may not create or
	// update it).
	admin, err := natsstore.Open(ctx, url, patient(t, natsstore.WithStream(stream), natsstore.WithNATSOptions(nats.UserInfo("admin", "a")))...)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	s, err := natsstore.Open(ctx, url, patient(t, natsstore.WithStream(stream), natsstore.WithCacheBytes(0), natsstore.WithNATSOptions(nats.UserInfo("app", "b")))...)
	if err != nil {
		t.Fatalf("open with the documented permissions: %v", err)
	}
	defer s.Close()
	if _, err := s.Append(ctx, coord("x"), one(kOpened, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendBatch(ctx, []batpak.BatchItem{{Coordinate: coord("x"), Event: batpak.Event{Kind: kNoted}}, {Coordinate: coord("y"), Event: batpak.Event{Kind: kNoted}}}); err != nil {
		t.Fatal(err)
	}
	if n := len(readAll(t, s)); n != 3 {
		t.Fatalf("read %d events", n)
	}
	for _, err := range s.Replay(ctx, batpak.Region{}, 0) {
		if err != nil {
			t.Fatalf("replay: %v", err)
		}
	}

	denied := make(chan error, 1)
	nc, err := nats.Connect(url, nats.UserInfo("other", "c"), nats.Timeout(hangTimeout(t)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case denied <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish("batpak."+stream+".x", []byte("foreign")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-denied:
		if !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Fatalf("publish by another client: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("no permission violation for another client's publish")
	}
	if err := admin.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if st := admin.Stats(); st.Skipped != 0 || admin.LastSequence() != 3 {
		t.Fatalf("stats %+v after a denied publish", st)
	}
}
