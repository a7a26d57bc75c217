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
//
// The rule holds for every server the client may reach, not only those
// in urls: nats.go adds the addresses a cluster advertises (INFO
// connect_urls) to its pool and reconnects to them with the URL's
// credentials. A connection with TLS demands it from each of them too; a
// clear-text connection (only loopback URLs) ignores them
// (nats.IgnoreDiscoveredServers), unless WithInsecure allows clear text
// anywhere.
func connectOptions(urls string, c *config) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name("batpak natsstore"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.RetryOnFailedConnect(false),
	}
	needTLS, tlsURL := false, false
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
			tlsURL = true // nats.go then demands TLS from every server
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
	case !tlsURL && !c.insecure && !userSecure(c.natsOpts):
		// Clear text, allowed because every URL is this machine: never to
		// a server the cluster advertises.
		opts = append(opts, nats.IgnoreDiscoveredServers())
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

// userSecure reports whether the caller's nats options turn TLS on
// (nats.Secure, nats.RootCAs, nats.ClientCert, ...).
func userSecure(opts []nats.Option) bool {
	o := nats.GetDefaultOptions()
	for _, opt := range opts {
		_ = opt(&o)
	}
	return o.Secure
}

// checkConnTLS refuses, for OpenConn, a clear-text connection whose
// server pool already names a host other than this machine (a URL given
// to nats.Connect, or an address the cluster advertised).
func checkConnTLS(nc *nats.Conn, c *config) error {
	if c.insecure || nc.Opts.Secure || nc.TLSRequired() {
		return nil
	}
	for _, srv := range nc.Servers() {
		u, err := url.Parse(srv)
		if err != nil {
			return fmt.Errorf("%w: the connection's server pool holds a URL that does not parse", ErrInsecureURL)
		}
		if !isLoopback(u.Hostname()) {
			return fmt.Errorf("%w: the connection's server pool holds %s without TLS (give the connection TLS or nats.IgnoreDiscoveredServers, or pass WithInsecure)", ErrInsecureURL, u.Host)
		}
	}
	return nil
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
