package eventstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/segment"
)

// Open trusts footers and checkpoints without rereading the frames they
// cover, and sealed segments are read only where someone asks: damage to
// old data can sit unnoticed. A scrub rereads every sealed segment and
// checks it the way Verify checks a closed store, but against the open
// store's index, while the store runs.

// ScrubReport is what one [Store.Scrub] checked and found.
type ScrubReport struct {
	Started  time.Time
	Duration time.Duration
	// Segments and Bytes are the sealed segments and bytes read, Events the
	// events (and stubs) checked.
	Segments int
	Bytes    int64
	Events   uint64
	// Damage lists each damaged place once: its segment, file, offset and
	// why. Each matches ErrCorrupt.
	Damage []*segment.CorruptError
}

// ScrubStats describes the scrubs of a store since it was opened.
type ScrubStats struct {
	// Runs counts complete scrubs; LastRun is when the last one started
	// (zero: none yet), LastDuration how long it took and LastBytes how
	// many bytes it read.
	Runs         uint64
	LastRun      time.Time
	LastDuration time.Duration
	LastBytes    int64
	// BytesChecked counts every byte scrubbed since Open, cut-short scrubs
	// included.
	BytesChecked int64
	// Damage is what the last complete scrub found (nil: none).
	Damage []ScrubDamage
}

// ScrubDamage is one damaged place a scrub found.
type ScrubDamage struct {
	Segment uint32
	Path    string
	Offset  int64
	Reason  string
}

// scrubState is a store's scrubber. Scrubs only read, so a Scrub call does
// not wait for a background scrub (which may be going slowly on purpose);
// each records itself in the stats when it ends. A scrub holds no lock of
// the store but compactMu, for reading, while it maps a segment with the
// index positions that describe it.
type scrubState struct {
	mu    sync.Mutex // guards stats
	stats ScrubStats

	stop func() // ends the background scrubber and waits for it (nil: none)
}

// Scrub rereads every sealed segment (the active segment is being written
// and is checked on open) and checks every frame's CRC and record, the
// header, the footer against the frames, that each event's frame is where
// the index says and holds the event the index names, each event's hash
// (recomputed) and its link to its stream's previous event, and each stub
// of a hole record. A compaction may run meanwhile: each segment is mapped
// together with the index positions that describe it. The damage it finds
// is logged, listed in the report and in Stats().Scrub, and returned as an
// error matching ErrCorrupt (errors.As finds the first *segment.CorruptError).
// It reads as fast as it can; [WithBackgroundScrub] runs it at a bounded
// rate.
func (s *Store) Scrub(ctx context.Context) (*ScrubReport, error) {
	return s.scrub(ctx, nil)
}

func (s *Store) scrub(ctx context.Context, lim *byteLimiter) (*ScrubReport, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	rep := &ScrubReport{Started: time.Now()}
	through := s.pipe.sealedThrough.Load()
	counts := s.entriesPerSegment(through)
	sc := &scrubber{s: s, rep: rep, lim: lim, tips: make(map[streamID]streamTip), hasher: newChainHasher()}
	var err error
	for id := uint32(1); id <= through && err == nil; id++ {
		if err = ctx.Err(); err == nil {
			err = sc.segment(ctx, id, counts[id])
		}
	}
	rep.Duration = time.Since(rep.Started)
	s.recordScrub(rep, err == nil)
	if err != nil {
		return rep, err
	}
	if len(rep.Damage) > 0 {
		errs := make([]error, len(rep.Damage))
		for i, d := range rep.Damage {
			errs[i] = d
		}
		return rep, errors.Join(errs...)
	}
	return rep, nil
}

// entriesPerSegment counts the index entries of each segment up to id.
func (s *Store) entriesPerSegment(through uint32) map[uint32]int {
	v := s.ix.snapshot()
	counts := make(map[uint32]int)
	for seq := uint64(1); seq <= v.len(); seq++ {
		if id := v.at(seq).Pos.Segment; id <= through {
			counts[id]++
		}
	}
	return counts
}

