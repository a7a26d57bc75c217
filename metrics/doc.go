// Package metrics exports the embedded store's and the projections'
// figures to Prometheus. It is a package of its own so that nothing else
// in batpak depends on a metrics library: the store counts in
// [eventstore.Stats] and reports timings to an [eventstore.Observer], the
// projection runner reports [projection.Status], and this package turns
// them into metrics.
//
//	obs := metrics.NewStoreObserver()                        // histograms: append, commit, sync
//	store, err := eventstore.Open(dir, eventstore.WithObserver(obs))
//	...
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(obs, metrics.NewStoreCollector(store))  // counters and gauges, read at each scrape
//	reg.MustRegister(metrics.NewProjectionCollector(runner)) // per projection, read at each scrape
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// Every metric is listed, with its type, labels and meaning, in
// docs/observability.md.
//
// # Guarantees
//
//   - The collectors read [eventstore.Store.Stats] and
//     [projection.Runner.Status] when Prometheus scrapes, and at no other
//     time: between scrapes they cost nothing.
//   - The observer's methods do not allocate: an observation is a few
//     atomic adds on the store's write path.
//   - Metric names follow Prometheus' conventions (base units, _total for
//     counters) and pass promlint.
//
// # Caveats
//
//   - Counters count since the store was opened or the runner made; they
//     start again from 0 after a restart, as Prometheus expects of a
//     counter.
//   - The histograms exist only with an observer given to
//     [eventstore.Open]: a store opened without one has its counters and
//     gauges only.
//   - Two stores or runners registered with one registry need a label that
//     tells them apart ([WithConstLabels]).
package metrics
