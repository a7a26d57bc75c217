package natsstore

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// writes reports whether this client writes the index checkpoint: not
// when it is off, nor from a store opened read-only, which creates and
// changes nothing (it still loads one).
func (c *checkpointer) writes() bool { return c.bucket != "" && !c.s.cfg.readOnly }

// run writes the checkpoint every c.every events until close.
func (c *checkpointer) run() {
	defer close(c.stopped)
	for {
		c.mu.Lock()
		mark := c.end + c.every
		c.mu.Unlock()
		ix := c.s.ix
		ix.mu.Lock()
		ix.ckMark = mark
		ix.mu.Unlock()
		select {
		case <-ix.ckWake:
		case <-c.stop:
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.timeout)
		c.write(ctx, 1)
		cancel()
	}
}

// close stops the periodic writer and writes the checkpoint if at least
// min(every, 1000) events are not covered. The caller has stopped
// appends.
func (c *checkpointer) close() {
	if !c.writes() {
		return
	}
	close(c.stop)
	<-c.stopped
	if !c.s.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.timeout)
	defer cancel()
	c.write(ctx, min(c.every, 1000))
}

// write stores the blocks of the index past the last full block known to
// be stored, if the index holds at least minNew events more than the
// stored checkpoint. A block another client stored with at least as many
// events is left as it is. Failures are logged and counted: the next write
// starts again from the first block not stored.
func (c *checkpointer) write(ctx context.Context, minNew uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ix := c.s.ix
	ix.mu.RLock()
	log, keys := ix.log, ix.keyLog
	ix.mu.RUnlock()
	end := log.len()
	if end <= c.end || end-c.end < minNew {
		return
	}
	fail := func(what string, err error) {
		c.failed.Add(1)
		c.s.cfg.logger.Warn("index checkpoint: "+what, zap.String("bucket", c.bucket), zap.Error(err))
	}
	if c.obs == nil {
		bctx, cancel := c.step(ctx)
		obs, err := c.bind(bctx)
		cancel()
		if err != nil {
			fail("cannot create the bucket", err)
			return
		}
		c.obs = obs
	}
	for first := c.full + 1; first <= end; first += c.span {
		last := min(first+c.span-1, end)
		events := last - first + 1
		name := ckObjectName(first)
		// Each block within a step: a write the servers do not take
		// promptly is given up (and tried again at the next write) rather
		// than holding Close until the store's timeout.
		bctx, cancel := c.step(ctx)
		if in, err := c.obs.GetInfo(bctx, name); err != nil || !c.holds(in, first, events) {
			data := encodeCheckpointBlock(c.block(log, keys, first, last))
			_, err := c.obs.Put(bctx, jetstream.ObjectMeta{
				Name: name,
				Metadata: map[string]string{
					ckMetaFormat:  strconv.Itoa(ckFormat),
					ckMetaCreated: strconv.FormatInt(c.created, 10),
					ckMetaFirst:   strconv.FormatUint(first, 10),
					ckMetaSpan:    strconv.FormatUint(c.span, 10),
					ckMetaEvents:  strconv.FormatUint(events, 10),
				},
			}, bytes.NewReader(data))
			if err != nil {
				cancel()
				fail("cannot write block "+name, err)
				return
			}
			c.written.Add(1)
		}
		cancel()
		if events == c.span {
			c.full = last
		}
		c.end = last
		c.covered.Store(last)
	}
}

// bind binds to the checkpoint's bucket, creating it if needed: file
// storage and the replicas of the store's stream.
func (c *checkpointer) bind(ctx context.Context) (jetstream.ObjectStore, error) {
	js := c.s.js
	obs, err := js.ObjectStore(ctx, c.bucket)
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return obs, err
	}
	obs, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      c.bucket,
		Description: "batpak index checkpoint of stream " + c.s.cfg.stream,
		Storage:     jetstream.FileStorage,
		Replicas:    max(c.s.stream.CachedInfo().Config.Replicas, 1),
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		return js.ObjectStore(ctx, c.bucket)
	}
	return obs, err
}

// holds reports whether the stored block in describes this stream's
// events from first, at least events of them.
func (c *checkpointer) holds(in *jetstream.ObjectInfo, first, events uint64) bool {
	md := in.Metadata
	n, err := strconv.ParseUint(md[ckMetaEvents], 10, 64)
	return err == nil && n >= events && md[ckMetaFormat] == strconv.Itoa(ckFormat) &&
		md[ckMetaCreated] == strconv.FormatInt(c.created, 10) && md[ckMetaFirst] == strconv.FormatUint(first, 10) &&
		md[ckMetaSpan] == strconv.FormatUint(c.span, 10)
}

// block returns the checkpoint block of sequences first..last of the
// published entries log, whose keys are keys.
func (c *checkpointer) block(log entryLog, keys []keyAt, first, last uint64) *ckBlock {
	b := &ckBlock{created: c.created, first: first, span: c.span, entries: make([]ckEntry, last-first+1)}
	k := sort.Search(len(keys), func(i int) bool { return keys[i].seq >= first })
	for i := range b.entries {
		seq := first + uint64(i)
		en := log.at(seq)
		if en.skipped() {
			b.entries[i] = ckEntry{skipped: true, entity: en.entity, scope: en.scope}
			continue
		}
		b.entries[i] = ckEntry{
			entity: en.entity, scope: en.scope, id: en.id, corr: en.corr, cause: en.cause,
			ts: en.ts, kind: en.kind, hash: en.hash, parts: en.parts,
		}
		if k < len(keys) && keys[k].seq == seq {
			b.entries[i].key, b.entries[i].hasKey = keys[k].key, true
			k++
		}
	}
	return b
}
