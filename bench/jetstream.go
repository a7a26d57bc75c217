package main

// NATS JetStream: an in-process nats-server (no listener at all: the client
// connects with nats.InProcessServer) with file storage in the store
// directory. One JetStream stream "EVENTS" holds every event: the event
// stream s is the subject "ev.s", the global order is the stream sequence,
// and an append carries Nats-Expected-Last-Subject-Sequence (the subject's
// last stream sequence, cached by the adapter and looked up with a direct
// get on first use), so the server rejects a concurrent writer. Appends of
// more than one event use JetStream's atomic batch publish
// (Nats-Batch-Id/-Sequence/-Commit, AllowAtomicPublish). Stream reads use
// the batched direct get (next_by_subj); the full replay an ordered
// consumer.
//
// Durability: durable mode starts the server with sync_always
// (Options.SyncAlways): the file store fsyncs each write before the
// publish is acknowledged (an atomic batch is synced once at its commit).
// Relaxed mode is the server default (sync every 2 minutes: a publish
// survives a process crash of the client, not power loss).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

type jetstreamBackend struct{}

func (jetstreamBackend) Name() string    { return "jetstream" }
func (jetstreamBackend) Relaxed() string { return "default sync (2 min)" }

const (
	jsStream  = "EVENTS"
	jsTimeout = 30 * time.Second
)

func (jetstreamBackend) Open(dir string, durable bool) (Store, error) {
	ns, err := server.NewServer(&server.Options{
		ServerName: "bench",
		DontListen: true, // in-process connections only
		JetStream:  true,
		StoreDir:   dir,
		SyncAlways: durable,
		NoLog:      true,
		NoSigs:     true,
	})
	if err != nil {
		return nil, err
	}
	ns.Start()
	if !ns.ReadyForConnections(jsTimeout) {
		ns.Shutdown()
		return nil, errors.New("nats-server did not start")
	}
	s := &jsStore{ns: ns, tips: make(map[string]jsTip)}
	if s.nc, err = nats.Connect("", nats.InProcessServer(ns)); err == nil {
		if s.js, err = jetstream.New(s.nc); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), jsTimeout)
			s.stream, err = s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
				Name: jsStream, Subjects: []string{"ev.>"}, Storage: jetstream.FileStorage, Replicas: 1,
				AllowDirect: true, AllowAtomicPublish: true,
			})
			cancel()
		}
	}
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

type jsTip struct{ version, seq uint64 }

type jsStore struct {
	ns     *server.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream

	mu   sync.Mutex
	tips map[string]jsTip
}

func jsSubject(stream string) string { return "ev." + stream }

// tip returns the version and last stream sequence of stream.
func (s *jsStore) tip(stream string) (jsTip, error) {
	s.mu.Lock()
	t, ok := s.tips[stream]
	s.mu.Unlock()
	if ok {
		return t, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), jsTimeout)
	defer cancel()
	m, err := s.stream.GetLastMsgForSubject(ctx, jsSubject(stream))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return jsTip{}, nil
	}
	if err != nil {
		return jsTip{}, err
	}
	_, v, _, err := parseEnvelope(m.Data)
	return jsTip{version: v, seq: m.Sequence}, err
}

func (s *jsStore) setTip(stream string, t jsTip) {
	s.mu.Lock()
	s.tips[stream] = t
	s.mu.Unlock()
}

func (s *jsStore) forget(stream string) {
	s.mu.Lock()
	delete(s.tips, stream)
	s.mu.Unlock()
}

func (s *jsStore) Append(stream string, expected int64, payloads [][]byte) (uint64, error) {
	t, err := s.tip(stream)
	if err != nil {
		return 0, err
	}
	if expected >= 0 && uint64(expected) != t.version {
		return 0, conflict(stream, expected, t.version)
	}
	subj := jsSubject(stream)
	last := strconv.FormatUint(t.seq, 10)
	var seq uint64
	if len(payloads) == 1 {
		m := nats.NewMsg(subj)
		m.Data = appendEnvelope(nil, stream, t.version+1, payloads[0])
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, last)
		ctx, cancel := context.WithTimeout(context.Background(), jsTimeout)
		ack, perr := s.js.PublishMsg(ctx, m)
		cancel()
		if perr != nil {
			return 0, s.publishErr(stream, perr)
		}
		seq = ack.Sequence
	} else if seq, err = s.atomicBatch(stream, t, payloads); err != nil {
		return 0, s.publishErr(stream, err)
	}
	t = jsTip{version: t.version + uint64(len(payloads)), seq: seq}
	s.setTip(stream, t)
	return t.version, nil
}

func (s *jsStore) publishErr(stream string, err error) error {
	s.forget(stream)
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
		return errors.Join(ErrConflict, err)
	}
	return err
}

