package natsstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/batpak-go/batpak"
)

// Object metadata of a checkpoint block: enough to choose a chain from a
// listing of the bucket without reading the blocks.
const (
	ckMetaFormat  = "batpak-format"
	ckMetaCreated = "batpak-created"
	ckMetaFirst   = "batpak-first"
	ckMetaSpan    = "batpak-span"
	ckMetaEvents  = "batpak-events"
)

func ckObjectName(first uint64) string { return "events." + strconv.FormatUint(first, 10) }

// ckFetchAhead is how many blocks the loader fetches and decodes ahead of
// the one it applies.
const ckFetchAhead = 3

func newCheckpointer(s *Store, info *jetstream.StreamInfo) *checkpointer {
	c := &checkpointer{s: s, created: info.Created.UnixNano(), stop: make(chan struct{}), stopped: make(chan struct{})}
	cfg := s.cfg.ck
	if cfg.every < 0 {
		return c
	}
	c.every = uint64(cfg.every)
	if cfg.every == 0 {
		c.every = DefaultIndexCheckpointEvery
	}
	c.span = cfg.span
	if c.span == 0 {
		c.span = ckBlockEvents
	}
	c.bucket = cfg.bucket
	if c.bucket == "" {
		c.bucket = s.cfg.stream + "_index"
	}
	if !validCheckpointBucket(c.bucket) {
		s.cfg.logger.Warn("index checkpoint off: the stream's name does not make a bucket name; see WithIndexCheckpointBucket",
			zap.String("bucket", c.bucket))
		c.bucket = ""
	}
	return c
}

// validCheckpointBucket reports whether name can name an object store
// bucket.
func validCheckpointBucket(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return name != ""
}

// loadIndex builds the index at Open: from the index checkpoint, then
// from the stream after it, and starts the consumer that keeps it current
// and the checkpoint writer.
func (s *Store) loadIndex(ctx context.Context, info *jetstream.StreamInfo) error {
	start := time.Now()
	total := info.State.LastSeq
	report := func(done uint64) {
		if s.cfg.ck.progress != nil {
			s.cfg.ck.progress(min(done, total), total)
		}
	}
	c := newCheckpointer(s, info)
	s.ck = c
	if c.bucket != "" && total > 0 {
		ix, err := c.load(ctx, total, report)
		if err != nil {
			return err
		}
		if ix != nil {
			s.ix = ix
		}
	}
	restored := s.ix.lastSeq()
	if err := s.startConsumer(ctx); err != nil {
		return err
	}
	if err := s.ix.waitReporting(ctx, total, s.done, 100*time.Millisecond, report); err != nil {
		s.consumer.Stop()
		return fmt.Errorf("natsstore: loading %d events: %w", total, err)
	}
	report(total)
	c.statsMu.Lock()
	c.stats.OpenTime, c.stats.Restored, c.stats.Replayed = time.Since(start), restored, total-restored
	c.statsMu.Unlock()
	c.covered.Store(restored)
	c.end = restored
	if c.writes() {
		go c.run()
	} else {
		close(c.stopped)
	}
	return nil
}

// ignore records that a checkpoint found was not used.
func (c *checkpointer) ignore(reason string, err error) {
	c.statsMu.Lock()
	c.stats.Ignored++
	c.stats.IgnoredReason = reason
	c.statsMu.Unlock()
	c.s.cfg.logger.Warn("index checkpoint ignored", zap.String("bucket", c.bucket), zap.String("reason", reason), zap.Error(err))
}

// ckLink is one block of the chain as the bucket lists it.
type ckLink struct {
	info   *jetstream.ObjectInfo
	name   string
	first  uint64
	span   uint64
	events uint64
}

