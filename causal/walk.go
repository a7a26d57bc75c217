package causal

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

// Option configures [Walk] and [Descendants]: [Down] or [Up], [MaxDepth],
// [Kinds] and [MaxNodes].
type Option func(*config)

type config struct {
	up       bool // toward the causes; false: toward the effects
	maxDepth int  // < 0: unlimited
	maxNodes int  // 0: unlimited
	kinds    []kind.Kind
}

func newConfig(opts []Option) config {
	c := config{maxDepth: -1}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

func (c *config) wants(k kind.Kind) bool { return len(c.kinds) == 0 || slices.Contains(c.kinds, k) }

// Down walks from causes to their effects (the default).
func Down() Option { return func(c *config) { c.up = false } }

// Up walks from effects to their causes, towards the root.
func Up() Option { return func(c *config) { c.up = true } }

// MaxDepth stops a walk n links away from its start: MaxDepth(1) visits
// the direct effects (or the direct cause), MaxDepth(0) only the start.
// A negative n means no limit, the default.
func MaxDepth(n int) Option { return func(c *config) { c.maxDepth = n } }

// Kinds makes a walk yield only events of the given kinds. The walk still
// goes through events of other kinds to reach their causes or effects.
// Without kinds (the default) every event is yielded.
func Kinds(ks ...kind.Kind) Option {
	return func(c *config) { c.kinds = slices.Clone(ks) }
}

// MaxNodes guards a walk against unexpectedly large graphs: a walk that
// would read more than n events, the start included and whether yielded
// or filtered out, ends with an error matching [ErrTooManyNodes]. n <= 0
// means no limit, the default.
func MaxNodes(n int) Option { return func(c *config) { c.maxNodes = max(n, 0) } }

// Step is one event reached by [Walk].
type Step struct {
	Record batpak.Record
	// Depth is the number of causation links between the start and the
	// event: 0 for the start itself.
	Depth int
	// From is the event the walk came from: the cause when walking [Down],
	// the effect when walking [Up]; uuid.Nil for the start.
	From uuid.UUID
}

// Walk yields the event id and then the events reachable from it along
// causation links: its effects, their effects and so on when walking
// [Down] (the default), in breadth-first order with each event's effects in
// commit order; its cause, the cause's cause and so on up to the root when
// walking [Up]. Options bound the depth ([MaxDepth]) and the number of
// events read ([MaxNodes]) and filter the yielded events by kind ([Kinds]).
//
// Walk reads events through the causation index (CausedBy) going down and
// by id going up. If it yields an error, that is its last value: the
// source's errors (an unknown id matches [eventstore.ErrNotFound]), a
// [*DanglingError] going up to a cause that does not exist, a [*CycleError]
// for causation links that lead back to an event already visited, or
// [ErrTooManyNodes].
func Walk(ctx context.Context, src Source, id uuid.UUID, opts ...Option) iter.Seq2[Step, error] {
	cfg := newConfig(opts)
	return func(yield func(Step, error) bool) {
		start, err := src.Get(ctx, id)
		if err != nil {
			yield(Step{}, err)
			return
		}
		if cfg.up {
			walkUp(ctx, src, &cfg, start, yield)
		} else {
			walkDown(ctx, src, &cfg, start, yield)
		}
	}
}

func tooMany(n int) error { return fmt.Errorf("%w (limit %d)", ErrTooManyNodes, n) }

func walkUp(ctx context.Context, src Source, cfg *config, start batpak.Record, yield func(Step, error) bool) {
	chain := []batpak.Record{start} // chain[i+1] is the cause of chain[i]
	index := map[uuid.UUID]int{start.ID: 0}
	if cfg.wants(start.Kind) && !yield(Step{Record: start}, nil) {
		return
	}
	for depth := 1; cfg.maxDepth < 0 || depth <= cfg.maxDepth; depth++ {
		cur := chain[len(chain)-1]
		cause := cur.CausationID
		if cause == uuid.Nil {
			return
		}
		if i, ok := index[cause]; ok {
			yield(Step{}, upCycle(chain[i:]))
			return
		}
		if cfg.maxNodes > 0 && len(chain) >= cfg.maxNodes {
			yield(Step{}, tooMany(cfg.maxNodes))
			return
		}
		rec, err := src.Get(ctx, cause)
		if notFound(err) {
			yield(Step{}, &DanglingError{Dangling{Missing: cause, Effect: cur.ID, Sequence: cur.Sequence}})
			return
		}
		if err != nil {
			yield(Step{}, err)
			return
		}
		index[rec.ID] = len(chain)
		chain = append(chain, rec)
		if cfg.wants(rec.Kind) && !yield(Step{Record: rec, Depth: depth, From: cur.ID}, nil) {
			return
		}
	}
}

// upCycle returns the cycle error for chain, in which each event is the
// effect of the next and the last one's cause is the first.
func upCycle(chain []batpak.Record) *CycleError {
	e := &CycleError{}
	for i := len(chain) - 1; i >= 0; i-- { // causes first
		e.IDs = append(e.IDs, chain[i].ID)
		e.Sequences = append(e.Sequences, chain[i].Sequence)
	}
	e.rotate()
	return e
}

// rotate starts the cycle at its lowest sequence, so the same cycle is
// always reported the same way.
func (e *CycleError) rotate() {
	if len(e.Sequences) == 0 {
		return
	}
	i := slices.Index(e.Sequences, slices.Min(e.Sequences))
	e.Sequences = append(e.Sequences[i:], e.Sequences[:i]...)
	e.IDs = append(e.IDs[i:], e.IDs[:i]...)
}

func walkDown(ctx context.Context, src Source, cfg *config, start batpak.Record, yield func(Step, error) bool) {
	type visit struct {
		seq    uint64
		parent uuid.UUID
	}
	type pending struct {
		id    uuid.UUID
		depth int
	}
	visited := map[uuid.UUID]visit{start.ID: {seq: start.Sequence}}
	if cfg.wants(start.Kind) && !yield(Step{Record: start}, nil) {
		return
	}
	queue := []pending{{start.ID, 0}}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if cfg.maxDepth >= 0 && p.depth >= cfg.maxDepth {
			continue
		}
		for _, seq := range src.CausedBy(p.id) {
			if cfg.maxNodes > 0 && len(visited) >= cfg.maxNodes {
				yield(Step{}, tooMany(cfg.maxNodes))
				return
			}
			rec, err := src.GetSequence(ctx, seq)
			if err != nil {
				yield(Step{}, err)
				return
			}
			if _, seen := visited[rec.ID]; seen {
				// Going down a tree, an event is reached once. Reaching it
				// again through a chain of its own effects is a cycle;
				// reaching it from elsewhere is an index that disagrees
				// with the records, and the event was already yielded.
				e := &CycleError{}
				for at := p.id; at != uuid.Nil; at = visited[at].parent {
					e.IDs = append(e.IDs, at)
					e.Sequences = append(e.Sequences, visited[at].seq)
					if at == rec.ID {
						slices.Reverse(e.IDs)
						slices.Reverse(e.Sequences)
						e.rotate()
						yield(Step{}, e)
						return
					}
					if len(e.IDs) > len(visited) { // parent links are a tree; never true
						break
					}
				}
				continue
			}
			visited[rec.ID] = visit{seq: rec.Sequence, parent: p.id}
			if cfg.wants(rec.Kind) && !yield(Step{Record: rec, Depth: p.depth + 1, From: p.id}, nil) {
				return
			}
			queue = append(queue, pending{rec.ID, p.depth + 1})
		}
	}
}

