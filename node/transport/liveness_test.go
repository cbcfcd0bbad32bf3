package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/rs/zerolog"
)

// recorder is a peer's handler: it keeps what reached it and over which
// protocol, and answers with the protocol.
type recorder struct {
	mu    sync.Mutex
	got   []string
	delay time.Duration
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	time.Sleep(rc.delay)
	rc.mu.Lock()
	rc.got = append(rc.got, r.Proto+" "+string(b))
	rc.mu.Unlock()
	w.Write([]byte(r.Proto))
}

func (rc *recorder) received() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.got...)
}

// startPeer serves h with TLS on addr (HTTP/3 and HTTP/2 on one port).
func startPeer(t *testing.T, certs *Certs, addr string, key *quic.StatelessResetKey, h http.Handler) *Server {
	t.Helper()
	srv, err := Listen(addr, h, ListenOptions{Certs: certs, ResetKey: key, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return srv
}

func testCerts(t *testing.T) (*Certs, string) {
	t.Helper()
	cf, kf, pin := writePair(t, t.TempDir())
	certs, err := LoadCerts(cf, kf, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return certs, pin
}

// post sends one message and returns what the peer said (its protocol)
// and how long it took.
func post(t *testing.T, c *Client, p Peer, msg string) (string, time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t0 := time.Now()
	_, b, err := c.Do(ctx, p, "POST", "/swarm/v1/messages", []byte(msg), nil, 1<<10)
	return string(b), time.Since(t0), err
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// udpSendErrno is what the kernel says to one UDP datagram to addr now.
func udpSendErrno(addr string) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte("probe"))
	return err
}

// TestLocalSendErrorFallsBackToTCP: when the sender's own kernel refuses
// its UDP (a firewall's OUTPUT drop gives EPERM, a policy rule EACCES or
// ENETUNREACH), a message goes over HTTP/2 on TCP at once, both on a new
// connection and on one that was open; the peer is then remembered as
// TCP-only. Each case runs in a network namespace of its own.
func TestLocalSendErrorFallsBackToTCP(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	certs, pin := testCerts(t)
	rc := &recorder{}
	srv := startPeer(t, certs, "127.0.0.1:0", nil, rc)
	port := portOf(t, srv.Addr())
	// Policy rules must come before the lookup of local addresses.
	run(t, "ip", "rule", "add", "pref", "100", "lookup", "local")
	run(t, "ip", "rule", "del", "pref", "0")
	cases := []struct {
		name    string
		block   func()
		errno   syscall.Errno
		unblock func()
	}{
		{"nft output drop", func() {
			nftables(t, "table inet t {\n chain out {\n  type filter hook output priority 0;\n  udp dport "+port+" drop\n }\n}\n")
		}, syscall.EPERM, func() { nftables(t, "") }},
		{"rule prohibit", func() {
			run(t, "ip", "rule", "add", "pref", "10", "ipproto", "udp", "dport", port, "prohibit")
		}, syscall.EACCES, func() { run(t, "ip", "rule", "del", "pref", "10") }},
		{"rule unreachable", func() {
			run(t, "ip", "rule", "add", "pref", "10", "ipproto", "udp", "dport", port, "unreachable")
		}, syscall.ENETUNREACH, func() { run(t, "ip", "rule", "del", "pref", "10") }},
	}
	for _, tc := range cases {
		for _, open := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/open=%v", tc.name, open), func(t *testing.T) {
				c := NewClient(ClientOptions{})
				defer c.Close()
				p := Peer{Addr: srv.Addr(), Pin: pin}
				if open {
					if proto, _, err := post(t, c, p, "before"); err != nil || proto != "HTTP/3.0" {
						t.Fatalf("before the block: %q %v", proto, err)
					}
				}
				tc.block()
				defer tc.unblock()
				if err := udpSendErrno(srv.Addr()); !errors.Is(err, tc.errno) {
					t.Fatalf("the block makes UDP sends fail with %v, want %v", err, tc.errno)
				}
				msg := "blocked " + tc.name + " " + strconv.FormatBool(open)
				proto, took, err := post(t, c, p, msg)
				t.Logf("delivered over %s in %v", proto, took)
				if err != nil || proto != "HTTP/2.0" {
					t.Fatalf("with UDP refused: %q %v; want the message over HTTP/2.0", proto, err)
				}
				if took > 10*time.Second {
					t.Fatalf("the fallback took %v", took)
				}
				if c.Via(p) != "h2" {
					t.Fatal("the peer is not remembered as TCP-only")
				}
				if got := rc.received(); got[len(got)-1] != "HTTP/2.0 "+msg {
					t.Fatalf("the peer received %q last", got[len(got)-1])
				}
			})
		}
	}
}