// atomicBatch publishes payloads as one JetStream atomic batch: every
// message but the last without waiting, the last with the commit header
// as a request for the batch's acknowledgement.
func (s *jsStore) atomicBatch(stream string, t jsTip, payloads [][]byte) (uint64, error) {
	id := nuid.Next()
	for i, p := range payloads {
		m := nats.NewMsg(jsSubject(stream))
		m.Data = appendEnvelope(nil, stream, t.version+uint64(i)+1, p)
		m.Header.Set("Nats-Batch-Id", id)
		m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
		if i == 0 {
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(t.seq, 10))
		}
		if i < len(payloads)-1 {
			if err := s.nc.PublishMsg(m); err != nil {
				return 0, err
			}
			continue
		}
		m.Header.Set("Nats-Batch-Commit", "1")
		resp, err := s.nc.RequestMsg(m, jsTimeout)
		if err != nil {
			return 0, err
		}
		var ack struct {
			Seq   uint64              `json:"seq"`
			Count int                 `json:"count"`
			Error *jetstream.APIError `json:"error"`
		}
		if err := json.Unmarshal(resp.Data, &ack); err != nil {
			return 0, err
		}
		if ack.Error != nil {
			return 0, ack.Error
		}
		if ack.Count != len(payloads) {
			return 0, fmt.Errorf("atomic batch: committed %d of %d", ack.Count, len(payloads))
		}
		return ack.Seq, nil
	}
	return 0, nil
}

func (s *jsStore) Load(items []Item) error {
	futures := make([]jetstream.PubAckFuture, len(items))
	versions := make(map[string]jsTip)
	for i, it := range items {
		t, ok := versions[it.Stream]
		if !ok {
			var err error
			if t, err = s.tip(it.Stream); err != nil {
				return err
			}
		}
		t.version++
		versions[it.Stream] = t
		m := nats.NewMsg(jsSubject(it.Stream))
		m.Data = appendEnvelope(nil, it.Stream, t.version, it.Payload)
		f, err := s.js.PublishMsgAsync(m)
		if err != nil {
			return err
		}
		futures[i] = f
	}
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			t := versions[items[i].Stream]
			t.seq = max(t.seq, ack.Sequence)
			versions[items[i].Stream] = t
		case err := <-f.Err():
			return err
		case <-time.After(jsTimeout):
			return errors.New("jetstream: publish timed out")
		}
	}
	for stream, t := range versions {
		s.setTip(stream, t)
	}
	return nil
}

// ReadStream uses the batched direct get: one request, up to 1,000
// messages of the subject per reply batch, ended by a 204 EOB status.
func (s *jsStore) ReadStream(stream string, fn func(Event) error) error {
	sub, err := s.nc.SubscribeSync(s.nc.NewRespInbox())
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	subj := jsSubject(stream)
	from := uint64(1)
	for {
		req, _ := json.Marshal(map[string]any{"seq": from, "next_by_subj": subj, "batch": 1000})
		if err := s.nc.PublishRequest("$JS.API.DIRECT.GET."+jsStream, sub.Subject, req); err != nil {
			return err
		}
		for {
			m, err := sub.NextMsg(jsTimeout)
			if err != nil {
				return err
			}
			switch m.Header.Get("Status") {
			case "404":
				return nil
			case "204": // end of batch
				if m.Header.Get("Nats-Num-Pending") == "0" {
					return nil
				}
				last, err := strconv.ParseUint(m.Header.Get("Nats-Last-Sequence"), 10, 64)
				if err != nil {
					return err
				}
				from = last + 1
			case "":
				seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
				if err != nil {
					return err
				}
				_, v, p, err := parseEnvelope(m.Data)
				if err != nil {
					return err
				}
				if err := fn(Event{Seq: seq, Stream: stream, Version: v, Payload: p}); err != nil {
					return err
				}
				continue
			default:
				return fmt.Errorf("direct get: status %s %s", m.Header.Get("Status"), m.Header.Get("Description"))
			}
			break
		}
	}
}

// ReadAll replays the stream with an ordered consumer up to the last
// sequence at the start of the call.
func (s *jsStore) ReadAll(decode func([]byte) error, fn func(Event) error) error {
	fn = decodeInline(decode, fn)
	ctx, cancel := context.WithTimeout(context.Background(), jsTimeout)
	defer cancel()
	info, err := s.stream.Info(ctx)
	if err != nil {
		return err
	}
	last := info.State.LastSeq
	if last == 0 {
		return nil
	}
	cons, err := s.js.OrderedConsumer(ctx, jsStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return err
	}
	defer it.Stop()
	for {
		m, err := it.Next(jetstream.NextMaxWait(jsTimeout))
		if err != nil {
			return err
		}
		md, err := m.Metadata()
		if err != nil {
			return err
		}
		st, v, p, err := parseEnvelope(m.Data())
		if err != nil {
			return err
		}
		if err := fn(Event{Seq: md.Sequence.Stream, Stream: string(st), Version: v, Payload: p}); err != nil {
			return err
		}
		if md.Sequence.Stream >= last {
			return nil
		}
	}
}

func (s *jsStore) Close() error {
	if s.nc != nil {
		s.nc.Close()
	}
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
	return nil
}
