package eventstore_test

// Damage in the simulation (see sim_test.go): bit flips and cuts applied to
// a closed store's files; sim_verdict_test.go says what the store may do
// about them.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs/faultfs"
)

// simDamageDir applies acts to the closed store in dir and judges them.
func simDamageDir(dir string, acts []simAct) (*simVerdict, error) {
	segs, err := simLayout(dir)
	if err != nil {
		return nil, err
	}
	ckpt := filepath.Join(dir, eventstore.CheckpointFileName)
	var what []string
	live := func() []*simSeg {
		return slices.DeleteFunc(slices.Clone(segs), func(g *simSeg) bool { return g.removed })
	}
	for _, a := range acts {
		w, err := simApply(a, live(), ckpt)
		if err != nil {
			return nil, err
		}
		what = append(what, w)
	}
	v := simJudge(segs, ckpt)
	v.what = fmt.Sprint(what)
	return v, nil
}

func simFlip(path string, off int64, mask byte) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		return err
	}
	b[0] ^= mask
	_, err = f.WriteAt(b, off)
	return err
}

// simApply does one act and says what it did ("" if it found nothing to do).
func simApply(a simAct, segs []*simSeg, ckpt string) (string, error) {
	if len(segs) == 0 {
		return "", nil
	}
	last := segs[len(segs)-1]
	mask := byte(1) << (a.Byte % 8)
	flip := func(g *simSeg, lo, hi int64) (string, error) {
		off := lo + int64(a.Byte/8)%(hi-lo)
		g.touched = append(g.touched, [2]int64{off, off + 1})
		return fmt.Sprintf("flip segment %d at %d", g.id, off), simFlip(g.path, off, mask)
	}
	cut := func(g *simSeg, at int64) (string, error) {
		g.touched = append(g.touched, [2]int64{at, 1 << 62})
		return fmt.Sprintf("cut segment %d at %d", g.id, at), os.Truncate(g.path, at)
	}
	switch a.Kind {
	case simFlipFrame:
		var all []struct {
			g *simSeg
			f simFrame
		}
		for _, g := range segs {
			for _, f := range g.frames {
				all = append(all, struct {
					g *simSeg
					f simFrame
				}{g, f})
			}
		}
		if len(all) == 0 {
			return "", nil
		}
		p := all[int(a.Pick)%len(all)]
		return flip(p.g, p.f.off, p.f.end)
	case simFlipLastEvent:
		for i := len(last.frames) - 1; i >= 0; i-- {
			if f := last.frames[i]; !segment.IsSystemKind(f.kind) {
				return flip(last, f.off, f.end)
			}
		}
	case simFlipFooter:
		sealed := slices.DeleteFunc(slices.Clone(segs), func(g *simSeg) bool { return !g.sealed })
		if len(sealed) > 0 {
			g := sealed[int(a.Pick)%len(sealed)]
			g.footerBroken = true
			return flip(g, g.footerOff, g.size)
		}
	case simFlipCheckpoint:
		if fi, err := os.Stat(ckpt); err == nil && fi.Size() > 0 {
			off := int64(a.Pick) % fi.Size()
			return fmt.Sprintf("flip checkpoint at %d", off), simFlip(ckpt, off, mask)
		}
	case simDeleteCheckpoint:
		if err := os.Remove(ckpt); err == nil {
			return "delete checkpoint", nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
	case simTruncateLast:
		if len(last.frames) == 0 {
			return "", nil
		}
		f := last.frames[int(a.Pick)%len(last.frames)]
		at := f.off // at a frame boundary
		if a.Byte%2 == 1 {
			at += 1 + int64(a.Byte/2)%(f.end-f.off-1) // inside the frame
		}
		return cut(last, at)
	case simBlankLast:
		return cut(last, 0)
	case simInterruptedSeal:
		// Only the writer's seal can be interrupted: a compacted segment
		// (flagged in its header, or with a hole frame) was renamed into
		// place whole.
		for i := len(segs) - 1; i >= 0; i-- {
			g := segs[i]
			if !g.sealed {
				continue
			}
			if simWrittenWhole(g) {
				return "", nil
			}
			w, err := cut(g, g.footerOff+1+int64(a.Byte)%(g.size-g.footerOff-1))
			for _, later := range segs[i+1:] {
				later.removed = true
				if err == nil {
					err = os.Remove(later.path)
				}
			}
			if rerr := os.Remove(ckpt); err == nil && rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = rerr
			}
			return w + fmt.Sprintf(", remove %d later segments and the checkpoint", len(segs)-1-i), err
		}
	case simTruncateSealed:
		if len(segs) < 2 {
			return "", nil
		}
		g := segs[int(a.Pick)%(len(segs)-1)]
		if len(g.frames) == 0 {
			return "", nil
		}
		f := g.frames[int(a.Byte)%len(g.frames)]
		return cut(g, f.off+1+int64(a.Byte/8)%(f.end-f.off-1))
	}
	return "", nil
}

// damage closes the store, damages its files, reopens it and judges. The
// store must open and recover from crash-shaped damage, and the lifetime
// goes on from there. Genuine damage must be refused or found on read;
// then (or if it went unnoticed) the directory and the model are put back
// as they were before the damage, and the lifetime goes on from there.
func (r *simRunner) damage(st *simStep) error {
	if err := r.closeRO(); err != nil {
		return err
	}
	err := r.s.Close()
	r.s = nil
	if err != nil {
		return simFail("close-error", "Close before damage: %v", err)
	}
	saved := r.dir + ".saved"
	defer func() { _ = os.RemoveAll(saved) }()
	sweepCopyDir(r.t, r.dir, saved)
	model := r.m.clone()
	v, err := simDamageDir(r.dir, st.Acts)
	if err != nil {
		return fmt.Errorf("harness: damage: %w", err)
	}
	r.stats.damages++
	r.fsys = faultfs.New(nil) // the files changed behind the old FS's back
	if err := r.open(); err != nil {
		var ce *segment.CorruptError
		if !errors.Is(err, batpak.ErrCorrupt) || !errors.As(err, &ce) || !v.refuse || !v.segs[ce.Segment] {
			return simFail("open-error", "Open after %s (refusal allowed: %t): %v", v.what, v.refuse, err)
		}
		r.stats.refusals++
		return r.undamage(saved, model)
	}
	for seq := range v.corrupt {
		r.m.corrupt[seq] = true
	}
	err = r.checkAll(simAllow{lossable: v.lossable, flexDel: v.flexDel})
	var end *simEnd
	switch {
	case errors.As(err, &end):
		r.stats.detected++
		return r.undamage(saved, model)
	case err != nil:
		var f *simFailure
		if errors.As(err, &f) {
			f.Detail += fmt.Sprintf(" [after %s]", v.what)
		}
		return err
	case v.refuse:
		r.stats.unnoticed++ // in bytes no read touched: a marker, a footer
		return r.undamage(saved, model)
	}
	return nil
}

// undamage puts back the directory and the model saved before damage.
func (r *simRunner) undamage(saved string, model *simModel) error {
	r.abandon()
	des, err := os.ReadDir(r.dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		if de.Name() != eventstore.LockFileName {
			if err := os.RemoveAll(filepath.Join(r.dir, de.Name())); err != nil {
				return err
			}
		}
	}
	sweepCopyDir(r.t, saved, r.dir)
	r.m = model
	r.fsys = faultfs.New(nil)
	if err := r.open(); err != nil {
		return simFail("open-error", "Open of the store as it was before the damage: %v", err)
	}
	return r.check(simAllow{})
}
