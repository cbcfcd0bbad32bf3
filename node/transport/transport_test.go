package transport

import (
	"context"
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/rs/zerolog"
)

func writePair(t *testing.T, dir string) (certFile, keyFile, pin string) {
	t.Helper()
	c, k, err := SelfSigned("n.test", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	// Written beside and renamed in, as a renewal tool does.
	for f, b := range map[string][]byte{certFile: c, keyFile: k} {
		if err := os.WriteFile(f+".new", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(f+".new", f); err != nil {
			t.Fatal(err)
		}
	}
	pair, _ := tls.X509KeyPair(c, k)
	pin, _ = PinOf(pair)
	return certFile, keyFile, pin
}

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.Proto)) })
}

// TestCertificateReload: a standalone node with --cert/--key files serves
// the new certificate once the files change, without a restart; a broken
// pair keeps the old one in service.
func TestCertificateReload(t *testing.T) {
	dir := t.TempDir()
	cf, kf, pin1 := writePair(t, dir)
	certs, err := LoadCerts(cf, kf, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	certs.every = 0 // check the files on every handshake
	srv, err := Listen("127.0.0.1:0", okHandler(), ListenOptions{Certs: certs, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	get := func(pin string) error {
		c := NewClient(ClientOptions{Timeout: 5 * time.Second})
		defer c.Close()
		_, _, err := c.Do(context.Background(), Peer{Addr: srv.Addr(), Pin: pin}, "GET", "/", nil, nil, 1<<10)
		return err
	}
	if err := get(pin1); err != nil {
		t.Fatalf("first certificate: %v", err)
	}
	time.Sleep(10 * time.Millisecond) // a distinct modification time
	_, _, pin2 := writePair(t, dir)
	if err := get(pin2); err != nil {
		t.Fatalf("renewed certificate not served: %v", err)
	}
	if err := get(pin1); err == nil {
		t.Fatal("the old certificate is still served after the renewal")
	}
	// A half-written renewal: the old (second) certificate stays.
	os.WriteFile(cf, []byte("-----BEGIN CERTIFICATE-----\ntruncated"), 0o600)
	if err := get(pin2); err != nil {
		t.Fatalf("a broken pair took the certificate out of service: %v", err)
	}
}

func TestLoadCertsErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadCerts(filepath.Join(dir, "none.pem"), filepath.Join(dir, "none.key"), zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "load TLS certificate") {
		t.Fatalf("missing files: %v", err)
	}
}

// TestPlainListenIsLoopbackOnly: behind a proxy the node refuses to serve
// plain HTTP anywhere but loopback.
func TestPlainListenIsLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", "example.com:80"} {
		if s, err := Listen(addr, okHandler(), ListenOptions{Log: zerolog.Nop()}); err == nil {
			s.Shutdown(context.Background())
			t.Errorf("plain HTTP on %s was allowed", addr)
		}
	}
	s, err := Listen("127.0.0.1:0", okHandler(), ListenOptions{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	resp, err := http.Get("http://" + s.Addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 1 {
		t.Fatalf("plain listener answered %d over %s", resp.StatusCode, resp.Proto)
	}
}

// TestFallbackRetriesH3Later: after RetryH3 the client tries QUIC again
// and returns to it when the peer's UDP is open.
func TestFallbackRetriesH3Later(t *testing.T) {
	dir := t.TempDir()
	cf, kf, pin := writePair(t, dir)
	certs, _ := LoadCerts(cf, kf, zerolog.Nop())
	srv, err := Listen("127.0.0.1:0", okHandler(), ListenOptions{Certs: certs, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	c := NewClient(ClientOptions{RetryH3: time.Minute})
	defer c.Close()
	now := time.Now()
	c.now = func() time.Time { return now }
	p := Peer{Addr: srv.Addr(), Pin: pin}
	c.setTCP(p.hostport(), true) // as after a fallback
	_, body, err := c.Do(context.Background(), p, "GET", "/", nil, nil, 1<<10)
	if err != nil || string(body) != "HTTP/2.0" {
		t.Fatalf("during the fallback window: %q %v; want HTTP/2.0", body, err)
	}
	now = now.Add(2 * time.Minute)
	_, body, err = c.Do(context.Background(), p, "GET", "/", nil, nil, 1<<10)
	if err != nil || string(body) != "HTTP/3.0" {
		t.Fatalf("after the window: %q %v; want HTTP/3.0", body, err)
	}
	if c.Via(p) != "h3" {
		t.Fatal("QUIC worked again but the fallback is still remembered")
	}
}

// TestRestartedPeerResetsOldConnection: a server that dies without a
// goodbye and comes back on the same port with the same reset key makes
// the client's next request succeed at once (stateless reset, then a new
// connection), not after the idle timeout.
func TestRestartedPeerResetsOldConnection(t *testing.T) {
	dir := t.TempDir()
	cf, kf, pin := writePair(t, dir)
	certs, _ := LoadCerts(cf, kf, zerolog.Nop())
	var key quic.StatelessResetKey
	copy(key[:], "a stable key, derived from the id")
	srv, err := Listen("127.0.0.1:0", okHandler(), ListenOptions{Certs: certs, ResetKey: &key, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	c := NewClient(ClientOptions{Timeout: 10 * time.Second})
	defer c.Close()
	p := Peer{Addr: addr, Pin: pin}
	if _, _, err := c.Do(context.Background(), p, "GET", "/", nil, nil, 1<<10); err != nil {
		t.Fatal(err)
	}
	// A crash: the sockets go, nobody tells the client.
	srv.tr.Close()
	srv.udp.Close()
	srv.tcp.Close()
	srv2, err := Listen(addr, okHandler(), ListenOptions{Certs: certs, ResetKey: &key, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Shutdown(context.Background())
	// Without the reset the request would wait on the dead connection
	// until the client's timeout and fail.
	_, body, err := c.Do(context.Background(), p, "GET", "/", nil, nil, 1<<10)
	if err != nil || string(body) != "HTTP/3.0" {
		t.Fatalf("after the restart: %q %v", body, err)
	}
}