// recordScrub adds a scrub to the stats.
func (s *Store) recordScrub(rep *ScrubReport, complete bool) {
	st := &s.scrubber
	st.mu.Lock()
	defer st.mu.Unlock()
	st.stats.BytesChecked += rep.Bytes
	if !complete {
		return
	}
	st.stats.Runs++
	st.stats.LastRun, st.stats.LastDuration, st.stats.LastBytes = rep.Started, rep.Duration, rep.Bytes
	st.stats.Damage = nil
	for _, d := range rep.Damage {
		st.stats.Damage = append(st.stats.Damage, ScrubDamage{Segment: d.Segment, Path: d.Path, Offset: d.Offset, Reason: d.Reason})
	}
}

func (s *Store) scrubStats() ScrubStats {
	st := &s.scrubber
	st.mu.Lock()
	defer st.mu.Unlock()
	out := st.stats
	out.Damage = append([]ScrubDamage(nil), st.stats.Damage...)
	return out
}

// scrubber is one scrub's state.
type scrubber struct {
	s      *Store
	rep    *ScrubReport
	lim    *byteLimiter
	tips   map[streamID]streamTip // each stream's last event checked
	hasher *chainHasher
	rec    segment.Record
}

// mapSealed maps segment id together with a view of the index that agrees
// with it: a compaction swaps a file and its positions under compactMu. A
// read-only store maps the file it holds (a writer's compaction may have
// renamed another over the path).
func (sc *scrubber) mapSealed(id uint32) ([]byte, func() error, view, error) {
	s := sc.s
	s.compactMu.RLock()
	defer s.compactMu.RUnlock()
	var data []byte
	var release func() error
	var err error
	if s.readOnly {
		data, release, err = s.reader.MapHeld(id)
	} else {
		data, release, err = segment.MapFile(s.fs, s.segmentPath(id))
	}
	return data, release, s.ix.snapshot(), err
}

// segment scrubs sealed segment id, which the index says holds n entries.
func (sc *scrubber) segment(ctx context.Context, id uint32, n int) error {
	data, release, v, err := sc.mapSealed(id)
	if err != nil {
		return fmt.Errorf("eventstore: scrub segment %d: %w", id, err)
	}
	defer func() { _ = release() }()
	s, path := sc.s, sc.s.segmentPath(id)
	sc.rep.Segments++
	found := 0
	damage := func(off int64, format string, args ...any) {
		d := &segment.CorruptError{Segment: id, Path: path, Offset: off, Reason: fmt.Sprintf(format, args...)}
		sc.rep.Damage = append(sc.rep.Damage, d)
		found++
		s.log.Error("scrub found damage", zap.Uint32("segment", id), zap.String("path", path),
			zap.Int64("offset", off), zap.String("reason", d.Reason))
	}
	// advance pays for the bytes up to to before they are read (a resync's
	// search, after).
	paid := int64(0)
	advance := func(to int64) error {
		to = min(to, int64(len(data)))
		if to <= paid {
			return nil
		}
		k := to - paid
		paid = to
		sc.rep.Bytes += k
		if sc.lim == nil {
			return ctx.Err()
		}
		return sc.lim.wait(ctx, k)
	}
	if err := advance(segment.HeaderSize); err != nil {
		return err
	}
	if h, err := segment.DecodeHeader(data); err != nil {
		damage(0, "header: %v", err)
	} else if h.Segment != id {
		damage(0, "header names segment %d", h.Segment)
	}
	off := min(int64(segment.HeaderSize), int64(len(data)))
	var seen []segment.IndexEntry
	lastSeq := uint64(0)
	for off < int64(len(data)) {
		if err := advance(off + segment.FrameHeaderSize); err != nil {
			return err
		}
		if length := int64(segment.FrameHeaderSize); off+length <= int64(len(data)) {
			if err := advance(off + length + int64(binary.BigEndian.Uint32(data[off:]))); err != nil {
				return err
			}
		}
		payload, size, st := segment.DecodeFrame(data[off:])
		reason := ""
		switch st {
		case segment.FrameOK:
			if segment.IsFooterPayload(payload) {
				break
			}
			if reason = sc.frame(&v, id, off, size, payload, &seen, &lastSeq); reason == "" {
				off += int64(size)
				continue
			}
		case segment.FrameEnd:
			reason = "zeroed frame header in a sealed segment"
		case segment.FrameBad:
			reason = "frame length or checksum is wrong"
		default:
			reason = "frame runs past the end of the file"
		}
		if reason == "" { // the footer
			break
		}
		if st != segment.FrameOK && footerFrameAt(data, off) {
			break // ReadFooter below says what is wrong with it
		}
		damage(off, "%s", reason)
		next := resyncAt(data, off+1, lastSeq)
		if next < 0 {
			off = int64(len(data))
			break
		}
		if err := advance(next); err != nil {
			return err
		}
		off = next
	}
	if err := advance(int64(len(data))); err != nil {
		return err
	}
	ix, footerAt, ferr := segment.ReadFooter(data, id)
	switch {
	case ferr != nil:
		damage(off, "footer: %v", ferr)
	case footerAt != off:
		damage(footerAt, "footer at %d, but the frames end at %d", footerAt, off)
	case found == 0: // else the frames the footer lists were not all read
		if why := footerDisagrees(ix, seen); why != "" {
			damage(footerAt, "%s", why)
		}
	}
	if len(seen) != n && found == 0 {
		damage(0, "the index places %d events in the segment, its frames hold %d", n, len(seen))
	}
	return nil
}

