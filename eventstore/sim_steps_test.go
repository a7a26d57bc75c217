package eventstore_test

// The steps of a simulated lifetime (see sim_test.go): plain values,
// generated up front from a seed, so a failing lifetime can be replayed,
// shrunk by dropping steps, and printed as Go text a developer can paste
// into simReplay.

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

type simOp uint8

const (
	simAppend      simOp = iota + 1 // N events to Entity, atomically when N > 1
	simBatch                        // AppendBatch, one event per Entities item; Fail spoils one item
	simGroup                        // the appends in Do, concurrently (one group commit)
	simDelete                       // DeleteStream(Entity)
	simCompact                      // Compact, RetainIf dropping class Drop and DropEntity
	simReopen                       // Close and Open
	simOpenRO                       // OpenReadOnly alongside the writer, checked after every step
	simCloseRO                      // close the read-only store
	simCrash                        // run Do with a crash at file call At, then Power, then reopen
	simDamage                       // Close, apply Acts to the files, Open and judge
	simRaceCompact                  // compaction in a loop while two appenders write N events each
	simRaceRead                     // a read-only store reads in a loop while the writer appends, deletes and compacts
)

var simOpNames = [...]string{"", "simAppend", "simBatch", "simGroup", "simDelete", "simCompact", "simReopen",
	"simOpenRO", "simCloseRO", "simCrash", "simDamage", "simRaceCompact", "simRaceRead"}

func (o simOp) String() string { return simOpNames[o] }

// simExpect is an append's expected version, relative to the model's
// stream version when the step runs (so it stays meaningful when a shrink
// drops earlier steps).
type simExpect uint8

const (
	simAny      simExpect = iota
	simRight              // Exactly(the stream's version)
	simWrong              // Exactly(the stream's version + 7)
	simNoStream           // NoStream
)

var simExpectNames = [...]string{"simAny", "simRight", "simWrong", "simNoStream"}

// simPower is what follows a crash.
type simPower uint8

const (
	simProcessCrash         simPower = iota // the page cache survives
	simPowerLoss                            // faultfs.PowerLoss
	simPowerLossKeepEntries                 // faultfs.PowerLossKeepingEntries
)

var simPowerNames = [...]string{"simProcessCrash", "simPowerLoss", "simPowerLossKeepEntries"}

// simActKind is one kind of damage done to a closed store's files.
type simActKind uint8

const (
	simFlipFrame        simActKind = iota + 1 // flip a bit in any frame of any segment
	simFlipLastEvent                          // flip a bit in the last event frame of the last segment
	simFlipFooter                             // flip a bit in a sealed segment's footer
	simFlipCheckpoint                         // flip a bit in the checkpoint
	simDeleteCheckpoint                       // remove the checkpoint
	simTruncateLast                           // cut the last segment at a frame boundary or inside a frame
	simBlankLast                              // cut the last segment to 0 bytes
	simInterruptedSeal                        // cut the last sealed segment inside its footer, remove later segments and the checkpoint
	simTruncateSealed                         // cut a segment that is not the last inside a frame
)

var simActNames = [...]string{"", "simFlipFrame", "simFlipLastEvent", "simFlipFooter", "simFlipCheckpoint",
	"simDeleteCheckpoint", "simTruncateLast", "simBlankLast", "simInterruptedSeal", "simTruncateSealed"}

// simAct is one piece of damage; Pick and Byte choose where.
type simAct struct {
	Kind simActKind
	Pick uint32
	Byte uint32
}

// simStep is one step of a lifetime. Which fields matter depends on Op.
type simStep struct {
	Op         simOp
	Tag        string // names the step's events in payloads and messages
	Entity     string
	Entities   []string // simBatch: one event per item
	N          int
	Expect     simExpect
	Fail       int    // simBatch: item Fail (from 1) expects a wrong version
	Key        string // idempotency key
	Pad        int    // payload padding, to fill tiny segments
	Class      int    // payload class, 1..3
	Drop       int    // simCompact: class the retention policy drops (0: none)
	DropEntity string // simCompact, simRaceCompact, simRaceRead: stream the policy drops or the race deletes
	At         int    // simCrash: the file call that crashes, counted from the step's start
	Power      simPower
	Do         []simStep // simCrash: what runs until the crash; simGroup: the concurrent appends
	Acts       []simAct
}

// simConfig is a lifetime's store options.
type simConfig struct {
	SegBytes  int64
	CkptEvery int // WithCheckpointEvery: 0 writes checkpoints only on Close
	Prealloc  bool
}

