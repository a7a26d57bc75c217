package eventstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/internal/shred"
	"github.com/batpak-go/batpak/vfs"
)

// KeysDir is the directory of the store's subject keys, in its directory:
// one file per data subject ever sealed or forgotten, named by a hash of
// the subject ("<32 hex digits>.key", format in docs/format.md), holding
// the subject's AES-256 key or, once forgotten, a tombstone.
const KeysDir = "keys"

// fileKeys is the embedded store's [shred.KeyStore]. Every file is
// replaced whole with [vfs.WriteFileAtomic], so after a crash at any point
// a subject's file holds its key or its tombstone, never a mix: a Forget
// that returned is durable, one that failed may have happened or not.
type fileKeys struct {
	dir      string // the store's keys directory
	fs       vfs.FS
	fileMode fs.FileMode
	dirMode  fs.FileMode
	locks    [64]sync.Mutex // by subject: Create and Forget of one subject in turn
	mkdirMu  sync.Mutex
	made     bool // the keys directory exists, durably
	// synced is set while every key file in the directory is known to be
	// durable, after a directory sync. A write that failed may have
	// renamed its file into place without the directory sync, and a file
	// found after open may be a crashed process's such file: a key found
	// on disk is made durable before it seals an event.
	syncMu sync.Mutex
	synced bool
}

var _ shred.KeyStore = (*fileKeys)(nil)

func newFileKeys(storeDir string, fsys vfs.FS, fileMode, dirMode fs.FileMode) *fileKeys {
	return &fileKeys{dir: filepath.Join(storeDir, KeysDir), fs: fsys, fileMode: fileMode, dirMode: dirMode}
}

// file returns the file of subject s and the lock of its writes.
func (k *fileKeys) file(s batpak.Subject) (string, *sync.Mutex) {
	name := shred.Name(s)
	return filepath.Join(k.dir, name+".key"), &k.locks[int(name[0])%len(k.locks)]
}

// Load reads the entry of s. A damaged file, or one that holds another
// subject, is an error matching [batpak.ErrCorrupt] that names it.
func (k *fileKeys) Load(_ context.Context, s batpak.Subject) (*shred.Entry, bool, error) {
	path, _ := k.file(s)
	b, err := vfs.ReadFile(k.fs, path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("eventstore: read key of %s: %w", s, err)
	}
	e, err := shred.Unmarshal(b)
	if err != nil {
		return nil, false, fmt.Errorf("eventstore: key of %s in %s: %w", s, path, err)
	}
	if e.Subject != s {
		return nil, false, fmt.Errorf("eventstore: %s: %w: it holds the key of %s, not %s", path, shred.ErrCorrupt, e.Subject, s)
	}
	return e, true, nil
}

// Create writes e unless its subject has a file.
func (k *fileKeys) Create(ctx context.Context, e *shred.Entry) (*shred.Entry, error) {
	path, mu := k.file(e.Subject)
	mu.Lock()
	defer mu.Unlock()
	old, ok, err := k.Load(ctx, e.Subject)
	switch {
	case err != nil:
		return nil, err
	case ok && !old.Forgotten:
		if err := k.syncFound(); err != nil {
			return nil, fmt.Errorf("eventstore: make the key of %s durable: %w", e.Subject, err)
		}
		return old, nil
	case ok:
		return old, nil
	}
	if err := k.write(path, e); err != nil {
		return nil, fmt.Errorf("eventstore: store the key of %s: %w", e.Subject, err)
	}
	return e, nil
}

// syncFound makes the key files found on disk durable, once after open
// and again after any failed write.
func (k *fileKeys) syncFound() error {
	k.syncMu.Lock()
	defer k.syncMu.Unlock()
	if k.synced {
		return nil
	}
	if err := k.fs.SyncDir(k.dir); err != nil {
		return err
	}
	k.synced = true
	return nil
}

// Forget replaces the file of s by a tombstone.
func (k *fileKeys) Forget(_ context.Context, s batpak.Subject) error {
	path, mu := k.file(s)
	mu.Lock()
	defer mu.Unlock()
	if err := k.write(path, &shred.Entry{Subject: s, Forgotten: true}); err != nil {
		return fmt.Errorf("eventstore: forget %s: %w", s, err)
	}
	return nil
}

// write replaces path with e, creating the keys directory durably first.
func (k *fileKeys) write(path string, e *shred.Entry) error {
	k.mkdirMu.Lock()
	if !k.made {
		if err := vfs.MkdirAllSynced(k.fs, k.dir, k.dirMode); err != nil {
			k.mkdirMu.Unlock()
			return err // tried again by the next write
		}
		k.made = true
	}
	k.mkdirMu.Unlock()
	if err := vfs.WriteFileAtomic(k.fs, path, shred.Marshal(e), k.fileMode); err != nil {
		k.syncMu.Lock()
		k.synced = false // it may be in place, its directory entry not durable
		k.syncMu.Unlock()
		return err
	}
	return nil
}

// removeTemps removes the temporary files a crash left in the keys
// directory (a key or tombstone never renamed into place).
func (k *fileKeys) removeTemps() error {
	des, err := k.fs.ReadDir(k.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	removed := false
	for _, de := range des {
		if strings.HasSuffix(de.Name(), ".key"+vfs.TempSuffix) {
			if err := k.fs.Remove(filepath.Join(k.dir, de.Name())); err != nil {
				return err
			}
			removed = true
		}
	}
	if removed {
		return k.fs.SyncDir(k.dir)
	}
	return nil
}

// Forget destroys the key of subject durably: from when it returns, every
// read of the subject's events returns them erased ([batpak.Record.Erased]),
// also after a crash and a reopen, and an append for the subject fails
// with [batpak.ErrForgotten]. The events and their hashes stay, so Verify
// and VerifyChain still pass. The key file is replaced by a tombstone
// with [vfs.WriteFileAtomic]: a crash during Forget leaves the key or the
// tombstone, never a mix, and a Forget that returned an error must be
// called again. See docs/erasure.md for what it does not reach.
func (s *Store) Forget(ctx context.Context, subject batpak.Subject) error {
	if err := s.checkWritable(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.keyring.Forget(ctx, subject)
}

// readable makes a record read from the segments what readers see: its
// payload opened if a subject's key sealed it, or erased.
func (s *Store) readable(rec batpak.Record) (batpak.Record, error) {
	if len(rec.Metadata) == 0 {
		return rec, nil
	}
	if err := s.keyring.Open(context.Background(), &rec); err != nil {
		return batpak.Record{}, s.readFailed(err)
	}
	return rec, nil
}
