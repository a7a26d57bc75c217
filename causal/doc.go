// Package causal follows the causation and correlation links between
// events: the causes of an event up to the root of its causal chain
// ([Ancestors]), its effects ([Descendants]), the whole correlation group it
// belongs to ([Correlation]), bounded walks in either direction with
// filters ([Walk]), the causal path between two events ([Path]), and the
// causal tree of a correlation group ([Trace]) rendered as a text tree, in
// graphviz DOT or as JSON.
//
// Every event may name the event that caused it (its causation id) and
// belongs to a correlation group (its correlation id, the id of the group's
// root event). The package reads these links through a small [Source]
// interface, backed by the store's id, causation and correlation indexes: it
// never scans the log, so the cost of a call is proportional to the events
// it visits. *eventstore.Store is a Source.
//
// The links are data written by callers, so the package does not trust
// them. A causation id may name an event that does not exist (it was never
// appended, or it was removed): [Ancestors] and [Walk] report it with a
// [*DanglingError] and [Trace] lists it in [Graph.Dangling]. A backend could
// hand back causation ids that form a cycle (the segment store cannot):
// walks report a [*CycleError] and [Trace] cuts the cycle and lists it in
// [Graph.Cycles]. Nothing loops.
package causal
