package eventstore

import (
	"sync/atomic"
	"time"

	"github.com/batpak-go/batpak/segment"
)

type counters struct {
	appends         atomic.Uint64
	appendedEvents  atomic.Uint64
	groups          atomic.Uint64
	groupedRequests atomic.Uint64
	syncs           atomic.Uint64
	bytesWritten    atomic.Uint64
	idempotentHits  atomic.Uint64
	segments        atomic.Uint64
	checkpoints     atomic.Uint64
	corruptReads    atomic.Uint64
	listsRebuilt    atomic.Uint64
	hashesReread    atomic.Uint64
}

// ColdStart describes how Open rebuilt the index.
type ColdStart struct {
	// Path is "checkpoint", "footer", "scan" or "empty": the fastest source
	// that was used (the rest after a checkpoint comes from footers and scans).
	Path                 string
	Duration             time.Duration
	EventsFromCheckpoint uint64
	EventsFromFooters    uint64
	EventsScanned        uint64
	SegmentsFromFooters  int
	SegmentsScanned      int
	// CheckpointIgnored says why a checkpoint file was not used, if one existed.
	CheckpointIgnored string
	// TruncatedBytes were cut from the active segment's torn tail or
	// incomplete batch: writes that were never acknowledged.
	TruncatedBytes int64
	// CheckpointWritten: a writable open that rebuilt at least
	// WithCheckpointEvery's events from footers or scans wrote a
	// checkpoint and loaded the index from it (Duration includes both).
	CheckpointWritten bool
}

// Stats is a snapshot of the store's counters.
type Stats struct {
	Events               uint64
	Streams              int
	Segments             int
	DiskBytes            int64  // size of the segment files, preallocated space included
	DataBytes            int64  // bytes of the segment files that hold data
	Appends              uint64 // Append and AppendBatch calls that committed events, since Open
	AppendedEvents       uint64 // since Open
	Groups               uint64 // group commits since Open
	AverageGroupSize     float64
	Syncs                uint64
	BytesWritten         uint64
	IdempotentHits       uint64
	Subscribers          int
	DroppedNotifications uint64
	Checkpoints          uint64
	// CorruptReads counts the reads since Open that met damage: an error
	// matching ErrCorrupt from a read, a cursor or a replay. (What a scrub
	// finds is in Scrub.)
	CorruptReads uint64
	// CheckpointListsRebuilt counts the streams whose sequences, in the
	// checkpoint the store opened from, were found damaged or wrong when
	// first used, and were rebuilt from the checkpoint's blocks (each is
	// also logged). The events were never at risk: a read never uses a
	// list before it is checked.
	CheckpointListsRebuilt uint64
	// CheckpointHashesReread counts the streams whose last hash, in the
	// checkpoint the store opened from, lay in a chunk that failed its
	// checksum, and was read from the stream's last frame instead (each
	// is also logged). A hash is never used before its chunk is checked.
	CheckpointHashesReread uint64
	ColdStart              ColdStart
	// Scrub says what [Store.Scrub] and the background scrubber checked
	// and the damage the last complete scrub found.
	Scrub ScrubStats
	// Failed holds the error that turned the store read-only, if any.
	Failed error `json:"-"`
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.ix.mu.RLock()
	st := Stats{Events: s.ix.lastSeq(), Streams: int(s.ix.streams.len())}
	s.ix.mu.RUnlock()
	st.Appends = s.stats.appends.Load()
	st.AppendedEvents = s.stats.appendedEvents.Load()
	st.Groups = s.stats.groups.Load()
	if st.Groups > 0 {
		st.AverageGroupSize = float64(s.stats.groupedRequests.Load()) / float64(st.Groups)
	}
	st.Syncs = s.stats.syncs.Load()
	st.BytesWritten = s.stats.bytesWritten.Load()
	st.IdempotentHits = s.stats.idempotentHits.Load()
	st.DroppedNotifications = s.subs.Dropped()
	st.Checkpoints = s.stats.checkpoints.Load()
	st.CorruptReads = s.stats.corruptReads.Load()
	st.CheckpointListsRebuilt = s.stats.listsRebuilt.Load()
	st.CheckpointHashesReread = s.stats.hashesReread.Load()
	st.ColdStart = s.coldStart
	st.Scrub = s.scrubStats()
	st.Failed = s.failure()
	st.Subscribers = s.subs.Len()
	s.diskStats(&st)
	return st
}

// diskStats counts the segment files and their bytes: all of each file
// on disk, and of the active segment only its frames as data. A read-only
// store's data is its view: its last segment up to where the frames ended
// at open, and none of the segments a writer began since.
func (s *Store) diskStats(st *Stats) {
	des, err := s.fs.ReadDir(s.dir)
	if err != nil {
		return
	}
	active, end := s.pipe.activeSegment.Load(), s.pipe.activeEnd.Load()
	if s.readOnly {
		active, end = s.viewTail.segment, s.viewTail.end
	}
	for _, de := range des {
		id, ok := segment.ParseFileName(de.Name())
		if !ok {
			continue
		}
		st.Segments++
		fi, err := de.Info()
		if err != nil {
			continue
		}
		st.DiskBytes += fi.Size()
		switch {
		case id == active:
			st.DataBytes += min(end, fi.Size())
		case !s.readOnly || id < active:
			st.DataBytes += fi.Size()
		}
	}
}
