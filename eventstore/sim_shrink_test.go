package eventstore_test

// Shrinking a failing lifetime (see sim_test.go) by delta debugging: drop
// chunks of steps, then single steps, then the requests inside crash
// steps, for as long as the rest still fails the same way (the same
// failure kind), and print what is left as Go text.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// simShrinker reruns candidate step lists of one lifetime.
type simShrinker struct {
	t      *testing.T
	base   string
	seed   uint64
	cfg    simConfig
	kind   string // the failure kind to keep
	budget int    // runs left
	runs   int
	last   error // the failure of the last list that failed
}

// simKind is the kind of a failure: its simFailure kind, or "harness".
func simFailureKind(err error) string {
	var f *simFailure
	if errors.As(err, &f) {
		return f.Kind
	}
	return "harness"
}

// simRacy reports whether a lifetime's outcome depends on scheduling:
// steps that run goroutines, and crash steps while periodic checkpoints
// are written in the background (their file calls count towards the crash
// point). Such lists are tried more than once.
func simRacy(cfg simConfig, steps []simStep) bool {
	return slices.ContainsFunc(steps, func(s simStep) bool {
		return s.Op == simGroup || s.Op == simRaceCompact || s.Op == simRaceRead || s.Op == simCrash && cfg.CkptEvery > 0
	})
}

// fails runs steps (up to 3 times if they are racy) and reports whether
// they fail with the kind being shrunk; it returns the failing prefix.
func (sh *simShrinker) fails(steps []simStep) ([]simStep, bool) {
	tries := 1
	if simRacy(sh.cfg, steps) {
		tries = 3
	}
	for range tries {
		if sh.budget <= 0 {
			return nil, false
		}
		sh.budget--
		sh.runs++
		var stats simStats
		at, err := simRun(sh.t, sh.base, sh.seed, sh.cfg, steps, &stats)
		if err != nil && simFailureKind(err) == sh.kind {
			sh.last = err
			return steps[:min(at+1, len(steps))], true
		}
	}
	return nil, false
}

// shrink returns a shorter list of steps that still fails, or steps if
// they do not fail again (a race that did not recur).
func (sh *simShrinker) shrink(steps []simStep) []simStep {
	if got, ok := sh.fails(steps); ok {
		steps = got
	} else {
		return steps
	}
	// Delta debugging over complements of n chunks.
	for n := 2; len(steps) >= 2; {
		size := (len(steps) + n - 1) / n
		reduced := false
		for lo := 0; lo < len(steps); lo += size {
			cand := slices.Concat(steps[:lo], steps[min(lo+size, len(steps)):])
			if got, ok := sh.fails(cand); ok {
				steps, reduced = got, true
				n = max(n-1, 2)
				break
			}
		}
		if sh.budget <= 0 {
			return steps
		}
		if !reduced {
			if n >= len(steps) {
				break
			}
			n = min(2*n, len(steps))
		}
	}
	// Then each step alone, and the requests inside crash and group steps.
	for i := 0; i < len(steps) && sh.budget > 0; i++ {
		if got, ok := sh.fails(slices.Delete(slices.Clone(steps), i, i+1)); ok {
			steps = got
			i--
			continue
		}
		for j := 0; i < len(steps) && j < len(steps[i].Do) && len(steps[i].Do) > 1 && sh.budget > 0; j++ {
			cand := slices.Clone(steps)
			cand[i].Do = slices.Delete(slices.Clone(steps[i].Do), j, j+1)
			if got, ok := sh.fails(cand); ok {
				steps = got
				j--
			}
		}
	}
	return steps
}

// simGoText prints a lifetime as a call a developer can paste into a test.
func simGoText(cfg simConfig, steps []simStep) string {
	var b strings.Builder
	fmt.Fprintf(&b, "simReplay(t, simConfig{SegBytes: %d, CkptEvery: %d, Prealloc: %t}, []simStep{\n", cfg.SegBytes, cfg.CkptEvery, cfg.Prealloc)
	for _, s := range steps {
		b.WriteString("\t" + s.GoString() + ",\n")
	}
	b.WriteString("})")
	return b.String()
}

// GoString prints the step as a composite literal of its non-zero fields.
func (s simStep) GoString() string {
	f := []string{"Op: " + s.Op.String()}
	add := func(cond bool, format string, args ...any) {
		if cond {
			f = append(f, fmt.Sprintf(format, args...))
		}
	}
	add(s.Tag != "", "Tag: %q", s.Tag)
	add(s.Entity != "", "Entity: %q", s.Entity)
	add(len(s.Entities) > 0, "Entities: %#v", s.Entities)
	add(s.N != 0, "N: %d", s.N)
	add(s.Expect != simAny, "Expect: %s", simExpectNames[s.Expect])
	add(s.Fail != 0, "Fail: %d", s.Fail)
	add(s.Key != "", "Key: %q", s.Key)
	add(s.Pad != 0, "Pad: %d", s.Pad)
	add(s.Class != 0, "Class: %d", s.Class)
	add(s.Drop != 0, "Drop: %d", s.Drop)
	add(s.DropEntity != "", "DropEntity: %q", s.DropEntity)
	add(s.At != 0, "At: %d", s.At)
	add(s.Power != simProcessCrash, "Power: %s", simPowerNames[s.Power])
	if len(s.Do) > 0 {
		sub := make([]string, len(s.Do))
		for i, d := range s.Do {
			sub[i] = d.GoString()
		}
		f = append(f, "Do: []simStep{"+strings.Join(sub, ", ")+"}")
	}
	if len(s.Acts) > 0 {
		sub := make([]string, len(s.Acts))
		for i, a := range s.Acts {
			sub[i] = a.GoString()
		}
		f = append(f, "Acts: []simAct{"+strings.Join(sub, ", ")+"}")
	}
	return "{" + strings.Join(f, ", ") + "}"
}

// GoString prints the act as a composite literal of its non-zero fields.
func (a simAct) GoString() string {
	s := "{Kind: " + simActNames[a.Kind]
	if a.Pick != 0 {
		s += fmt.Sprintf(", Pick: %d", a.Pick)
	}
	if a.Byte != 0 {
		s += fmt.Sprintf(", Byte: %d", a.Byte)
	}
	return s + "}"
}
