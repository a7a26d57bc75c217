package eventstore

import "errors"

var (
	// ErrLocked is returned when another process holds the directory for writing.
	ErrLocked = errors.New("eventstore: directory is locked by another writer")
	// ErrLost is returned, together with ErrNotFound, for an event that
	// was lost to damage and replaced by [Repair] with a stub: its
	// sequence, stream and version remain, its content is gone. Repair's
	// report lists every such event.
	ErrLost = errors.New("eventstore: event lost to damage")
	// ErrStreamFull is returned by an append to a stream that holds
	// 4,294,967,295 events, the most a stream can; nothing is written.
	ErrStreamFull = errors.New("eventstore: stream is full")
)
