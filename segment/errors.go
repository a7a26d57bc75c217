package segment

import (
	"errors"
	"fmt"

	"github.com/batpak-go/batpak"
)

// ErrCorrupt matches every [*CorruptError]; it is [batpak.ErrCorrupt].
var ErrCorrupt = batpak.ErrCorrupt

// ErrUnsupportedVersion is returned for a segment, footer or checkpoint
// written in a format version this build does not know. It is never guessed at.
var ErrUnsupportedVersion = errors.New("segment: unsupported format version")

// ErrFrameTooLarge is returned when a frame payload would exceed [MaxFramePayload].
var ErrFrameTooLarge = errors.New("segment: frame payload too large")

// CorruptError describes damage found in a segment file: which segment,
// where, and why. It matches [ErrCorrupt] with errors.Is.
type CorruptError struct {
	Segment uint32 // segment id (0 when the damage is not in a segment, e.g. a checkpoint)
	Path    string // file that holds the damage
	Offset  int64  // byte offset of the damaged frame or structure
	Reason  string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("segment: corrupt: %s at offset %d: %s", e.Path, e.Offset, e.Reason)
}

// Is reports whether target is [ErrCorrupt].
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// DecodeError is returned by the decoders ([DecodeFrame], [DecodeRecord],
// [DecodeIndex]) for malformed input. Callers that know the file and offset
// wrap it in a [*CorruptError].
type DecodeError struct {
	What   string // which structure
	Reason string
}

func (e *DecodeError) Error() string { return "segment: bad " + e.What + ": " + e.Reason }

// Is reports whether target is [ErrCorrupt]: undecodable bytes are corruption.
func (e *DecodeError) Is(target error) bool { return target == ErrCorrupt }

func decodeErr(what, format string, args ...any) error {
	return &DecodeError{What: what, Reason: fmt.Sprintf(format, args...)}
}
