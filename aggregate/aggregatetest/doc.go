// Package aggregatetest tests aggregates and projections given events,
// each scenario on a fresh in-memory store ([memstore]).
//
// For an aggregate: given these events on its stream, when this command,
// then these events, or this denial, or this error.
//
//	spec := aggregatetest.NewGated(Registry(), Gates(), Policy{DailyLimit: 1000})
//	spec.Given(AccountOpened{Owner: "a"}, Deposited{Amount: 100}).
//		When(Withdraw{Amount: 30, Day: "2026-11-26"}).
//		Then(t, Withdrawn{Amount: 30, Day: "2026-11-26"})
//	spec.Given(AccountOpened{Owner: "a"}).
//		When(Withdraw{Amount: 30, Day: "2026-11-26"}).
//		ThenDenied(t, "no-overdraft", "OVERDRAFT")
//
// For a projection: given these events, on these streams and in this
// order, the read model a projection builds from them.
//
//	view := newBalancesView()
//	aggregatetest.GivenEvents(Registry(),
//		aggregatetest.On(alice, AccountOpened{Owner: "a"}, Deposited{Amount: 100}),
//		aggregatetest.On(bob, AccountOpened{Owner: "b"}),
//	).Project(t, view)
//	aggregatetest.ThenModel(t, view.Balances(), map[string]int64{"alice": 100, "bob": 0})
//
// # Guarantees
//
//   - Every scenario runs the real repository ([aggregate.NewRepository] or
//     [aggregate.NewGatedRepository]) on its own new store: scenarios
//     share nothing and may run in parallel.
//   - The events a Then compares are read back from the store and decoded
//     through the registry, so they are what a reader will see; the
//     expected events go through the same encoding, so a value and a
//     pointer to it compare equal, as the repository stores both alike.
//   - A Then also checks that the state the command returned equals the
//     state a reload of the stream gives, which finds events that lose a
//     field on their way through msgpack.
//   - ThenDenied and ThenError also check that nothing was appended.
//   - A projection sees the given events as the projection runner delivers
//     them: the records of its region, in global order, with their
//     coordinates, sequences and metadata.
//
// # Caveats
//
//   - The store is in memory: these are tests of the domain (commands,
//     gates, folds, read models), not of durability or of a backend.
//   - Events are compared with reflect.DeepEqual after a msgpack round
//     trip: a nil and an empty slice or map compare as msgpack returns
//     them.
//   - A projection is fed by the helper, not by a projection.Runner:
//     checkpoints, leases and the runner's catch-up are not exercised.
package aggregatetest
