// Package embedded runs a NATS server with JetStream inside the process,
// listening on loopback only: for examples, tests and local development of
// the natsstore backend. Production deployments run nats-server on their
// own machines and connect with natsstore.Open.
//
// The server runs with sync_always: it fsyncs every write before it
// acknowledges it, so an acknowledged append survives a crash of the
// machine as it does with the embedded batpak store's SyncEveryCommit.
// Options.RelaxedSync turns that off.
package embedded

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configures [Start].
type Options struct {
	// Dir holds JetStream's files. Required.
	Dir string
	// Name is the server name (default "batpak").
	Name string
	// Port is the client port on 127.0.0.1 (0: a free port).
	Port int
	// RelaxedSync turns sync_always off: the server then fsyncs every 2
	// minutes (JetStream's default sync_interval), and an acknowledged
	// append survives a crash of the process but not an OS crash or a
	// power loss, which lose up to the last 2 minutes of acknowledged
	// events. For tests and benchmarks that do not crash the machine.
	RelaxedSync bool
	// Logs turns the server's log (to stderr) on.
	Logs bool
}

// Start starts a JetStream-enabled server and waits until it accepts
// connections. Stop it with Shutdown; its URL is ClientURL().
func Start(o Options) (*server.Server, error) {
	if o.Dir == "" {
		return nil, errors.New("embedded: Options.Dir is required")
	}
	if o.Name == "" {
		o.Name = "batpak"
	}
	port := o.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: o.Name,
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   o.Dir,
		SyncAlways: !o.RelaxedSync,
		NoSigs:     true,
		NoLog:      !o.Logs,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	if o.Logs {
		ns.ConfigureLogger()
	}
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded: nats-server did not start within 30 s")
	}
	return ns, nil
}