// Ancestors returns the causes of event id, nearest first, up to the root
// of its causal chain (an event without a causation id). It reads events by
// id, one per link.
//
// If the chain reaches a causation id that names no event, Ancestors
// returns the causes found so far and a [*DanglingError] with the missing
// id; for causation links that form a cycle, the causes up to where the
// chain repeats and a [*CycleError]. An unknown id is an error matching
// [eventstore.ErrNotFound].
func Ancestors(ctx context.Context, src Source, id uuid.UUID) ([]batpak.Record, error) {
	var out []batpak.Record
	for step, err := range Walk(ctx, src, id, Up()) {
		if err != nil {
			return out, err
		}
		if step.Depth > 0 {
			out = append(out, step.Record)
		}
	}
	return out, nil
}

// Descendants returns the effects of event id, their effects and so on, in
// commit order, which is also a causal order: every event comes after its
// cause. It takes the options of [Walk] and always walks [Down]. On an error
// it returns the events found so far with it.
func Descendants(ctx context.Context, src Source, id uuid.UUID, opts ...Option) ([]batpak.Record, error) {
	var out []batpak.Record
	var err error
	for step, e := range Walk(ctx, src, id, slices.Concat(opts, []Option{Down()})...) {
		if e != nil {
			err = e
			break
		}
		if step.Depth > 0 {
			out = append(out, step.Record)
		}
	}
	slices.SortFunc(out, bySequence)
	return out, err
}

