package shred

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"sync"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

// KeyStore is where a backend keeps its subjects' entries. Its methods
// are safe for concurrent use, and each is atomic per subject: a Create
// and a Forget of one subject never interleave.
type KeyStore interface {
	// Load returns the entry of s, or ok=false if s has none.
	Load(ctx context.Context, s batpak.Subject) (e *Entry, ok bool, err error)
	// Create stores e, a new key, durably, unless its subject has an
	// entry already; it returns the entry the subject has afterwards
	// (e, or the one that was there), durable in either case: the keyring
	// calls it, not Load, for the first seal of a subject.
	Create(ctx context.Context, e *Entry) (*Entry, error)
	// Forget replaces the entry of s by a tombstone, durably, creating
	// one if s has none.
	Forget(ctx context.Context, s batpak.Subject) error
}

// Keyring seals and opens payloads with the keys of a [KeyStore],
// keeping the entries it has read in memory unless told not to.
type Keyring struct {
	ks    KeyStore
	cache bool
	mu    sync.RWMutex
	m     map[batpak.Subject]*held
}

// held is an entry the keyring keeps, with its key's AEAD (nil for a
// tombstone).
type held struct {
	e    *Entry
	aead cipher.AEAD
}

func hold(e *Entry) *held {
	h := &held{e: e}
	if !e.Forgotten {
		h.aead = AEAD(&e.Key)
	}
	return h
}

// NewKeyring returns a keyring over ks. With cache, entries read once are
// kept (a store whose Forget only this keyring makes, or which tells it
// of others' with [Keyring.Learn]); without, every open reads the store.
func NewKeyring(ks KeyStore, cache bool) *Keyring {
	return &Keyring{ks: ks, cache: cache, m: make(map[batpak.Subject]*held)}
}

// Learn takes e as the entry of its subject: a backend that follows its
// key store tells the keyring of keys and Forgets made elsewhere.
func (k *Keyring) Learn(e *Entry) { k.learn(e) }

// learn keeps e (if the keyring caches) and returns it held.
func (k *Keyring) learn(e *Entry) *held {
	h := hold(e)
	if !k.cache {
		return h
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if old := k.m[e.Subject]; old != nil && old.e.Forgotten {
		return old // a forgotten subject stays forgotten
	}
	k.m[e.Subject] = h
	return h
}

// Refresh drops the keys the keyring holds (not the tombstones): the next
// open of each subject's payload reads the store again, and so sees a
// Forget made elsewhere.
func (k *Keyring) Refresh() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for s, h := range k.m {
		if !h.e.Forgotten {
			delete(k.m, s)
		}
	}
}

// entry returns the entry of s, creating a key if s has none and create
// is set (nil, nil if not).
func (k *Keyring) entry(ctx context.Context, s batpak.Subject, create bool) (*held, error) {
	if k.cache {
		k.mu.RLock()
		h := k.m[s]
		k.mu.RUnlock()
		if h != nil {
			return h, nil
		}
	}
	var e *Entry
	if create {
		// Create returns the subject's entry made durable first: this new
		// key, or the key or tombstone it already has (a write that failed
		// may have left a key in place without its directory entry
		// synced). Loading first would read the entry twice.
		e = &Entry{Subject: s}
		if _, err := rand.Read(e.Key[:]); err != nil {
			return nil, fmt.Errorf("shred: new key: %w", err)
		}
		var err error
		if e, err = k.ks.Create(ctx, e); err != nil {
			return nil, err
		}
	} else {
		var ok bool
		var err error
		if e, ok, err = k.ks.Load(ctx, s); err != nil || !ok {
			return nil, err
		}
	}
	if e.Subject != s {
		return nil, &batpak.KeyError{Subject: s, Reason: fmt.Sprintf("the key store's entry is of subject %s", e.Subject)}
	}
	return k.learn(e), nil
}

// Seal returns payload sealed with the key of the subject id in scope
// (created, durably, on the subject's first event) and meta with the
// subject added ([batpak.MetaSubject]). A forgotten subject is
// [batpak.ErrForgotten]; a sealed payload above maxPayload,
// [batpak.ErrPayloadTooLarge].
func (k *Keyring) Seal(ctx context.Context, scope, id string, kd kind.Kind, payload []byte, meta map[string]string, maxPayload int) ([]byte, map[string]string, error) {
	s := batpak.Subject{Scope: scope, ID: id}
	if err := s.Validate(); err != nil {
		return nil, nil, err
	}
	if len(payload)+Overhead > maxPayload {
		return nil, nil, fmt.Errorf("%w: %d bytes sealed, limit %d", batpak.ErrPayloadTooLarge, len(payload)+Overhead, maxPayload)
	}
	h, err := k.entry(ctx, s, true)
	if err != nil {
		return nil, nil, err
	}
	if h.e.Forgotten {
		return nil, nil, fmt.Errorf("%w: %s", batpak.ErrForgotten, s)
	}
	sealed, err := SealWith(h.aead, s, kd, payload)
	if err != nil {
		return nil, nil, err
	}
	meta = maps.Clone(meta)
	if meta == nil {
		meta = make(map[string]string, 1)
	}
	meta[batpak.MetaSubject] = id
	return sealed, meta, nil
}

// Open makes rec readable: a payload sealed for a subject is replaced by
// the plaintext, or, once the subject is forgotten, by nil with
// rec.Erased set. A record without a subject is left as it is. A missing
// entry or a payload that does not open is a [*batpak.KeyError].
func (k *Keyring) Open(ctx context.Context, rec *batpak.Record) error {
	if len(rec.Metadata) == 0 {
		return nil
	}
	id, ok := rec.Metadata[batpak.MetaSubject]
	if !ok {
		return nil
	}
	s := batpak.Subject{Scope: rec.Coordinate.Scope, ID: id}
	fail := func(reason string) error { return &batpak.KeyError{Subject: s, Sequence: rec.Sequence, Reason: reason} }
	h, err := k.entry(ctx, s, false)
	switch {
	case err != nil:
		var ke *batpak.KeyError
		if errors.As(err, &ke) {
			ke.Sequence = rec.Sequence
		}
		return err
	case h == nil:
		return fail("the key store has no entry for the subject: its key is lost")
	case h.e.Forgotten:
		rec.Payload, rec.Erased = nil, true
		return nil
	}
	plain, err := OpenWith(h.aead, s, rec.Kind, rec.Payload)
	if err != nil {
		return fail("the sealed payload does not open with the subject's key")
	}
	rec.Payload = plain
	return nil
}

// Forget destroys the key of s durably, in the store and here.
func (k *Keyring) Forget(ctx context.Context, s batpak.Subject) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if err := k.ks.Forget(ctx, s); err != nil {
		return err
	}
	if k.cache {
		k.mu.Lock()
		k.m[s] = hold(&Entry{Subject: s, Forgotten: true})
		k.mu.Unlock()
	}
	return nil
}
