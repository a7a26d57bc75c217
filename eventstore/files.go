package eventstore

import (
	"iter"
	"path/filepath"

	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
)

// The store's own files in its directory: segments, the checkpoint and
// compaction outputs. Every write goes through the configured FS, so a
// fault-injecting one reaches each of them.

// segmentPath names segment id's file in the store directory.
func (s *Store) segmentPath(id uint32) string { return filepath.Join(s.dir, segment.FileName(id)) }

// replaceFile atomically replaces name in the store directory with the
// parts parts yields, written one after the other (see
// [vfs.WriteFileAtomicParts]): the checkpoint.
func (s *Store) replaceFile(name string, parts iter.Seq[[]byte]) error {
	return vfs.WriteFileAtomicParts(s.fs, filepath.Join(s.dir, name), s.cfg.fileMode, parts)
}

// writeFileSynced creates path with data and syncs it, without renaming it
// into place: compaction renames its output over the segment later, under
// compactMu, and must fail the store itself if the directory sync fails,
// so the all-in-one [vfs.WriteFileAtomic] does not fit it.
func (s *Store) writeFileSynced(path string, data []byte) error {
	return vfs.WriteFileSynced(s.fs, path, data, s.cfg.fileMode)
}
