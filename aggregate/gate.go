package aggregate

import "github.com/batpak-go/batpak/policy"

// CommandGate returns a gate that judges the proposals of commands of type
// Cmd (or *Cmd) and passes every other proposal. check receives the
// command already typed, so the gate needs no type assertion, and a
// command type added to the repository later passes the gate instead of
// making it panic. Its type arguments infer from check:
//
//	aggregate.CommandGate("cap", func(c Cap, add Add, p aggregate.Proposal[Tally]) *policy.Denial { ... })
//
// A gate that judges every proposal, say by its events, is a plain
// [policy.GateFunc] over Proposal[S].
func CommandGate[Cmd, S, C any](name string, check func(pc C, cmd Cmd, p Proposal[S]) *policy.Denial) policy.Gate[C, Proposal[S]] {
	return policy.GateFunc(name, func(pc C, p Proposal[S]) *policy.Denial {
		switch cmd := p.Command.(type) {
		case Cmd:
			return check(pc, cmd, p)
		case *Cmd:
			if cmd != nil {
				return check(pc, *cmd, p)
			}
		}
		return nil
	})
}
