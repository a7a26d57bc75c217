// Package aggregate runs commands against event-sourced aggregate roots.
//
// A root type folds its own events ([Root.Apply]); a [Command] looks at the
// current state and returns the events to emit. A [Repository] loads the
// state (snapshot plus the events after it), handles the command, runs the
// proposal through the policy gates, and appends the events with the
// expected version, retrying the whole load-handle-save cycle a bounded
// number of times when another writer got there first.
//
// Event types are registered once in an eventstore.Registry; the
// repository turns values into events and records back into values, so user
// code never switches on kinds.
package aggregate
