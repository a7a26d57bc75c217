// Package explorer is a read-only web explorer of an event store, as an
// [http.Handler]: the store's health, its streams, a stream's events with
// decoded payloads, one event's full record with the check of its place in
// the hash chain, the causal graph of an event drawn in the page, a live
// tail, and the application's projections with their lag.
//
//	e := explorer.New(store, explorer.WithRegistry(reg))
//	http.Handle("/explorer/", http.StripPrefix("/explorer", e)) // with WithBasePath("/explorer")
//
// `batpak serve DIR` runs it on a store directory. docs/explorer.md lists
// the addresses: every page is also JSON under /api/.
//
// # Guarantees
//
//   - Read-only. The explorer holds a [Store], whose methods are all reads,
//     and answers GET and HEAD only (405 otherwise): no address can write,
//     repair, compact or delete anything.
//   - Bounded work per request. Lists page by cursor (a stream by version,
//     the log by sequence, the stream list by position) with at most 500
//     items; no request reads a whole stream or the whole log. The stream
//     list examines a bounded number of streams per page, the causal graph
//     is drawn for groups of at most 1,000 events, and the check of a whole
//     stream's chain is run only when asked for, one at a time.
//   - Every input is checked (entity names and scopes as the store checks
//     coordinates, ids as UUIDs, cursors and limits as bounded numbers);
//     a bad one is a 400 naming the parameter.
//   - Everything stored is shown as text: pages are html/template, the SVG
//     is XML-escaped, the live tail inserts text nodes only, and every
//     response carries a content security policy that allows no inline
//     script and nothing from another origin. Nothing is fetched from the
//     internet: styles and script are embedded in the binary.
//   - With [WithToken] every request must present the token.
//
// # Caveats
//
//   - The explorer shows what the [Store] it holds shows. A read-only view
//     of a store another process writes sees the events that were durable
//     when it was opened: swap in a fresh view ([Explorer.Swap]) to see more,
//     as `batpak serve` does when the files change.
//   - The stream list is in creation order; filtering it by scope reads one
//     event per stream, so a page may stop early (with a cursor to go on)
//     rather than read too much.
//   - Kind names come from a registry or a function the application gives;
//     without them kinds show as numbers.
//   - Binding, TLS and who may connect are the server's business: the
//     explorer serves whoever reaches it (and has the token, if one is set).
package explorer
