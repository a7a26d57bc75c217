package segment

import (
	"encoding/binary"
	"fmt"
	"iter"
	"math"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/batpak-go/batpak/internal/huge"
)

const (
	checkpointVersion = 8
	// checkpointHead is the fixed head, its CRC included.
	checkpointHead = 4 + 2 + 8 + 4 + 8 + 16 + 1 + 4*5 + 4
	// checkpointIDsUnsorted in the head's flags byte: event ids do not
	// increase with the sequence.
	checkpointIDsUnsorted = 1
	// Lower bounds on the encoded size of a table row.
	minStreamRow = 1 + 1 + 1 + 1
	minScopeRow  = 2
	minKeyRow    = 2 + 8 + 4
	blockRow     = 4 + 4 + 4
)

var checkpointMagic = [4]byte{'B', 'P', 'C', 'K'}

// Checkpoint is the decoded content of a checkpoint file: where every event
// up to LastSeq is and what stream and kind it has, whose frames end in
// segment Segment at FrameEnd. Ids, correlation, causation and timestamps
// are not kept: they are in the frames (and a hole's stubs).
type Checkpoint struct {
	LastSeq  uint64
	Segment  uint32
	FrameEnd uint64
	// LastID is the id of event LastSeq; IDsUnsorted says that ids do not
	// increase with the sequence (an event id was given or lost).
	LastID      [16]byte
	IDsUnsorted bool
	Streams     []CheckpointStream
	Scopes      []string
	Keys        []IdempotencyRecord
	// Entries holds event i+1 at i. Entity indexes Streams; Scope is the
	// stream's and an entry's version is its number in its stream. ID,
	// Correlation, Causation and Timestamp are not encoded.
	Entries []IndexEntry
}

// CheckpointStream is the state of one stream at the checkpoint. Its
// Version is also the number of its events: versions are dense.
type CheckpointStream struct {
	Entity   string
	Scope    uint32 // index into Checkpoint.Scopes
	Version  uint64
	LastHash [32]byte
	Deleted  bool
}

// Validate checks that c can be encoded: every string and key fits a
// 16-bit length and every entry names a known stream and scope.
func (c *Checkpoint) Validate() error {
	for i, st := range c.Streams {
		if len(st.Entity) > MaxIndexString {
			return fmt.Errorf("segment: checkpoint stream %d is %d bytes, limit %d", i, len(st.Entity), MaxIndexString)
		}
		if int(st.Scope) >= len(c.Scopes) {
			return fmt.Errorf("segment: checkpoint stream %d names scope %d of %d", i, st.Scope, len(c.Scopes))
		}
	}
	for i, sc := range c.Scopes {
		if len(sc) > MaxIndexString {
			return fmt.Errorf("segment: checkpoint scope %d is %d bytes, limit %d", i, len(sc), MaxIndexString)
		}
	}
	for _, k := range c.Keys {
		if len(k.Key) > MaxIndexString {
			return fmt.Errorf("segment: checkpoint key of %d bytes, limit %d", len(k.Key), MaxIndexString)
		}
	}
	for i := range c.Entries {
		if e := &c.Entries[i]; int(e.Entity) >= len(c.Streams) {
			return fmt.Errorf("segment: checkpoint entry %d names stream %d of %d", i, e.Entity, len(c.Streams))
		}
	}
	return nil
}