// chain lists the bucket and returns the longest chain of blocks from
// sequence 1 written for this stream and not past its last sequence.
func (c *checkpointer) chain(ctx context.Context, obs jetstream.ObjectStore, lastSeq uint64) ([]ckLink, error) {
	infos, err := obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	byFirst := make(map[uint64]ckLink, len(infos))
	foreign := 0
	for _, in := range infos {
		md := in.Metadata
		first, err1 := strconv.ParseUint(md[ckMetaFirst], 10, 64)
		span, err2 := strconv.ParseUint(md[ckMetaSpan], 10, 64)
		events, err3 := strconv.ParseUint(md[ckMetaEvents], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || md[ckMetaFormat] != strconv.Itoa(ckFormat) || in.Name != ckObjectName(first) ||
			span == 0 || span > ckMaxSpan || first == 0 || (first-1)%span != 0 || events == 0 || events > span {
			continue
		}
		if md[ckMetaCreated] != strconv.FormatInt(c.created, 10) {
			foreign++
			continue
		}
		byFirst[first] = ckLink{info: in, name: in.Name, first: first, span: span, events: events}
	}
	var links []ckLink
	for first := uint64(1); ; first += links[len(links)-1].span {
		l, ok := byFirst[first]
		if !ok || l.first+l.events-1 > lastSeq {
			break
		}
		links = append(links, l)
		if l.events < l.span {
			break
		}
	}
	if len(links) == 0 && foreign > 0 {
		c.ignore(fmt.Sprintf("%d blocks of another stream by the same name", foreign), nil)
	}
	return links, nil
}

// step bounds one step of a load or a write (binding the bucket, reading
// or writing one block): a checkpoint the servers cannot hand over or
// take promptly (a server still starting, say) is read past or written
// later, not waited for until Open's deadline or the store's timeout.
func (c *checkpointer) step(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, max(2*c.s.cfg.ackWait, 10*time.Second))
}

// fetch reads and decodes one block and checks it against its listing.
func (c *checkpointer) fetch(ctx context.Context, l ckLink) (*ckBlock, error) {
	ctx, cancel := c.step(ctx)
	defer cancel()
	data, err := c.readObject(ctx, l.info)
	if err != nil {
		return nil, fmt.Errorf("block %s: %w", l.name, err)
	}
	b, err := decodeCheckpointBlock(data)
	if err != nil {
		return nil, fmt.Errorf("block %s: %w", l.name, err)
	}
	if b.first != l.first || b.span != l.span || uint64(len(b.entries)) != l.events || b.created != c.created {
		return nil, fmt.Errorf("%w: block %s holds %d events from %d (span %d) of stream %d, listed as %d from %d (span %d) of %d",
			errCheckpointCorrupt, l.name, len(b.entries), b.first, b.span, b.created, l.events, l.first, l.span, c.created)
	}
	return b, nil
}

// load returns an index restored from the checkpoint, or nil if there is
// no usable one. It fails only when ctx ends.
func (c *checkpointer) load(openCtx context.Context, lastSeq uint64, report func(uint64)) (*index, error) {
	s := c.s
	unusable := func(reason string, err error) (*index, error) {
		if openCtx.Err() != nil {
			return nil, fmt.Errorf("natsstore: loading the index checkpoint: %w", openCtx.Err())
		}
		c.ignore(reason, err)
		return nil, nil
	}
	missing := func() (*index, error) {
		s.cfg.logger.Info("no index checkpoint: Open reads the whole stream", zap.String("bucket", c.bucket))
		return nil, nil
	}
	ctx, cancel := c.step(openCtx)
	obs, err := s.js.ObjectStore(ctx, c.bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		cancel()
		return missing()
	}
	if err != nil {
		cancel()
		return unusable("cannot bind the bucket", err)
	}
	c.obs = obs
	links, err := c.chain(ctx, obs, lastSeq)
	cancel()
	if err != nil {
		return unusable("cannot list the bucket", err)
	}
	if len(links) == 0 {
		return missing()
	}
	// The last block says where the last whole request ends; the stream's
	// message there must be the checkpoint's before anything is restored.
	tail, err := c.fetch(openCtx, links[len(links)-1])
	if err != nil {
		return unusable("unreadable block", err)
	}
	end, err := requestEnd(tail)
	if err != nil {
		return unusable("no whole request in the last block", err)
	}
	if end == 0 {
		return nil, nil
	}
	if err := c.confirm(openCtx, tail, end); err != nil {
		return unusable(blockFailure(err), err)
	}

	ix := newIndex(s.cfg.cacheBytes)
	r := newRestorer(ix, end)
	defer r.stop()
	ctx, cancel = context.WithCancel(openCtx)
	defer cancel()
	type result struct {
		b       *ckBlock
		err     error
		fetched bool // holds a place in ahead
	}
	results := make([]chan result, len(links))
	for i := range results {
		results[i] = make(chan result, 1)
	}
	results[len(links)-1] <- result{b: tail}
	ahead := make(chan struct{}, ckFetchAhead)
	go func() {
		for i, l := range links[:len(links)-1] {
			select {
			case ahead <- struct{}{}:
			case <-ctx.Done():
				results[i] <- result{err: ctx.Err()}
				continue
			}
			go func() {
				b, err := c.fetch(ctx, l)
				if err == nil {
					err = c.confirm(ctx, b, end)
				}
				results[i] <- result{b, err, true}
			}()
		}
	}()
	for i := range links {
		res := <-results[i]
		if res.fetched {
			<-ahead
		}
		if res.err != nil {
			return unusable(blockFailure(res.err), res.err)
		}
		if err := r.restore(res.b, end); err != nil {
			return unusable("inconsistent block", err)
		}
		report(ix.log.len())
	}
	if err := r.finish(end); err != nil {
		return unusable("inconsistent chain", err)
	}
	// The writer goes on from the last full block restored.
	for _, l := range links {
		if last := l.first + l.span - 1; l.events == l.span && last <= end {
			c.full = last
		}
	}
	return ix, nil
}