// TestSilentConnectionFallsBackToTCP: UDP starts being dropped on the way
// (no error to the sender) while a QUIC connection is open; the next
// message goes over TCP within seconds, not after the 60 s idle timeout.
func TestSilentConnectionFallsBackToTCP(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	certs, pin := testCerts(t)
	rc := &recorder{}
	srv := startPeer(t, certs, "127.0.0.1:0", nil, rc)
	port := portOf(t, srv.Addr())
	c := NewClient(ClientOptions{})
	defer c.Close()
	p := Peer{Addr: srv.Addr(), Pin: pin}
	if proto, _, err := post(t, c, p, "before"); err != nil || proto != "HTTP/3.0" {
		t.Fatalf("before the drop: %q %v", proto, err)
	}
	// Dropped on input: the sender's writes succeed and nothing comes back.
	nftables(t, "table inet t {\n chain in {\n  type filter hook input priority 0;\n  udp dport "+port+" drop\n  udp sport "+port+" drop\n }\n}\n")
	proto, took, err := post(t, c, p, "after")
	t.Logf("delivered over %s in %v", proto, took)
	if err != nil || proto != "HTTP/2.0" {
		t.Fatalf("with UDP dropped: %q %v; want the message over HTTP/2.0", proto, err)
	}
	if took > 10*time.Second {
		t.Fatalf("the fallback took %v; the idle timeout is 60 s", took)
	}
	if got := rc.received(); len(got) != 2 || got[1] != "HTTP/2.0 after" {
		t.Fatalf("the peer received %q", got)
	}
}

// TestReplacedPeerWithNewResetKey: the process behind a peer's QUIC port
// is replaced by one with another stateless-reset key (a restarted proxy
// without a fixed key), so the client cannot recognise its resets; the
// next message still arrives within seconds, over HTTP/3 on a new
// connection.
func TestReplacedPeerWithNewResetKey(t *testing.T) {
	certs, pin := testCerts(t)
	var k1, k2 quic.StatelessResetKey
	copy(k1[:], "the first process's reset key")
	copy(k2[:], "the second process's, unrelated")
	rc1 := &recorder{}
	srv1, err := Listen("127.0.0.1:0", rc1, ListenOptions{Certs: certs, ResetKey: &k1, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(ClientOptions{})
	defer c.Close()
	p := Peer{Addr: srv1.Addr(), Pin: pin}
	if proto, _, err := post(t, c, p, "before"); err != nil || proto != "HTTP/3.0" {
		t.Fatalf("before the restart: %q %v", proto, err)
	}
	// A crash: the sockets go, nobody tells the client.
	srv1.tr.Close()
	srv1.udp.Close()
	srv1.tcp.Close()
	rc2 := &recorder{}
	startPeer(t, certs, srv1.Addr(), &k2, rc2)
	// Several messages at once share the dead connection: each gets
	// through.
	const n = 3
	errs := make(chan error, n)
	for i := range n {
		go func() {
			proto, took, err := post(t, c, p, fmt.Sprintf("after %d", i))
			t.Logf("message %d delivered over %s in %v", i, proto, took)
			switch {
			case err != nil || proto != "HTTP/3.0":
				err = fmt.Errorf("after the restart: %q %v; want the message over HTTP/3.0", proto, err)
			case took > 10*time.Second:
				err = fmt.Errorf("resuming took %v; the idle timeout is 60 s", took)
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := rc2.received(); len(got) != n {
		t.Fatalf("the new process received %q; want %d messages", got, n)
	}
	if c.Via(p) != "h3" {
		t.Fatal("the client fell back to TCP for a peer whose UDP works")
	}
}

// TestSlowPeerIsNotDead: a peer that takes longer than answerTimeout to
// reply, on a working connection, is waited for over HTTP/3: its QUIC
// stack acknowledged the request, so the connection is alive.
func TestSlowPeerIsNotDead(t *testing.T) {
	certs, pin := testCerts(t)
	rc := &recorder{delay: answerTimeout + time.Second}
	srv := startPeer(t, certs, "127.0.0.1:0", nil, rc)
	c := NewClient(ClientOptions{})
	defer c.Close()
	p := Peer{Addr: srv.Addr(), Pin: pin}
	proto, took, err := post(t, c, p, "slow")
	if err != nil || proto != "HTTP/3.0" {
		t.Fatalf("slow reply: %q %v after %v; want HTTP/3.0", proto, err, took)
	}
	if got := rc.received(); len(got) != 1 {
		t.Fatalf("the peer received %q; want the message once", got)
	}
}

// TestRefusedCertificateNeverFallsBack: a certificate that does not match
// the peer's pin is an attack or a misconfiguration, not a blocked port:
// the request fails and nothing goes over TCP.
func TestRefusedCertificateNeverFallsBack(t *testing.T) {
	certs, _ := testCerts(t)
	_, otherPin := testCerts(t)
	rc := &recorder{}
	srv := startPeer(t, certs, "127.0.0.1:0", nil, rc)
	c := NewClient(ClientOptions{})
	defer c.Close()
	p := Peer{Addr: srv.Addr(), Pin: otherPin}
	if proto, _, err := post(t, c, p, "to an impostor"); err == nil {
		t.Fatalf("a refused certificate was accepted over %s", proto)
	}
	if got := rc.received(); len(got) != 0 {
		t.Fatalf("the peer received %q", got)
	}
	if c.Via(p) != "h3" {
		t.Fatal("a refused certificate made the client fall back to TCP")
	}
}
