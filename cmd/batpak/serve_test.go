package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/projection"
)

func TestServeRefusesBadCommandLines(t *testing.T) {
	ts := newTestStore(t, 5)
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--addr", "0.0.0.0:0"}, "reachable from other machines: give --token"},
		{[]string{"--addr", "192.0.2.1:8080"}, "give --token"},
		{[]string{"--addr", "nonsense"}, "--addr"},
		{[]string{"--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
		{[]string{"--interval", "0s"}, "--interval must be positive"},
		{[]string{"--kind-name", "1:004"}, "want KIND=NAME"},
		{[]string{"--kind-name", "zz=Name"}, "invalid kind"},
	} {
		r := runCmd(t, "", append([]string{"serve", ts.dir}, tc.args...)...)
		r.wantCode(t, exitUsage)
		wantContains(t, "serve "+strings.Join(tc.args, " "), r.stderr, tc.says)
	}
	r := runCmd(t, "", "serve", t.TempDir())
	r.wantCode(t, exitFailure)
	wantContains(t, "serve of an empty directory", r.stderr, "is not a batpak store")
	r = runCmd(t, "", "serve", ts.dir, "--projections", filepath.Join(t.TempDir(), "missing"))
	r.wantCode(t, exitFailure)
	wantContains(t, "serve --projections", r.stderr, "is not a directory")
}

// httpGet fetches url and returns the status and body.
func httpGet(t *testing.T, url string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestServeLoopbackOnly(t *testing.T) {
	ts := newTestStore(t, 5)
	base := startServe(t, hangContext(t), ts.dir, "--verify=false")
	if code, body := httpGet(t, base+"/api/health"); code != http.StatusOK || !strings.Contains(body, `"Events": 8`) {
		t.Errorf("health: %d %s", code, body)
	}
	// A page on another site that rebinds its name to 127.0.0.1 reaches
	// the server with its own name as Host.
	if code, body := httpGet(t, base+"/api/health", "Host", "attacker.example:8080"); code != http.StatusForbidden {
		t.Errorf("a foreign Host: %d %s", code, body)
	}
	if code, _ := httpGet(t, base+"/api/health", "Host", "localhost"); code != http.StatusOK {
		t.Errorf("Host localhost: %d", code)
	}
}

func TestServeToken(t *testing.T) {
	ts := newTestStore(t, 5)
	t.Setenv("BATPAK_EXPLORER_TOKEN", "from-env")
	base := startServe(t, hangContext(t), ts.dir, "--verify=false")
	if code, _ := httpGet(t, base+"/api/health"); code != http.StatusUnauthorized {
		t.Errorf("without the token: %d", code)
	}
	if code, _ := httpGet(t, base+"/api/health", "Authorization", "Bearer from-env"); code != http.StatusOK {
		t.Errorf("with the token: %d", code)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key as PEM files
// and returns their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "batpak test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestServeTLS(t *testing.T) {
	ts := newTestStore(t, 5)
	certFile, keyFile, pool := selfSigned(t)
	base := startServe(t, hangContext(t), ts.dir, "--verify=false", "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("serve with TLS listens on %s", base)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(base + "/api/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"Events": 8`) {
		t.Errorf("health over TLS: %d %s", resp.StatusCode, b)
	}
}

func TestServeProjections(t *testing.T) {
	ts := newTestStore(t, 5)
	cpDir := t.TempDir()
	cps, err := projection.NewFileCheckpoints(cpDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := hangContext(t)
	if err := cps.Save(ctx, "balances", 4); err != nil {
		t.Fatal(err)
	}
	if err := cps.Save(ctx, "all", ts.events+1); err != nil {
		t.Fatal(err)
	}
	base := startServe(t, ctx, ts.dir, "--verify=false", "--projections", cpDir)
	code, body := httpGet(t, base+"/api/projections")
	var p struct {
		Projections []struct {
			Name   string
			Next   uint64
			Behind uint64 `json:"behind_sequences"`
		}
	}
	if err := json.Unmarshal([]byte(body), &p); code != http.StatusOK || err != nil {
		t.Fatalf("projections: %d %v %s", code, err, body)
	}
	if len(p.Projections) != 2 || p.Projections[0].Name != "all" || p.Projections[0].Behind != 0 ||
		p.Projections[1].Name != "balances" || p.Projections[1].Behind != ts.events-3 {
		t.Errorf("projections: %+v", p.Projections)
	}
}

// TestServeFollowsAWriter serves a store another writer appends to: the
// health page and an open live tail see the new events.
func TestServeFollowsAWriter(t *testing.T) {
	ts := newTestStore(t, 5)
	ctx := hangContext(t)
	base := startServe(t, ctx, ts.dir, "--interval", "20ms")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/tail?prefix=account:&from=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	// next returns the sequence of the next record event.
	next := func() string {
		t.Helper()
		id := ""
		for sc.Scan() {
			line := sc.Text()
			if s, ok := strings.CutPrefix(line, "id: "); ok {
				id = s
			}
			if line == "" && id != "" {
				return id
			}
		}
		t.Fatalf("the tail ended: %v", sc.Err())
		return ""
	}
	for _, want := range []string{"1", "2", "3", "4", "5"} {
		if got := next(); got != want {
			t.Fatalf("tail gave #%s, want #%s", got, want)
		}
	}
	w, err := eventstore.Open(ts.dir, storeOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	appendDeposits(t, w, 100, 2)
	for _, want := range []string{"9", "10"} { // 6-8 are the shop's order
		if got := next(); got != want {
			t.Fatalf("after the writer's appends the tail gave #%s, want #%s", got, want)
		}
	}
	if code, body := httpGet(t, base+"/api/health"); code != http.StatusOK || !strings.Contains(body, `"Events": 10`) {
		t.Errorf("health after the appends: %d %s", code, body)
	}
}

func TestServeShowsDamage(t *testing.T) {
	d := newDamagedStore(t)
	ctx := hangContext(t)
	// The checkpoint lets the store open past the damage; the verify that
	// serve runs at start finds it and the health page shows it.
	base := startServe(t, ctx, d.dir)
	type check struct {
		Running  bool
		Problems []string
	}
	var h struct{ Checks []check }
	for len(h.Checks) == 0 || h.Checks[0].Running {
		code, body := httpGet(t, base+"/api/health")
		if err := json.Unmarshal([]byte(body), &h); code != http.StatusOK || err != nil {
			t.Fatalf("health: %d %v %s", code, err, body)
		}
		select {
		case <-ctx.Done():
			t.Fatal("the verify did not finish")
		case <-time.After(20 * time.Millisecond): // polling the page, not a budget
		}
	}
	if c := h.Checks[0]; len(c.Problems) == 0 || !strings.Contains(c.Problems[0], "0000000002.seg") {
		t.Errorf("health shows the check %+v, want the damage in segment 2", c)
	}
	code, body := httpGet(t, base+"/")
	if code != http.StatusOK || !strings.Contains(body, "problem(s) found") {
		t.Errorf("health page: %d\n%s", code, body)
	}

	// Once the damage keeps the store from opening, serve says why and
	// what to do.
	d.hideFooter(t)
	r := runCmd(t, "", "serve", d.dir, "--addr", "127.0.0.1:0")
	r.wantCode(t, exitFailure)
	wantContains(t, "serve of a damaged store", r.stderr, "batpak verify", "batpak repair")
}