// errCheckpointMismatch reports a block whose events are not the
// stream's.
var errCheckpointMismatch = errors.New("does not match the stream")

func blockFailure(err error) string {
	if errors.Is(err, errCheckpointMismatch) {
		return "does not match the stream"
	}
	return "unreadable block"
}

// confirm checks a block against the stream: the stream's message at the
// block's last event up to sequence end must be that event (its id, hash
// and stream). The blocks before the last are checked this way too, so a
// chain that was written for other events is refused whole.
func (c *checkpointer) confirm(ctx context.Context, b *ckBlock, end uint64) error {
	ctx, cancel := c.step(ctx)
	defer cancel()
	for i := int64(min(end, b.last())) - int64(b.first); i >= 0; i-- {
		e := &b.entries[i]
		if e.skipped {
			continue // not an event: nothing to compare
		}
		seq := b.first + uint64(i)
		ev, err := c.s.fetchOne(ctx, seq)
		if err != nil {
			return fmt.Errorf("checking sequence %d: %w", seq, err)
		}
		if ev.id != e.id || ev.hash != e.hash || ev.entity != e.entity || ev.scope != e.scope {
			return fmt.Errorf("%w: sequence %d holds event %s of %s, the checkpoint %s of %s/%s", errCheckpointMismatch, seq, ev.id, ev.coord(), e.id, e.scope, e.entity)
		}
		return nil
	}
	return nil
}

// readObject reads the object described by in (as the bucket's listing
// gave it) whole and checks its size and SHA-256 digest. Its chunks come
// from an ordered consumer, so from the bucket stream's leader: the
// object store's own Get first reads the object's description with a
// direct get, which a replica behind the leader may answer with an older
// version whose chunks are gone.
func (c *checkpointer) readObject(ctx context.Context, in *jetstream.ObjectInfo) ([]byte, error) {
	want, err := jetstream.DecodeObjectDigest(in.Digest)
	if err != nil {
		return nil, err
	}
	cons, err := c.s.js.OrderedConsumer(ctx, "OBJ_"+c.bucket, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{"$O." + c.bucket + ".C." + in.NUID},
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return nil, err
	}
	// The size bounds the buffer up to 256 MiB, so a damaged description
	// cannot make it huge.
	data := make([]byte, 0, min(in.Size, 256<<20))
	for got := uint32(0); got < in.Chunks; {
		wait := 5 * time.Second
		if d, ok := ctx.Deadline(); ok {
			wait = min(wait, max(time.Until(d), time.Millisecond))
		}
		batch, err := cons.Fetch(int(min(in.Chunks-got, 256)), jetstream.FetchMaxWait(wait))
		if err != nil {
			return nil, err
		}
		n := 0
		for m := range batch.Messages() {
			data = append(data, m.Data()...)
			n++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("%d of %d chunks", got, in.Chunks)
		}
		got += uint32(n)
	}
	sum := sha256.Sum256(data)
	if uint64(len(data)) != in.Size || !bytes.Equal(sum[:], want) {
		return nil, fmt.Errorf("%w: %d bytes, digest %x; listed as %d bytes, %s", jetstream.ErrDigestMismatch, len(data), sum, in.Size, in.Digest)
	}
	return data, nil
}