// frame checks one whole frame of a sealed segment against the index and
// the chains; it returns what is wrong, or "".
func (sc *scrubber) frame(v *view, id uint32, off int64, size int, payload []byte, seen *[]segment.IndexEntry, lastSeq *uint64) string {
	rec := &sc.rec
	if err := segment.DecodeRecord(payload, rec); err != nil {
		return err.Error()
	}
	pos := segment.Position{Segment: id, Offset: uint32(off), Length: uint32(size)}
	switch rec.Kind {
	case segment.KindBatchBegin, segment.KindBatchCommit, segment.KindTombstone:
		return ""
	case segment.KindHole:
		stubs, err := segment.DecodeStubs(rec.Payload)
		if err != nil {
			return "hole record: " + err.Error()
		}
		for _, st := range stubs {
			if why := sc.indexed(v, st.Seq, streamID{scope: st.Scope, entity: st.Entity}, st.Version, pos, true); why != "" {
				return why
			}
			sc.link(streamID{scope: st.Scope, entity: st.Entity}, st.Version, st.PrevHash, st.Hash)
			*seen = append(*seen, segment.IndexEntry{Seq: st.Seq, ID: st.ID, Offset: pos.Offset, Length: pos.Length})
			*lastSeq = st.Seq
			sc.rep.Events++
		}
		return ""
	}
	if rec.IsMarker() {
		return fmt.Sprintf("unknown system kind 0x%04x", rec.Kind)
	}
	if why := sc.indexed(v, rec.Seq, streamID{scope: rec.Scope, entity: rec.Entity}, rec.Version, pos, false); why != "" {
		return why
	}
	if sc.hasher.Sum(rec) != rec.Hash {
		return fmt.Sprintf("event %d: hash does not match its content", rec.Seq)
	}
	if why := sc.link(streamID{scope: rec.Scope, entity: rec.Entity}, rec.Version, rec.PrevHash, rec.Hash); why != "" {
		return fmt.Sprintf("event %d: %s", rec.Seq, why)
	}
	*seen = append(*seen, segment.IndexEntry{Seq: rec.Seq, ID: rec.ID, Offset: pos.Offset, Length: pos.Length})
	*lastSeq = rec.Seq
	sc.rep.Events++
	return ""
}

// indexed checks that the index places event seq at pos as that version
// of stream id (a stub: in the hole record at pos, marked removed).
func (sc *scrubber) indexed(v *view, seq uint64, id streamID, version uint64, pos segment.Position, stub bool) string {
	if seq == 0 || seq > v.len() {
		return fmt.Sprintf("sequence %d is not in the index (it ends at %d)", seq, v.len())
	}
	e := v.at(seq)
	sc.s.ix.mu.RLock()
	st := v.streams.at(e.Stream)
	seqs := st.list()
	sc.s.ix.mu.RUnlock()
	seqs = sc.s.ix.checkedList(e.Stream, st, seqs)
	switch {
	case e.Pos != pos:
		return fmt.Sprintf("sequence %d: the index places it at segment %d offset %d", seq, e.Pos.Segment, e.Pos.Offset)
	case v.streams.id(st) != id || version == 0 || version > uint64(seqs.len()) || seqs.at(int(version-1)) != seq:
		return fmt.Sprintf("sequence %d: the frame holds another event than the index names", seq)
	case stub != (e.Flags&segment.EntryDeleted != 0):
		return fmt.Sprintf("sequence %d: the index and the frame disagree on whether it was removed", seq)
	}
	return ""
}

