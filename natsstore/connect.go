package natsstore

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// connectOptions returns the nats options Open dials with. Clear text is
// refused for a host other than this machine: a nats:// URL to a remote
// host gets nats.Secure (the client then demands TLS before it sends
// CONNECT, so credentials never travel in clear), a ws:// one is an error.
func connectOptions(urls string, c *config) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name("batpak natsstore"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.RetryOnFailedConnect(false),
	}
	needTLS := false
	for raw := range strings.SplitSeq(urls, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		if !strings.Contains(raw, "://") {
			raw = "nats://" + raw
		}
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("natsstore: server URL %q: %w", raw, err)
		}
		scheme := strings.ToLower(u.Scheme)
		switch scheme {
		case "tls", "wss":
			continue
		case "nats", "ws":
		default:
			return nil, fmt.Errorf("natsstore: server URL %q: unknown scheme %q", raw, u.Scheme)
		}
		if isLoopback(u.Hostname()) || c.insecure {
			continue
		}
		if scheme == "ws" && c.tlsConfig == nil {
			return nil, fmt.Errorf("%w: %s (use wss://)", ErrInsecureURL, u.Redacted())
		}
		needTLS = true
	}
	switch {
	case c.tlsConfig != nil:
		opts = append(opts, nats.Secure(c.tlsConfig))
	case needTLS:
		opts = append(opts, nats.Secure(&tls.Config{MinVersion: tls.VersionTLS12}))
	}
	if c.credentials != "" {
		opts = append(opts, nats.UserCredentials(c.credentials))
	}
	if c.nkeySeed != "" {
		o, err := nats.NkeyOptionFromSeed(c.nkeySeed)
		if err != nil {
			return nil, fmt.Errorf("natsstore: nkey seed: %w", err)
		}
		opts = append(opts, o)
	}
	return append(opts, c.natsOpts...), nil
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
