package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/node/transport"
	"github.com/quic-go/quic-go/http3"
	"github.com/rs/zerolog"
)

// testCA is a throwaway certificate authority standing in for Let's
// Encrypt: peers verify the proxy's certificate by WebPKI against it.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "swarm test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue makes a server certificate for the given IP addresses.
func (ca *testCA) issue(t *testing.T, ips ...string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "proxy"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// h3Proxy plays Angie: HTTP/3 with a CA-issued certificate in front, HTTP/1.1
// to the node on loopback, X-Forwarded-For overwritten with the client's
// address (what the generated site does with $remote_addr).
func h3Proxy(t *testing.T, ca *testCA, listen, upstream string) string {
	t.Helper()
	target, _ := url.Parse("http://" + upstream)
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		host, _, _ := net.SplitHostPort(r.In.RemoteAddr)
		r.Out.Header.Set("X-Forwarded-For", host)
		r.Out.Header.Set("X-Forwarded-Proto", "https")
	}}
	udp, err := net.ListenPacket("udp", listen)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http3.Server{
		Handler:   rp,
		TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{ca.issue(t, "::1", "127.0.0.1")}, MinVersion: tls.VersionTLS13}),
	}
	go srv.Serve(udp)
	t.Cleanup(func() { srv.Close(); udp.Close() })
	return udp.LocalAddr().String()
}

func openWith(t *testing.T, home string, roots *x509.CertPool) *Node {
	t.Helper()
	n, err := Open(home, Options{Serve: true, Log: zerolog.Nop(), Client: transport.ClientOptions{RootCAs: roots}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// fastHome shortens a home's timings as scHome does.
func fastHome(t *testing.T, home string) {
	t.Helper()
	cfg := must[*Config](t)(LoadConfig(home))
	cfg.RetryMin, cfg.RetryMax = Duration(20*time.Millisecond), Duration(200*time.Millisecond)
	cfg.Heartbeat, cfg.SyncEvery = Duration(200*time.Millisecond), Duration(300*time.Millisecond)
	cfg.JoinRate, cfg.JoinBurst = 100, 100
	if err := SaveConfig(home, cfg); err != nil {
		t.Fatal(err)
	}
}

// TestBehindProxy: node B runs as behind Angie (plain HTTP/1.1 on loopback,
// advertised at the proxy's https origin, verified by WebPKI); node A
// reaches it through an HTTP/3 reverse proxy on ::1. B sees A's true
// address (::1, from X-Forwarded-For), not the proxy's 127.0.0.1, and A's
// own forged X-Forwarded-For does not get through.
func TestBehindProxy(t *testing.T) {
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skip("no IPv6 loopback here: ", err)
	} else {
		ln.Close()
	}
	ca := newTestCA(t)
	bPort := must[int](t)(transport.FreePort("127.0.0.1"))
	pPort := must[int](t)(transport.FreePort("::1"))
	front := h3Proxy(t, ca, fmt.Sprintf("[::1]:%d", pPort), fmt.Sprintf("127.0.0.1:%d", bPort))

	bHome := t.TempDir()
	_, err := Init(bHome, InitOptions{Domain: "b.test", Listen: fmt.Sprintf("127.0.0.1:%d", bPort), Advertise: "https://" + front, Angie: &AngieSettings{}})
	if err != nil {
		t.Fatal(err)
	}
	fastHome(t, bHome)
	b := openWith(t, bHome, ca.pool)
	a := openWith(t, scHome(t, "a.test"), ca.pool)
	scSwarm(t, b, a)

	ctx := context.Background()
	r := must[SendResult](t)(a.Send(ctx, SendArgs{Swarm: "team", To: "b.test", Body: "through angie", Wait: 10 * time.Second}))
	if r.Deliveries[0].Status != Delivered {
		t.Fatalf("delivery through the proxy: %+v", r.Deliveries)
	}
	if !has(t, b, "through angie") {
		t.Fatal("B's inbox lacks the message sent through the proxy")
	}
	must[SendResult](t)(b.Send(ctx, SendArgs{Swarm: "team", To: "a.test", Body: "back", Wait: 10 * time.Second}))
	if !has(t, a, "back") {
		t.Fatal("A's inbox lacks B's reply")
	}
	from := func() string {
		for _, m := range must[[]MemberInfo](t)(b.Members("team")) {
			if m.Domain == "a.test" {
				return m.Presence.From
			}
		}
		return ""
	}
	if got := from(); got != "::1" {
		t.Fatalf("B sees A from %q; want the true peer ::1 (the proxy connects from 127.0.0.1)", got)
	}

	// A forged X-Forwarded-For sent to the proxy is overwritten by it.
	req, _ := http.NewRequest("POST", "https://"+front+"/swarm/v1/ping", strings.NewReader("{}"))
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("Content-Type", "application/json")
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}
	defer tr.Close()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an unsigned ping through the proxy got %d; want 400", resp.StatusCode)
	}
	if got := from(); got != "::1" {
		t.Fatalf("after a forged header B sees A from %q", got)
	}
}

