package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/metrics"
	"github.com/batpak-go/batpak/projection"
)

// metricsServer serves Prometheus metrics of the store and the read models
// (-metrics ADDR): the store's counters, its write path's histograms, the
// projections' status, and the Go runtime's and the process's metrics.
type metricsServer struct {
	ln       net.Listener
	reg      *prometheus.Registry
	observer *metrics.StoreObserver // for eventstore.WithObserver
	srv      *http.Server
}

// listenMetrics listens on addr at once, so that a port in use fails the
// command before the scenario runs, and serves /metrics there.
func listenMetrics(addr string) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-metrics: %w", err)
	}
	m := &metricsServer{ln: ln, reg: prometheus.NewRegistry(), observer: metrics.NewStoreObserver()}
	m.reg.MustRegister(m.observer, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = m.srv.Serve(ln) }() // ends with ErrServerClosed at Shutdown
	return m, nil
}

// watchStore adds the store's counters and gauges, read at each scrape.
func (m *metricsServer) watchStore(s *eventstore.Store) {
	m.reg.MustRegister(metrics.NewStoreCollector(s))
}

// watchRunner adds the read models' status, read at each scrape.
func (m *metricsServer) watchRunner(r *projection.Runner) {
	m.reg.MustRegister(metrics.NewProjectionCollector(r))
}

// url is where the metrics are, with localhost for an address that listens
// on every interface.
func (m *metricsServer) url() string {
	host, port, err := net.SplitHostPort(m.ln.Addr().String())
	if ip := net.ParseIP(host); err == nil && ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/metrics"
}

// announce says where the metrics are.
func (m *metricsServer) announce(out io.Writer) {
	fmt.Fprintf(out, "\nmetrics of the store and the read models at %s; interrupt (Ctrl-C) to stop\n", m.url())
}

// shutdown stops serving.
func (m *metricsServer) shutdown() error {
	stop, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return m.srv.Shutdown(stop)
}