// EncodeCheckpoint returns the bytes of a checkpoint file (docs/format.md)
// of c and its Entries, which must hold c.LastSeq entries. c must satisfy
// [Checkpoint.Validate]; the Seq and Version of its entries are not
// written, they follow from their places.
func EncodeCheckpoint(c *Checkpoint) []byte {
	part := make([]PackedEntry, 0, CheckpointBlockEntries)
	lists := make([][]uint32, len(c.Streams))
	wide := c.LastSeq > math.MaxUint32
	for i := range c.Entries {
		e := &c.Entries[i]
		if seq := uint64(i + 1); wide {
			lists[e.Entity] = append(lists[e.Entity], uint32(seq>>32), uint32(seq))
		} else {
			lists[e.Entity] = append(lists[e.Entity], uint32(seq))
		}
	}
	var out []byte
	for b := range CheckpointParts(c, func(i int) *PackedBlock {
		part = part[:0]
		for _, e := range c.Entries[i*CheckpointBlockEntries : min(len(c.Entries), (i+1)*CheckpointBlockEntries)] {
			part = append(part, PackedEntry{
				Pos:    Position{Segment: e.Segment, Offset: e.Offset, Length: e.Length},
				Stream: e.Entity, Kind: e.Kind, Flags: e.Flags,
			})
		}
		return PackEntries(part)
	}, func(i int) ([]uint32, bool) { return lists[i], wide }) {
		out = append(out, b...)
	}
	return out
}

// CheckpointParts is [EncodeCheckpoint] for entries handed over one packed
// block at a time and sequences one stream at a time: block returns block
// i, the entries of sequences i·[CheckpointBlockEntries]+1 on (their
// Stream must index c.Streams; a last block of fewer entries is padded,
// see [PackEntries]), and seqs the sequences of stream i, ascending, one
// word each or, if wide, two (high word first); c.Entries is not used. It
// yields the file's bytes in parts, to be written one after the other; a
// part is valid until the next is asked for.
func CheckpointParts(c *Checkpoint, block func(i int) *PackedBlock, seqs func(i int) (w []uint32, wide bool)) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		head, tables, blocks := encodeCheckpointFront(c, block)
		for _, p := range [][]byte{head, tables, blocks} {
			if !yield(p) {
				return
			}
		}
		if !writeHashes(c, len(head)+len(tables)+len(blocks), yield) {
			return
		}
		sw := seqWriter{chunkWriter: chunkWriter{buf: make([]byte, 0, seqChunk), yield: yield}, wide: c.LastSeq > math.MaxUint32}
		for i := range c.Streams {
			if !sw.write(seqs(i)) {
				return
			}
		}
		sw.finish()
	}
}

// encodeCheckpointFront returns what precedes the sequences: the head,
// the tables (with the padding that puts the blocks at a multiple of 8
// bytes) and the blocks of c.
func encodeCheckpointFront(c *Checkpoint, block func(i int) *PackedBlock) (head, tables, blocks []byte) {
	nBlocks := int((c.LastSeq + CheckpointBlockEntries - 1) / CheckpointBlockEntries)
	// Most entries pack in 11 to 20 bits; a wider block grows the buffer.
	blocks = make([]byte, 0, c.LastSeq*3+uint64(nBlocks)*(packedHead+16))
	dir := make([]byte, 0, blockRow*nBlocks)
	for i := range nBlocks {
		start := len(blocks)
		blocks, _ = block(i).AppendBinary(blocks)
		dir = binary.BigEndian.AppendUint32(dir, uint32(min(CheckpointBlockEntries, c.LastSeq-uint64(i)*CheckpointBlockEntries)))
		dir = binary.BigEndian.AppendUint32(dir, uint32(len(blocks)-start))
		dir = binary.BigEndian.AppendUint32(dir, Checksum(blocks[start:]))
	}
	size := len(dir) + 4 + 8
	for _, st := range c.Streams {
		size += 3 + len(st.Entity) + 5 + 10 + 1
	}
	for _, sc := range c.Scopes {
		size += 2 + len(sc)
	}
	for _, k := range c.Keys {
		size += 2 + len(k.Key) + 8 + 4
	}
	tables = make([]byte, 0, size)
	for _, st := range c.Streams {
		tables = binary.AppendUvarint(tables, uint64(len(st.Entity)))
		tables = append(tables, st.Entity...)
		tables = binary.AppendUvarint(tables, uint64(st.Scope))
		tables = binary.AppendUvarint(tables, st.Version)
		tables = append(tables, boolByte(st.Deleted))
	}
	for _, sc := range c.Scopes {
		tables = appendString(tables, sc)
	}
	for _, k := range c.Keys {
		tables = appendString(tables, k.Key)
		tables = binary.BigEndian.AppendUint64(tables, k.First)
		tables = binary.BigEndian.AppendUint32(tables, k.Count)
	}
	tables = append(tables, dir...)
	tables = binary.BigEndian.AppendUint32(tables, Checksum(tables))

	head = make([]byte, 0, checkpointHead)
	head = append(head, checkpointMagic[:]...)
	head = binary.BigEndian.AppendUint16(head, checkpointVersion)
	head = binary.BigEndian.AppendUint64(head, c.LastSeq)
	head = binary.BigEndian.AppendUint32(head, c.Segment)
	head = binary.BigEndian.AppendUint64(head, c.FrameEnd)
	head = append(head, c.LastID[:]...)
	head = append(head, boolByte(c.IDsUnsorted)*checkpointIDsUnsorted)
	for _, n := range [...]int{len(c.Streams), len(c.Scopes), len(c.Keys), len(dir) / blockRow, len(tables)} {
		head = binary.BigEndian.AppendUint32(head, uint32(n))
	}
	head = binary.BigEndian.AppendUint32(head, Checksum(head))
	// Blocks are a multiple of 8 bytes long: padding the tables puts
	// every block's words at a multiple of 8 in the file.
	tables = append(tables, make([]byte, pad8(len(head)+len(tables)))...)
	return head, tables, blocks
}