// simGen draws a lifetime. It tracks only what it needs to make steps that
// mean something (entities that exist, keys to retry); the runner decides
// every outcome from its model when the step runs.
type simGen struct {
	r       *rand.Rand
	n       int // steps made, for tags
	streams []string
	deleted map[string]bool
	keyed   []simStep // keyed appends, to retry
	nextID  int
}

// simGenerate makes the options and steps of the lifetime of seed.
func simGenerate(seed uint64, steps int) (simConfig, []simStep) {
	g := &simGen{r: rand.New(rand.NewPCG(seed, 0x5eed)), deleted: map[string]bool{}}
	cfg := simConfig{SegBytes: 4 << 10, CkptEvery: []int{0, 1, 3, 8, 50}[g.r.IntN(5)], Prealloc: g.r.IntN(3) > 0}
	if g.r.IntN(4) == 0 {
		cfg.SegBytes = 16 << 10
	}
	var out []simStep
	if g.r.IntN(3) == 0 { // a new store has no active segment until its first append
		out = append(out, g.raceCompact())
	}
	for len(out) < steps {
		out = append(out, g.next()...)
	}
	return cfg, out[:steps]
}

func (g *simGen) tag() string { g.n++; return fmt.Sprintf("s%d", g.n) }

// entity returns an existing live stream most of the time, else a new one.
func (g *simGen) entity() string {
	live := slices.DeleteFunc(slices.Clone(g.streams), func(e string) bool { return g.deleted[e] })
	if len(live) > 0 && g.r.IntN(5) > 0 {
		return live[g.r.IntN(len(live))]
	}
	g.nextID++
	e := fmt.Sprintf("e%d", g.nextID)
	g.streams = append(g.streams, e)
	return e
}

// next makes one step, or a few that belong together: damage followed by
// concurrent compaction (a store whose last segment was sealed or blank
// has no active segment until the next append), a read-only store that
// sees a deletion and a compaction.
func (g *simGen) next() []simStep {
	switch p := g.r.IntN(100); {
	case p < 34:
		return []simStep{g.append()}
	case p < 43:
		return []simStep{g.batch()}
	case p < 46:
		return []simStep{g.group()}
	case p < 50:
		return []simStep{g.delete()}
	case p < 56:
		return []simStep{g.compact()}
	case p < 62:
		return []simStep{{Op: simReopen}}
	case p < 66:
		s := []simStep{{Op: simOpenRO}}
		if g.r.IntN(2) == 0 {
			s = append(s, g.delete(), g.compact())
		}
		return s
	case p < 68:
		return []simStep{{Op: simCloseRO}}
	case p < 78:
		return []simStep{g.crash()}
	case p < 88:
		d := g.damage()
		s := []simStep{d}
		switch k := d.Acts[0].Kind; {
		case (k == simBlankLast || k == simInterruptedSeal) && g.r.IntN(2) == 0:
			// The store opens without an active segment, or with one it
			// had sealed: append and compact at once, close and open twice.
			s = append(s, g.raceCompact())
		case k == simInterruptedSeal:
			s = append(s, simStep{Op: simReopen}, g.append(), simStep{Op: simReopen})
		case g.r.IntN(5) == 0:
			s = append(s, g.raceCompact())
		}
		return s
	case p < 91:
		return []simStep{g.raceCompact()}
	case p < 94:
		return []simStep{g.raceRead()}
	default:
		return []simStep{g.append()}
	}
}

func (g *simGen) append() simStep {
	if len(g.keyed) > 0 && g.r.IntN(10) == 0 { // an idempotent retry
		s := g.keyed[g.r.IntN(len(g.keyed))]
		s.Tag = g.tag()
		return s
	}
	s := simStep{Op: simAppend, Tag: g.tag(), Entity: g.entity(), N: 1 + g.r.IntN(3)*g.r.IntN(2),
		Pad: g.r.IntN(700), Class: 1 + g.r.IntN(3)}
	if len(g.deleted) > 0 && g.r.IntN(15) == 0 { // must fail with ErrStreamDeleted
		for _, e := range g.streams {
			if g.deleted[e] {
				s.Entity = e
				break
			}
		}
	}
	switch p := g.r.IntN(20); {
	case p < 3:
		s.Expect = simRight
	case p < 5:
		s.Expect = simWrong
	case p < 7:
		s.Expect = simNoStream
	}
	if g.r.IntN(4) == 0 {
		s.Key = "k" + s.Tag
		g.keyed = append(g.keyed, s)
	}
	return s
}