// link checks an event's (or stub's) link to its stream's previous event,
// where the scrub saw that one; events after damage start a stream anew.
func (sc *scrubber) link(id streamID, version uint64, prev, hash [32]byte) string {
	tip, ok := sc.tips[id]
	sc.tips[id] = streamTip{version: version, hash: hash}
	switch {
	case ok && tip.version+1 == version && tip.hash != prev:
		return fmt.Sprintf("%v version %d does not link to the previous event's hash", id, version)
	case !ok && version == 1 && prev != [32]byte{}:
		return fmt.Sprintf("%v version 1 links to a previous event", id)
	}
	return ""
}

// byteLimiter paces reads to rate bytes per second: a token bucket that
// holds at most burst bytes. A read larger than what the bucket holds
// borrows, and the wait pays the debt, so over any stretch the bytes read
// stay within burst + rate × time.
type byteLimiter struct {
	rate   float64 // bytes per second
	burst  float64
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	tokens float64
	last   time.Time
}

func newByteLimiter(bytesPerSecond int64, now func() time.Time, sleep func(context.Context, time.Duration) error) *byteLimiter {
	rate := float64(max(bytesPerSecond, 1))
	burst := min(rate, 1<<20) // at most a second's worth, and 1 MiB
	return &byteLimiter{rate: rate, burst: burst, now: now, sleep: sleep, tokens: burst, last: now()}
}

// wait takes n bytes from the bucket, sleeping until they are paid for.
func (l *byteLimiter) wait(ctx context.Context, n int64) error {
	if n <= 0 {
		return ctx.Err()
	}
	t := l.now()
	l.tokens = min(l.burst, l.tokens+t.Sub(l.last).Seconds()*l.rate)
	l.last = t
	l.tokens -= float64(n)
	if l.tokens >= 0 {
		return ctx.Err()
	}
	return l.sleep(ctx, time.Duration(-l.tokens/l.rate*float64(time.Second)))
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// scrubSettings are what [WithBackgroundScrub] asks for.
type scrubSettings struct {
	interval       time.Duration
	bytesPerSecond int64
}

// WithBackgroundScrub runs [Store.Scrub] in the background: first one
// interval after Open, then one interval after each scrub ends, reading at
// most bytesPerSecond (a token bucket holding at most a second's worth, up
// to 1 MiB). Close stops it. Its findings are in Stats().Scrub and the log.
// An interval or rate of 0 or less turns it off.
func WithBackgroundScrub(interval time.Duration, bytesPerSecond int64) Option {
	return func(c *config) { c.scrub = scrubSettings{interval: interval, bytesPerSecond: bytesPerSecond} }
}

// startBackgroundScrub starts the background scrubber if the options ask
// for one.
func (s *Store) startBackgroundScrub() {
	set := s.cfg.scrub
	if set.interval <= 0 || set.bytesPerSecond <= 0 {
		return
	}
	s.startScrubber(set, newByteLimiter(set.bytesPerSecond, time.Now, sleepCtx))
}

func (s *Store) startScrubber(set scrubSettings, lim *byteLimiter) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.scrubber.stop = func() {
		cancel()
		<-done
	}
	go func() {
		defer close(done)
		for sleepCtx(ctx, set.interval) == nil {
			if _, err := s.scrub(ctx, lim); err != nil && ctx.Err() == nil && !errors.Is(err, batpak.ErrCorrupt) {
				s.log.Warn("background scrub failed", zap.Error(err))
			}
		}
	}()
}

// stopBackgroundScrub stops the background scrubber, if any, and waits for
// it: a scrub in progress ends at its next read.
func (s *Store) stopBackgroundScrub() {
	if s.scrubber.stop != nil {
		s.scrubber.stop()
	}
}
