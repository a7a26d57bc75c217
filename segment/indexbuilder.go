package segment

// IndexBuilder encodes a segment's footer index an entry at a time, as
// the segment fills, so that sealing it encodes only what came last. The
// footer it returns has the bytes [AppendFooter] writes for the index of
// the same strings and entries in the same order.
type IndexBuilder struct {
	// Strings interns the entities and scopes the entries, tails and
	// deleted streams name.
	Strings StringTable
	enc     entryEncoder
}

// Add encodes e, whose entity and scope are indexes into b.Strings.
func (b *IndexBuilder) Add(e *IndexEntry) { b.enc.add(e) }

// Len returns the number of entries added.
func (b *IndexBuilder) Len() int { return b.enc.n }

// AppendFooter appends the footer frame and trailer of a segment whose
// frames end at frameEnd and whose index is b's strings and entries with
// the tails, keys and deleted streams of rest (its strings and entries are
// not used).
func (b *IndexBuilder) AppendFooter(dst []byte, segmentID uint32, frameEnd int64, rest *Index) ([]byte, error) {
	ix := *rest
	ix.Strings, ix.Entries = b.Strings.Strings, nil
	return appendFooter(dst, segmentID, frameEnd, &ix, func(body []byte) []byte {
		return appendIndexTables(body, ix.Strings, &b.enc, &ix)
	})
}
