// Package batpak is the contract of batpak's event stores: the [Store]
// interface every backend implements, the events and records it keeps,
// the coordinates that name streams, expected versions, append and read
// options, and the errors all backends return.
//
// Start here; choose a backend for where the events live:
//
//   - package eventstore: embedded, append-only segment files in one
//     directory, synced before an append returns;
//   - package natsstore: NATS JetStream, for several machines;
//   - package memstore: in memory, for unit tests.
//
// Aggregates (package aggregate), projections (package projection) and
// the causal graph (package causal) take a [Store] and run on any of them.
package batpak