// TestForwardedForTrust is the rule as a table: X-Forwarded-For counts only
// behind a proxy and only on a connection from loopback.
func TestForwardedForTrust(t *testing.T) {
	for _, c := range []struct {
		name        string
		behind      bool
		remote, xff string
		want        string
	}{
		{"standalone ignores the header", false, "127.0.0.1:4000", "198.51.100.7", "127.0.0.1"},
		{"behind proxy, from loopback", true, "127.0.0.1:4000", "198.51.100.7", "198.51.100.7"},
		{"behind proxy, last entry wins", true, "127.0.0.1:4000", "203.0.113.1, 198.51.100.7", "198.51.100.7"},
		{"behind proxy, non-loopback source forges", true, "192.0.2.5:4000", "198.51.100.7", "192.0.2.5"},
		{"behind proxy, garbage header", true, "[::1]:4000", "not-an-ip", "::1"},
		{"behind proxy, no header", true, "127.0.0.1:4000", "", "127.0.0.1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := &Node{cfg: Config{BehindProxy: c.behind}}
			r := httptest.NewRequest("POST", "/swarm/v1/join", nil)
			r.RemoteAddr = c.remote
			if c.xff != "" {
				r.Header.Set("X-Forwarded-For", c.xff)
			}
			if got := n.remoteIP(r); got != c.want {
				t.Fatalf("remoteIP = %q; want %q", got, c.want)
			}
		})
	}
}

// TestForgedForwardedForDoesNotDodgeJoinLimit: a non-loopback client that
// rotates X-Forwarded-For still hits the per-address join limit.
func TestForgedForwardedForDoesNotDodgeJoinLimit(t *testing.T) {
	home := scHome(t, "b.test")
	cfg := must[*Config](t)(LoadConfig(home))
	cfg.BehindProxy, cfg.JoinRate, cfg.JoinBurst = true, 0.01, 2
	n := &Node{cfg: *cfg, log: zerolog.Nop(), now: time.Now, bodies: newBodyBudget(defaultBodyBudget, defaultBodyPerAddr)}
	h := n.peerMux()
	codes := []int{}
	for i := range 4 {
		r := httptest.NewRequest("POST", "/swarm/v1/join", strings.NewReader("{}"))
		r.RemoteAddr = "192.0.2.5:4000"
		r.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		codes = append(codes, w.Code)
	}
	if codes[2] != http.StatusTooManyRequests || codes[3] != http.StatusTooManyRequests {
		t.Fatalf("join codes %v: the third and fourth attempt from one address must be limited", codes)
	}
}

// TestTCPFallback: a peer whose UDP is blocked (its node serves no QUIC,
// and the port drops datagrams or is closed) still gets the message, over
// HTTP/2 on TCP; the sender then stays on TCP for that peer.
func TestTCPFallback(t *testing.T) {
	for _, blackhole := range []bool{true, false} {
		t.Run(fmt.Sprintf("blackhole=%v", blackhole), func(t *testing.T) {
			a := scNode(t, "a.test")
			bHome := scHome(t, "b.test")
			cfg := must[*Config](t)(LoadConfig(bHome))
			cfg.NoQUIC = true
			if err := SaveConfig(bHome, cfg); err != nil {
				t.Fatal(err)
			}
			b := scOpen(t, bHome)
			if blackhole {
				// A firewall that drops UDP: datagrams go nowhere, no ICMP.
				pc, err := net.ListenPacket("udp", cfg.Listen)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { pc.Close() })
				go func() {
					buf := make([]byte, 2048)
					for {
						if _, _, err := pc.ReadFrom(buf); err != nil {
							return
						}
					}
				}()
			}
			scSwarm(t, a, b)
			ctx := context.Background()
			must[SendResult](t)(a.Send(ctx, SendArgs{Swarm: "team", To: "b.test", Body: "over tcp", Wait: 20 * time.Second}))
			if !has(t, b, "over tcp") {
				t.Fatal("B's inbox lacks the message")
			}
			peer := transport.Peer{Addr: cfg.Listen}
			if via := a.client.Via(peer); via != "h2" {
				t.Fatalf("A sends to B via %s; want h2 remembered after the fallback", via)
			}
			must[SendResult](t)(b.Send(ctx, SendArgs{Swarm: "team", To: "a.test", Body: "reply over h3", Wait: 10 * time.Second}))
			if !has(t, a, "reply over h3") {
				t.Fatal("A's inbox lacks B's reply")
			}
			if via := b.client.Via(transport.Peer{Addr: a.cfg.Listen}); via != "h3" {
				t.Fatalf("B sends to A via %s; A's UDP is open, want h3", via)
			}
		})
	}
}