func bySequence(a, b batpak.Record) int {
	switch {
	case a.Sequence < b.Sequence:
		return -1
	case a.Sequence > b.Sequence:
		return 1
	}
	return 0
}

// Correlation returns every event of the correlation group of event id, in
// commit order: the group's root (the event whose id is the group's
// correlation id), if it exists, and every event carrying that correlation
// id, id included. It reads the group through the correlation index.
func Correlation(ctx context.Context, src Source, id uuid.UUID) ([]batpak.Record, error) {
	_, _, members, err := group(ctx, src, id)
	return members, err
}

// group returns event id, its correlation id and the members of its
// correlation group in commit order.
func group(ctx context.Context, src Source, id uuid.UUID) (focus batpak.Record, corr uuid.UUID, members []batpak.Record, err error) {
	focus, err = src.Get(ctx, id)
	if err != nil {
		return focus, uuid.Nil, nil, err
	}
	corr = focus.CorrelationID
	if corr == uuid.Nil { // not correlated with anything
		return focus, corr, []batpak.Record{focus}, nil
	}
	seen := make(map[uint64]bool)
	add := func(r batpak.Record) {
		if !seen[r.Sequence] && r.CorrelationID == corr {
			seen[r.Sequence] = true
			members = append(members, r)
		}
	}
	if corr == focus.ID {
		add(focus)
	} else {
		root, err := src.Get(ctx, corr)
		switch {
		case err == nil:
			add(root)
		case !notFound(err): // a root that does not exist is no member
			return focus, corr, nil, err
		}
	}
	for _, seq := range src.Correlated(corr) {
		if seen[seq] {
			continue
		}
		rec, err := src.GetSequence(ctx, seq)
		if err != nil {
			return focus, corr, nil, err
		}
		add(rec)
	}
	add(focus) // in case the index missed it
	slices.SortFunc(members, bySequence)
	return focus, corr, members, nil
}

// Path returns the causal path between events a and b: a, the events
// between them and b, each the cause of the next when a causes b directly or
// indirectly, each the effect of the next when b causes a. It is [a] when a
// and b are the same event, and an error matching [ErrNoPath] when neither
// causes the other (siblings, cousins or unrelated events). Path only reads
// the causes of a and of b, by id.
func Path(ctx context.Context, src Source, a, b uuid.UUID) ([]batpak.Record, error) {
	ra, err := src.Get(ctx, a)
	if err != nil {
		return nil, err
	}
	if a == b {
		return []batpak.Record{ra}, nil
	}
	if _, err := src.Get(ctx, b); err != nil {
		return nil, err
	}
	// a causes b: a is on b's chain of causes.
	chain, found, err := chainUntil(ctx, src, b, a)
	if err != nil {
		return nil, err
	}
	if found {
		slices.Reverse(chain)
		return chain, nil
	}
	// b causes a.
	chain, found, err = chainUntil(ctx, src, a, b)
	if err != nil {
		return nil, err
	}
	if found {
		return chain, nil
	}
	return nil, fmt.Errorf("%w between %s and %s", ErrNoPath, a, b)
}

// chainUntil returns from's chain of causes, from included, up to target
// if it is on it. A dangling or cyclic chain just ends.
func chainUntil(ctx context.Context, src Source, from, target uuid.UUID) ([]batpak.Record, bool, error) {
	var chain []batpak.Record
	for step, err := range Walk(ctx, src, from, Up()) {
		if err != nil {
			if errors.Is(err, ErrDangling) || errors.Is(err, ErrCycle) {
				break
			}
			return nil, false, err
		}
		chain = append(chain, step.Record)
		if step.Record.ID == target {
			return chain, true, nil
		}
	}
	return nil, false, nil
}