// requestEnd returns the last sequence of the last whole request in the
// chain that ends with block b: the chain may end inside a request when b
// is full.
func requestEnd(b *ckBlock) (uint64, error) {
	for i := len(b.entries) - 1; i >= 0; i-- {
		if p := b.entries[i].parts; p > 0 {
			seq := b.first + uint64(i)
			if last := seq + uint64(p) - 1; last <= b.last() {
				return b.last(), nil // inconsistencies are the restorer's to find
			}
			return seq - 1, nil
		}
	}
	return 0, fmt.Errorf("%w: block from %d begins no request", errCheckpointCorrupt, b.first)
}

// restorer applies checkpoint blocks, in order, to an index nothing else
// uses yet. The map of event ids, the largest and slowest part to build,
// is filled by a goroutine of its own, block by block in the same order,
// while the rest of the next block is applied.
type restorer struct {
	ix      *index
	left    uint32 // events of the current request still to come
	ids     chan ckIDs
	idsDone chan struct{}
	stopped bool
}

// ckIDs is the first n entries of a block, for the id goroutine.
type ckIDs struct {
	b *ckBlock
	n int
}

func newRestorer(ix *index, events uint64) *restorer {
	r := &restorer{ix: ix, ids: make(chan ckIDs, ckFetchAhead), idsDone: make(chan struct{})}
	byID := make(map[uuid.UUID]uint64, events)
	ix.byID = byID
	go func() {
		defer close(r.idsDone)
		for batch := range r.ids {
			for i, e := range batch.b.entries[:batch.n] {
				if _, dup := byID[e.id]; !dup && !e.skipped {
					byID[e.id] = batch.b.first + uint64(i)
				}
			}
		}
	}()
	return r
}

// stop ends the id goroutine and waits for it.
func (r *restorer) stop() {
	if !r.stopped {
		r.stopped = true
		close(r.ids)
		<-r.idsDone
	}
}

// restore applies the entries of b up to sequence end.
func (r *restorer) restore(b *ckBlock, end uint64) error {
	ix := r.ix
	if b.first != ix.log.len()+1 {
		return fmt.Errorf("block from %d after %d events", b.first, ix.log.len())
	}
	for i := range b.entries {
		seq := b.first + uint64(i)
		if seq > end {
			break
		}
		e := &b.entries[i]
		if e.skipped {
			// A message that is not an event, between requests.
			if r.left != 0 {
				return fmt.Errorf("sequence %d, a skipped message, is inside a request", seq)
			}
			en := ix.log.slot(0)
			en.entity, en.scope = e.entity, ix.intern(e.scope)
			if e.entity != "" {
				ix.subjLast[en.coord()] = seq
			}
			ix.skippedN++
			ix.log.n++
			continue
		}
		if e.parts > 0 {
			if r.left != 0 {
				return fmt.Errorf("sequence %d begins a request inside another", seq)
			}
			r.left = e.parts
			if e.hasKey {
				ix.addKey(e.key, seq, int(e.parts))
			}
		} else if r.left == 0 {
			return fmt.Errorf("sequence %d is in no request", seq)
		}
		r.left--
		st := ix.stream(batpak.Coordinate{Entity: e.entity, Scope: e.scope})
		en := ix.log.slot(0)
		en.entity, en.scope = st.coord.Entity, st.coord.Scope
		en.id, en.corr, en.cause = e.id, e.corr, e.cause
		en.ts, en.version, en.kind, en.parts = e.ts, st.version+1, e.kind, e.parts
		en.prev, en.hash = st.lastHash, e.hash
		st.version, st.lastHash = en.version, e.hash
		st.seqs = append(st.seqs, seq)
		if e.corr != e.id {
			ix.corr[e.corr] = append(ix.corr[e.corr], seq)
		}
		if e.cause != uuid.Nil {
			ix.cause[e.cause] = append(ix.cause[e.cause], seq)
		}
		ix.log.n++
	}
	r.ids <- ckIDs{b: b, n: int(min(ix.log.len()+1-b.first, uint64(len(b.entries))))}
	return nil
}

// finish checks that the chain was restored up to end, a request's end.
func (r *restorer) finish(end uint64) error {
	r.stop()
	if n := r.ix.log.len(); n != end || r.left != 0 {
		return fmt.Errorf("restored %d events, %d of a request missing, want %d", n, r.left, end)
	}
	r.ix.evictNext = end + 1
	return nil
}