// pad8 returns how many bytes take n to a multiple of 8.
func pad8(n int) int { return -n & 7 }

func appendString(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// CheckpointFile is a checkpoint whose head and tables are checked, whose
// scopes and keys are decoded, whose streams are decoded as they are read
// ([CheckpointFile.StreamRows]) and whose entries are decoded block by
// block ([CheckpointFile.Block]), in any order or in parallel.
type CheckpointFile struct {
	Checkpoint // without Streams and Entries
	nStreams   int
	nScopes    int
	nKeys      int
	tables     []byte    // the streams', scopes' and keys' rows (CheckTables)
	whole      []byte    // all of the tables, with the block directory
	tablesSum  uint32    // their checksum
	rows       []byte    // the streams' rows
	rowMarks   []rowMark // where every rowsPerMark-th row starts
	namesLen   int       // the sum of their entities' lengths
	loaded     sync.Once
	blocks     []checkpointBlock
	// Blocks use their words where they lie in the file's bytes (see
	// inPlace). Where they cannot, the words of every block are copied
	// to one allocation (see huge.Make): the blocks share it, and it
	// lives as long as any of them.
	words      []uint64
	wordsOnce  sync.Once
	totalWords int
	// The last hashes section (ckpthashes.go) and its checker.
	hashes, hashSums []byte
	lastHashes       LastHashes
	// The sequences section (ckptseqs.go): its words and checksums, and
	// the words as uint32s once Seqs is called.
	seqs, seqSums []byte
	seqsOnce      sync.Once
	seqWords      []uint32
	checkerOnce   sync.Once
	checker       *SeqChecker
}

// NumStreams returns the number of streams.
func (f *CheckpointFile) NumStreams() int { return f.nStreams }

// StreamRows yields the streams in table order, numbered from 0. Their
// entities are parts of one string: one allocation, without size-class
// rounding, for what is most of the tables' bytes on a store of short
// streams. The rows were checked by OpenCheckpoint.
func (f *CheckpointFile) StreamRows() iter.Seq2[int, CheckpointRow] {
	return f.StreamRowParts(1)[0]
}

// StreamRowParts splits the streams into up to n runs of about equal
// length, in table order, and returns an iterator over each run's rows
// (numbered as in [CheckpointFile.StreamRows]); the runs may be read at
// the same time. Every entity is part of one string, as in StreamRows.
func (f *CheckpointFile) StreamRowParts(n int) []iter.Seq2[int, CheckpointRow] {
	if len(f.rowMarks) == 0 { // no streams
		return []iter.Seq2[int, CheckpointRow]{func(func(int, CheckpointRow) bool) {}}
	}
	names := huge.Make[byte](f.namesLen)
	// Each entity is a string over the part of names its row copied to,
	// which is never written again.
	all := unsafe.String(unsafe.SliceData(names), len(names))
	n = min(max(1, n), len(f.rowMarks))
	parts := make([]iter.Seq2[int, CheckpointRow], n)
	for k := range parts {
		from, to := len(f.rowMarks)*k/n, len(f.rowMarks)*(k+1)/n
		first, end := from*rowsPerMark, min(f.nStreams, to*rowsPerMark)
		rowsEnd := len(f.rows)
		if to < len(f.rowMarks) {
			rowsEnd = f.rowMarks[to].row
		}
		start := f.rowMarks[from]
		parts[k] = func(yield func(int, CheckpointRow) bool) {
			r := reader{b: f.rows[start.row:rowsEnd], what: "checkpoint tables"}
			at, seqs := start.name, start.seqs
			for i := first; i < end; i++ {
				n := copy(names[at:], r.bytes(int(r.uvarint())))
				row := CheckpointRow{CheckpointStream: CheckpointStream{Entity: all[at : at+n], Scope: uint32(r.uvarint()), Version: r.uvarint()}, SeqsAt: seqs}
				at += n
				seqs += row.Version
				row.Deleted = r.u8() == 1
				if !yield(i, row) {
					return
				}
			}
		}
	}
	return parts
}

// rowsPerMark is how many stream rows lie between two of
// CheckpointFile.rowMarks.
const rowsPerMark = 4096

// rowMark is where stream row i×rowsPerMark starts in CheckpointFile.rows,
// where its entity goes among the streams' names, and how many sequences
// the streams before it have.
type rowMark struct {
	row, name int
	seqs      uint64
}

// CheckpointRow is a stream as [CheckpointFile.StreamRows] reads it, with
// where its sequences start among all of them: after those of the streams
// before it. Its LastHash is not in the rows: see
// [CheckpointFile.LastHashes].
type CheckpointRow struct {
	CheckpointStream
	SeqsAt uint64
}

type checkpointBlock struct {
	first uint64 // sequence of the first entry
	n     int
	data  []byte
	sum   uint32
	words int // where its words start in CheckpointFile.words
}

// OpenCheckpoint checks the head and tables of the checkpoint file b and
// decodes them; b must stay unchanged while its blocks are decoded. Damage
// returns an error matching [ErrCorrupt], a format it does not know
// [ErrUnsupportedVersion]; the caller then ignores the checkpoint. It does
// not check that each stream is listed once: a caller that maps the
// streams by name finds a second listing as it builds its map (as
// [DecodeCheckpoint] does), without building a map of every name twice.
func OpenCheckpoint(b []byte) (*CheckpointFile, error) {
	f, err := OpenCheckpointBlocks(b)
	if err != nil {
		return nil, err
	}
	if err := f.CheckTables(); err != nil {
		return nil, err
	}
	return f, nil
}

// OpenCheckpointBlocks is the first half of [OpenCheckpoint]: it checks the
// head, decodes the block directory (the tables' fixed-width end) and
// checks that the sections fill the file, so that the blocks can be
// checked and decoded ([CheckpointFile.Block]) while [CheckpointFile.CheckTables],
// which must succeed before anything else of f is used, checks the rest.
func OpenCheckpointBlocks(b []byte) (*CheckpointFile, error) {
	bad := func(format string, args ...any) error {
		return &CorruptError{Path: "checkpoint", Reason: fmt.Sprintf(format, args...)}
	}
	if len(b) < 6 || [4]byte(b[:4]) != checkpointMagic {
		return nil, bad("bad magic")
	}
	if v := binary.BigEndian.Uint16(b[4:6]); v != checkpointVersion {
		return nil, fmt.Errorf("%w: checkpoint format %d", ErrUnsupportedVersion, v)
	}
	if len(b) < checkpointHead {
		return nil, bad("%d bytes is too short", len(b))
	}
	if Checksum(b[:checkpointHead-4]) != binary.BigEndian.Uint32(b[checkpointHead-4:]) {
		return nil, bad("head checksum mismatch")
	}
	f := &CheckpointFile{Checkpoint: Checkpoint{
		LastSeq:  binary.BigEndian.Uint64(b[6:14]),
		Segment:  binary.BigEndian.Uint32(b[14:18]),
		FrameEnd: binary.BigEndian.Uint64(b[18:26]),
		LastID:   [16]byte(b[26:42]),
	}}
	switch flags := b[42]; flags {
	case 0, checkpointIDsUnsorted:
		f.IDsUnsorted = flags != 0
	default:
		return nil, bad("head flags 0x%02x", flags)
	}
	var counts [5]uint64
	for i := range counts {
		counts[i] = uint64(binary.BigEndian.Uint32(b[43+4*i:]))
	}
	nStreams, nScopes, nKeys, nBlocks, tablesLen := counts[0], counts[1], counts[2], counts[3], counts[4]
	rest := b[checkpointHead:]
	if tablesLen < 4 || tablesLen > uint64(len(rest)) {
		return nil, bad("tables of %d bytes in %d", tablesLen, len(rest))
	}
	tables, blocks := rest[:tablesLen-4], rest[tablesLen:]
	pad := pad8(checkpointHead + int(tablesLen))
	if len(blocks) < pad || !allZero(blocks[:pad]) {
		return nil, bad("no zero padding after the tables")
	}
	blocks = blocks[pad:]
	if nStreams*minStreamRow+nScopes*minScopeRow+nKeys*minKeyRow+nBlocks*blockRow > uint64(len(tables)) {
		return nil, bad("counts %d/%d/%d/%d exceed %d bytes of tables", nStreams, nScopes, nKeys, nBlocks, len(tables))
	}
	dir := len(tables) - int(nBlocks)*blockRow
	f.nStreams, f.nScopes, f.nKeys = int(nStreams), int(nScopes), int(nKeys)
	f.tables, f.tablesSum = tables[:dir], binary.BigEndian.Uint32(rest[tablesLen-4:])
	f.whole = rest[:tablesLen-4]
	if err := f.decodeBlocks(tables[dir:], int(nBlocks), blocks); err != nil {
		if Checksum(f.whole) != f.tablesSum { // damage, as CheckTables would say
			return nil, bad("tables checksum mismatch")
		}
		return nil, bad("%v", err)
	}
	return f, nil
}

// CheckTables checks and decodes the streams' rows, the scopes and the
// keys, and the tables' checksum (on another core meanwhile): the second
// half of [OpenCheckpoint], after [OpenCheckpointBlocks]. Damage returns
// an error matching [ErrCorrupt].
func (f *CheckpointFile) CheckTables() error {
	// The tables' checksum is taken while they decode: the decoder checks
	// every bound, so bytes the checksum will refuse cannot mislead it,
	// and it is reported only if the checksum holds.
	sumOK := make(chan bool, 1)
	go func() { sumOK <- Checksum(f.whole) == f.tablesSum }()
	err := f.decodeTables()
	if !<-sumOK {
		return &CorruptError{Path: "checkpoint", Reason: "tables checksum mismatch"}
	}
	if err != nil {
		return &CorruptError{Path: "checkpoint", Reason: err.Error()}
	}
	return nil
}

// decodeBlocks decodes the block directory dir of nBlocks rows, and checks
// that the blocks, the last hashes and the sequences fill the rest of the
// file, blocks, and that the blocks cover LastSeq.
func (f *CheckpointFile) decodeBlocks(dir []byte, nBlocks int, blocks []byte) error {
	r := reader{b: dir, what: "checkpoint tables"}
	f.blocks = make([]checkpointBlock, nBlocks)
	next := uint64(1)
	for i := range f.blocks {
		n, size, sum := int(r.u32()), uint64(r.u32()), r.u32()
		if r.err != nil {
			return r.err
		}
		if n == 0 || n > CheckpointBlockEntries || (n < CheckpointBlockEntries && i < nBlocks-1) ||
			size > uint64(len(blocks)) || size < packedHead+16 {
			return decodeErr("checkpoint tables", "block %d of %d entries in %d bytes", i, n, size)
		}
		// The block's words, if its size is right (decodePackedBlock checks).
		words := (int(size) - packedFixed(uint32(n))) / 8
		f.blocks[i] = checkpointBlock{first: next, n: n, data: blocks[:size], sum: sum, words: f.totalWords}
		f.totalWords += max(0, words)
		next += uint64(n)
		blocks = blocks[size:]
	}
	if next-1 != f.LastSeq {
		return decodeErr("checkpoint", "%d entries for last sequence %d", next-1, f.LastSeq)
	}
	// The last hashes and the sequences sections fill the rest of the
	// file, which starts at a multiple of 8 bytes: so do the blocks, whose
	// sizes the block decoder checks to be multiples of 8.
	hashes, hashSums := hashSectionSize(f.nStreams)
	hashEnd := hashes + hashSums + pad8(hashes+hashSums)
	words, sums := seqSectionSize(f.LastSeq)
	if uint64(len(blocks)) != uint64(hashEnd)+words+sums {
		return decodeErr("checkpoint", "%d bytes after the blocks, want %d of last hashes and %d of sequences", len(blocks), hashEnd, words+sums)
	}
	if !allZero(blocks[hashes+hashSums : hashEnd]) {
		return decodeErr("checkpoint", "no zero padding after the last hashes")
	}
	f.hashes, f.hashSums = blocks[:hashes], blocks[hashes:hashes+hashSums]
	f.seqs, f.seqSums = blocks[hashEnd:hashEnd+int(words)], blocks[hashEnd+int(words):]
	return nil
}

// decodeTables decodes the streams, scopes and keys, which must end where
// the block directory starts.
func (f *CheckpointFile) decodeTables() error {
	r := reader{b: f.tables, what: "checkpoint tables"}
	str := func(what string, i int) string {
		s := string(r.bytes(int(r.u16())))
		if r.err == nil && !utf8.ValidString(s) {
			r.err = decodeErr("checkpoint tables", "%s %d is not UTF-8", what, i)
		}
		return s
	}
	// The streams' rows are checked here and decoded when read.
	start := r.b
	var versions uint64
	f.rowMarks = make([]rowMark, 0, (f.nStreams+rowsPerMark-1)/rowsPerMark)
	for i := range f.nStreams {
		if i%rowsPerMark == 0 {
			f.rowMarks = append(f.rowMarks, rowMark{row: len(start) - len(r.b), name: f.namesLen, seqs: versions})
		}
		n := r.uvarint()
		if n > MaxIndexString && r.err == nil {
			r.err = decodeErr("checkpoint tables", "stream %d is %d bytes, limit %d", i, n, MaxIndexString)
		}
		name := r.bytes(int(min(n, MaxIndexString)))
		if r.err == nil && !utf8.Valid(name) {
			r.err = decodeErr("checkpoint tables", "stream %d is not UTF-8", i)
		}
		f.namesLen += len(name)
		if scope := r.uvarint(); r.err == nil && scope >= uint64(f.nScopes) {
			r.err = decodeErr("checkpoint tables", "stream %d names scope %d of %d", i, scope, f.nScopes)
		}
		if v := r.uvarint(); r.err == nil {
			if v > f.LastSeq-versions { // also where the sum would overflow
				r.err = decodeErr("checkpoint", "stream versions add up to more than %d events", f.LastSeq)
			}
			versions += v
		}
		if d := r.u8(); d > 1 && r.err == nil {
			r.err = decodeErr("checkpoint tables", "stream %d deleted flag %d", i, d)
		}
	}
	f.rows = start[:len(start)-len(r.b)]
	f.Scopes = make([]string, f.nScopes)
	for i := range f.Scopes {
		f.Scopes[i] = str("scope", i)
	}
	f.Keys = make([]IdempotencyRecord, f.nKeys)
	for i := range f.Keys {
		k := &f.Keys[i]
		k.Key = str("key", i)
		k.First, k.Count = r.u64(), r.u32()
		if r.err == nil && (k.First == 0 || k.Count == 0 || uint64(k.Count) > f.LastSeq || k.First > f.LastSeq-uint64(k.Count)+1) {
			r.err = decodeErr("checkpoint tables", "key %d covers %d events from %d, beyond the last sequence %d", i, k.Count, k.First, f.LastSeq)
		}
	}
	switch {
	case r.err != nil:
		return r.err
	case len(r.b) != 0:
		return decodeErr("checkpoint tables", "%d bytes before the block directory", len(r.b))
	case versions != f.LastSeq:
		return decodeErr("checkpoint", "stream versions add up to %d events, not %d", versions, f.LastSeq)
	}
	if name, dup := firstDuplicate(len(f.Scopes), func(i int) string { return f.Scopes[i] }); dup {
		return decodeErr("checkpoint tables", "scope %q twice", name)
	}
	return nil
}

// firstDuplicate returns the first of the n names that occurs twice.
func firstDuplicate(n int, name func(int) string) (string, bool) {
	seen := make(map[string]struct{}, n)
	for i := range n {
		s := name(i)
		if _, ok := seen[s]; ok {
			return s, true
		}
		seen[s] = struct{}{}
	}
	return "", false
}

// NumBlocks returns the number of entry blocks: event seq is in block
// (seq-1)/[CheckpointBlockEntries].
func (f *CheckpointFile) NumBlocks() int { return len(f.blocks) }

// Block checks block i and decodes it, and writes the stream of each of
// its entries to streams, which must have room for them (for
// [CheckpointBlockEntries]), checking that it names a listed stream.
func (f *CheckpointFile) Block(i int, streams []uint32) (*PackedBlock, error) {
	bl := &f.blocks[i]
	bad := func(format string, args ...any) error {
		return &CorruptError{Path: "checkpoint", Reason: fmt.Sprintf("block %d: ", i) + fmt.Sprintf(format, args...)}
	}
	if Checksum(bl.data) != bl.sum {
		return nil, bad("checksum mismatch")
	}
	var words []uint64 // where a block whose words are not used in place copies them
	if fixed := packedFixed(uint32(bl.n)); fixed > len(bl.data) || inPlace[uint64](bl.data[fixed:]) == nil {
		f.wordsOnce.Do(func() { f.words = huge.Make[uint64](f.totalWords) })
		end := f.totalWords
		if i+1 < len(f.blocks) {
			end = f.blocks[i+1].words
		}
		words = f.words[bl.words:end]
	}
	c, err := decodePackedBlock(bl.data, words)
	if err != nil {
		return nil, bad("%v", err)
	}
	if c.Len() != bl.n {
		return nil, bad("%d entries, the directory says %d", c.Len(), bl.n)
	}
	streams = streams[:bl.n]
	c.Streams(streams)
	for j, st := range streams {
		if st >= uint32(f.nStreams) {
			return nil, bad("entry %d: stream %d of %d", j, st, f.nStreams)
		}
	}
	return c, nil
}

// DecodeBlock checks block i and decodes its entries, handing each to fn
// with its index in the block; e is reused for the next entry. An entry's
// Version is left zero: it is its number in its stream, which depends on
// the blocks before. After an error, the entries fn got are not to be used.
func (f *CheckpointFile) DecodeBlock(i int, fn func(j int, e *IndexEntry)) error {
	f.loadStreams()
	var streams [CheckpointBlockEntries]uint32
	c, err := f.Block(i, streams[:])
	if err != nil {
		return err
	}
	var dst [CheckpointBlockEntries]PackedEntry
	c.Unpack(&dst)
	bl := &f.blocks[i]
	var e IndexEntry
	for j, pe := range dst[:bl.n] {
		e = IndexEntry{
			Seq: bl.first + uint64(j), Kind: pe.Kind, Flags: pe.Flags,
			Entity: pe.Stream, Scope: f.Streams[pe.Stream].Scope,
			Segment: pe.Pos.Segment, Offset: pe.Pos.Offset, Length: pe.Pos.Length,
		}
		fn(j, &e)
	}
	return nil
}

// loadStreams fills f.Streams, once.
func (f *CheckpointFile) loadStreams() {
	f.loaded.Do(func() {
		f.Streams = make([]CheckpointStream, 0, f.nStreams)
		for _, st := range f.StreamRows() {
			f.Streams = append(f.Streams, st.CheckpointStream)
		}
	})
}

// DecodeCheckpoint checks and decodes a whole checkpoint file, entries
// included, and checks that the stream versions match their events and
// that no stream is listed twice.
func DecodeCheckpoint(b []byte) (*Checkpoint, error) {
	f, err := OpenCheckpoint(b)
	if err != nil {
		return nil, err
	}
	f.loadStreams()
	c := &f.Checkpoint
	hashes := f.LastHashes()
	if err := hashes.CheckAll(1); err != nil {
		return nil, err
	}
	for i := range c.Streams {
		c.Streams[i].LastHash, _ = hashes.At(i) // checked
	}
	type name struct {
		scope  uint32
		entity string
	}
	seen := make(map[name]struct{}, len(c.Streams))
	for _, st := range c.Streams {
		if _, dup := seen[name{st.Scope, st.Entity}]; dup {
			return nil, &CorruptError{Path: "checkpoint", Reason: fmt.Sprintf("stream %q in scope %q twice", st.Entity, c.Scopes[st.Scope])}
		}
		seen[name{st.Scope, st.Entity}] = struct{}{}
	}
	c.Entries = make([]IndexEntry, 0, c.LastSeq)
	for i := range f.blocks {
		if err := f.DecodeBlock(i, func(_ int, e *IndexEntry) { c.Entries = append(c.Entries, *e) }); err != nil {
			return nil, err
		}
	}
	versions := make([]uint64, len(c.Streams))
	for i := range c.Entries {
		e := &c.Entries[i]
		versions[e.Entity]++
		e.Version = versions[e.Entity]
	}
	for i, v := range versions {
		if v != c.Streams[i].Version {
			return nil, &CorruptError{Path: "checkpoint", Reason: fmt.Sprintf("stream %d has %d events, version %d", i, v, c.Streams[i].Version)}
		}
	}
	if err := f.checkSeqsAgainst(c.Entries); err != nil {
		return nil, err
	}
	return c, nil
}

// checkSeqsAgainst checks the sequences section against the decoded
// entries: each stream's sequences are exactly those of its entries.
func (f *CheckpointFile) checkSeqsAgainst(entries []IndexEntry) error {
	if err := f.CheckSeqs(1); err != nil {
		return err
	}
	words, per := f.Seqs(), uint64(1)
	if f.SeqWide() {
		per = 2
	}
	start := make([]uint64, len(f.Streams)) // where each stream's words start
	var at uint64
	for i := range f.Streams {
		start[i] = at
		at += per * f.Streams[i].Version
	}
	for i := range entries {
		e := &entries[i]
		k := start[e.Entity] + per*(e.Version-1)
		got := uint64(words[k])
		if per == 2 {
			got = got<<32 | uint64(words[k+1])
		}
		if got != e.Seq {
			return &CorruptError{Path: "checkpoint", Reason: fmt.Sprintf("stream %d lists sequence %d as version %d, whose entry is %d", e.Entity, got, e.Version, e.Seq)}
		}
	}
	return nil
}
