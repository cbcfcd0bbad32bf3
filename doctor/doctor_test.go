package doctor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testEnv() Env {
	e := DefaultEnv()
	e.UDPTimeout = 300 * time.Millisecond // a peer that does not answer is tried on UDP too
	e.LookupIP = func(ctx context.Context, host string) ([]net.IP, error) {
		switch host {
		case "here.example.com":
			return []net.IP{net.ParseIP("192.0.2.10")}, nil
		case "nat.example.com":
			return []net.IP{net.ParseIP("198.51.100.7")}, nil
		}
		return nil, errors.New("no such host")
	}
	e.LocalAddrs = func() ([]net.IP, error) { return []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("192.0.2.10")}, nil }
	return e
}

func TestDNS(t *testing.T) {
	for _, c := range []struct {
		name string
		n    Node
		want Status
		says string
	}{
		{"behind Angie, resolves here", Node{Domain: "here.example.com", BehindProxy: true}, OK, "an address of this host"},
		{"behind Angie, NAT", Node{Domain: "nat.example.com", BehindProxy: true}, Warn, "not an address of this host"},
		{"behind Angie, no record", Node{Domain: "none.example.com", BehindProxy: true}, Fail, "does not resolve"},
		{"behind Angie, test name", Node{Domain: "a.test", BehindProxy: true}, Fail, "not a public name (.test)"},
		{"standalone by address", Node{Domain: "a.test", Advertise: "127.0.0.1:7443"}, Skip, "not a public name"},
		{"standalone by address, public name", Node{Domain: "here.example.com", Advertise: "192.0.2.10:7443"}, Skip, "an address"},
		{"standalone by name", Node{Domain: "x.example.com", Advertise: "here.example.com:7443"}, OK, "resolves to 192.0.2.10"},
		{"standalone by test name", Node{Domain: "x.test", Advertise: "x.test:7443"}, Skip, "hosts file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := DNS(context.Background(), c.n, testEnv())
			if r.Status != c.want || !strings.Contains(r.Detail, c.says) {
				t.Fatalf("got %s %q, want %s and %q", r.Status, r.Detail, c.want, c.says)
			}
			if (r.Status == Fail || r.Status == Warn) && r.Fix == "" {
				t.Error("a failure without a fix")
			}
		})
	}
}

// certChain makes a CA and a leaf for names, valid from nb to na.
func certChain(t *testing.T, names []string, nb, na time.Time) (*x509.Certificate, *x509.Certificate) {
	t.Helper()
	mk := func(tmpl, parent *x509.Certificate, pub, signer any) *x509.Certificate {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test CA"}, NotBefore: nb.Add(-time.Hour), NotAfter: na.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	ca := mk(caT, caT, &caKey.PublicKey, caKey)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := mk(&x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: names, NotBefore: nb, NotAfter: na,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, &key.PublicKey, caKey)
	return ca, leaf
}

func TestCert(t *testing.T) {
	now := time.Now()
	day := 24 * time.Hour
	for _, c := range []struct {
		name  string
		names []string
		nb    time.Time
		na    time.Time
		want  Status
		says  string
	}{
		{"valid", []string{"a.example.com"}, now.Add(-day), now.Add(80 * day), OK, "valid for a.example.com"},
		{"renewal failing", []string{"a.example.com"}, now.Add(-80 * day), now.Add(10 * day), Warn, "renewal is failing"},
		{"expired", []string{"a.example.com"}, now.Add(-90 * day), now.Add(-day), Fail, "out of date"},
		{"another name", []string{"b.example.com"}, now.Add(-day), now.Add(80 * day), Fail, "names b.example.com"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ca, leaf := certChain(t, c.names, c.nb, c.na)
			roots := x509.NewCertPool()
			roots.AddCert(ca)
			r := Cert(Node{Domain: "a.example.com", BehindProxy: true}, &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}, now, roots)
			if r.Status != c.want || !strings.Contains(r.Detail, c.says) {
				t.Fatalf("got %s %q, want %s and %q", r.Status, r.Detail, c.want, c.says)
			}
			if r.Status != OK && !strings.Contains(r.Fix, "certificate renewed") {
				t.Errorf("fix %q does not say what to look for", r.Fix)
			}
		})
	}
	if r := Cert(Node{Domain: "a.example.com"}, nil, now, nil); r.Status != Skip {
		t.Errorf("no connection: got %s", r.Status)
	}
}

// TestOwnCert: a standalone node's self-signed certificate must be the
// one in its home; another (something else on the port) fails.
func TestOwnCert(t *testing.T) {
	now := time.Now()
	_, own := certChain(t, []string{"a.test"}, now.Add(-time.Hour), now.Add(time.Hour*24*365))
	_, other := certChain(t, []string{"a.test"}, now.Add(-time.Hour), now.Add(time.Hour*24*365))
	p := filepath.Join(t.TempDir(), "cert.pem")
	os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: own.Raw}), 0o644)
	n := Node{Domain: "a.test", SelfSigned: true, CertFile: p}
	for _, c := range []struct {
		leaf *x509.Certificate
		want Status
	}{{own, OK}, {other, Fail}} {
		if r := Cert(n, &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.leaf}}, now, nil); r.Status != c.want {
			t.Errorf("got %s %q, want %s", r.Status, r.Detail, c.want)
		}
	}
}

func TestClock(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("{}")) }))
	defer srv.Close()
	peer := strings.TrimPrefix(srv.URL, "https://")
	for _, c := range []struct {
		name string
		off  time.Duration // how far this host's clock is behind
		want Status
	}{
		{"in step", 0, OK},
		{"half a minute", 30 * time.Second, Warn},
		{"five minutes", 5 * time.Minute, Fail},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := testEnv()
			env.Now = func() time.Time { return time.Now().Add(-c.off) }
			env.Peers = func(context.Context) ([]string, error) { return []string{"127.0.0.1:1", peer}, nil }
			if r := Clock(context.Background(), env); r.Status != c.want {
				t.Fatalf("got %s %q, want %s", r.Status, r.Detail, c.want)
			}
		})
	}
	env := testEnv()
	env.Peers = func(context.Context) ([]string, error) { return nil, nil }
	if r := Clock(context.Background(), env); r.Status != Skip {
		t.Errorf("no peers: got %s", r.Status)
	}
}

func TestDisk(t *testing.T) {
	dir := t.TempDir()
	if r := Disk(dir, 1<<20); r.Status != OK {
		t.Errorf("1 MB reserve: %s %q", r.Status, r.Detail)
	}
	if r := Disk(dir, 1<<62); r.Status != Fail || !strings.Contains(r.Detail, "below the") || r.Fix == "" {
		t.Errorf("an impossible reserve: %s %q", r.Status, r.Detail)
	}
	if r := Disk(filepath.Join(dir, "missing"), 0); r.Status != Fail {
		t.Errorf("no directory: %s", r.Status)
	}
}

func TestPrintIsOneLinePerCheck(t *testing.T) {
	var b strings.Builder
	Print(&b, []Result{{Check: "tcp", Status: Fail, Detail: "refused\nby peer", Fix: "start\nit"}, {Check: "dns", Status: OK, Detail: "fine"}})
	want := "FAIL  tcp     refused by peer; fix: start it\nok    dns     fine\n"
	if b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
}