func (g *simGen) batch() simStep {
	s := simStep{Op: simBatch, Tag: g.tag(), Pad: g.r.IntN(400), Class: 1 + g.r.IntN(3)}
	for range 2 + g.r.IntN(3) {
		s.Entities = append(s.Entities, g.entity())
	}
	if g.r.IntN(4) == 0 {
		s.Fail = 1 + g.r.IntN(len(s.Entities))
	}
	if g.r.IntN(3) == 0 {
		s.Key = "k" + s.Tag
		g.keyed = append(g.keyed, s)
	}
	return s
}

// group makes concurrent appends to distinct new streams, some of which
// fail their expected version: a failed request must not take the others
// of its group commit down.
func (g *simGen) group() simStep {
	s := simStep{Op: simGroup, Tag: g.tag()}
	for i := range 2 + g.r.IntN(4) {
		g.nextID++
		e := fmt.Sprintf("e%d", g.nextID)
		g.streams = append(g.streams, e)
		a := simStep{Op: simAppend, Tag: fmt.Sprintf("%s.%d", s.Tag, i), Entity: e, N: 1 + g.r.IntN(2), Pad: g.r.IntN(300), Class: 1 + g.r.IntN(3)}
		if g.r.IntN(3) == 0 {
			a.Expect = simWrong
		}
		s.Do = append(s.Do, a)
	}
	return s
}

func (g *simGen) delete() simStep {
	e := g.entity()
	g.deleted[e] = true
	return simStep{Op: simDelete, Tag: g.tag(), Entity: e}
}

func (g *simGen) compact() simStep {
	s := simStep{Op: simCompact, Tag: g.tag()}
	if g.r.IntN(3) > 0 {
		s.Drop = 1 + g.r.IntN(3)
	}
	if g.r.IntN(4) == 0 {
		s.DropEntity = g.entity()
	}
	return s
}

func (g *simGen) crash() simStep {
	s := simStep{Op: simCrash, Tag: g.tag(), At: 1 + g.r.IntN(40), Power: simPower(g.r.IntN(3))}
	for range 1 + g.r.IntN(4) {
		switch p := g.r.IntN(10); {
		case p < 5:
			s.Do = append(s.Do, g.append())
		case p < 7:
			s.Do = append(s.Do, g.batch())
		case p < 8:
			s.Do = append(s.Do, g.compact())
		case p < 9:
			s.Do = append(s.Do, g.delete())
		default:
			s.Do = append(s.Do, simStep{Op: simReopen})
		}
	}
	return s
}

func (g *simGen) damage() simStep {
	act := func(k simActKind) simAct { return simAct{Kind: k, Pick: g.r.Uint32(), Byte: g.r.Uint32()} }
	var acts []simAct
	switch p := g.r.IntN(13); p {
	case 0:
		acts = []simAct{act(simFlipFrame)}
	case 1:
		acts = []simAct{act(simFlipFrame), act(simDeleteCheckpoint)}
	case 2:
		acts = []simAct{act(simFlipLastEvent)}
	case 3:
		acts = []simAct{act(simFlipLastEvent), act(simDeleteCheckpoint)}
	case 4:
		acts = []simAct{act(simFlipFooter)}
	case 5:
		acts = []simAct{act(simFlipCheckpoint)}
	case 6:
		acts = []simAct{act(simDeleteCheckpoint)}
	case 7:
		acts = []simAct{act(simTruncateLast), act(simDeleteCheckpoint)}
	case 8:
		acts = []simAct{act(simTruncateLast)}
	case 9:
		acts = []simAct{act(simBlankLast), act(simDeleteCheckpoint)}
	case 10, 11:
		acts = []simAct{act(simInterruptedSeal)}
	default:
		acts = []simAct{act(simTruncateSealed)}
	}
	return simStep{Op: simDamage, Tag: g.tag(), Acts: acts}
}

func (g *simGen) raceCompact() simStep {
	keep := g.entity()
	g.nextID++
	drop := fmt.Sprintf("e%d", g.nextID)
	g.streams = append(g.streams, drop)
	return simStep{Op: simRaceCompact, Tag: g.tag(), Entity: keep, DropEntity: drop, N: 6 + g.r.IntN(11), Pad: 150 + g.r.IntN(200)}
}

func (g *simGen) raceRead() simStep {
	s := simStep{Op: simRaceRead, Tag: g.tag(), Entity: g.entity(), N: 5 + g.r.IntN(15), Pad: 100 + g.r.IntN(200)}
	if e := g.entity(); e != s.Entity {
		s.DropEntity = e
		g.deleted[e] = true
	}
	return s
}
