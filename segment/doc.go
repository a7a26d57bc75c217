// Package segment owns batpak's on-disk format: segment files made of
// CRC-protected frames, the footer index written when a segment is sealed,
// the writer that appends frames to the active segment, the readers (mmap for
// sealed segments, pread for the active one) and the scanner used on cold
// start and for sequential replay.
//
// A segment file is laid out as
//
//	header (32 bytes) | frame* | [footer frame | trailer (16 bytes)]
//
// and every frame is
//
//	[payload length u32 BE][CRC-32C of payload u32 BE][msgpack payload]
//
// The payload of an event frame is a msgpack array (see [Record]); it carries
// the event's global sequence, so a scan can tell a torn tail from a hole.
// docs/format.md describes every byte.
//
// The package never trusts what it reads: lengths are checked against the
// file size and [MaxFramePayload] before anything is allocated, and damage
// is reported as a [*CorruptError] (matching [ErrCorrupt]) naming the
// segment and offset.
package segment
