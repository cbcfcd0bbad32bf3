package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/rs/zerolog"
)

func limitedServer(t *testing.T, h http.Handler, l Limits) *Server {
	t.Helper()
	cf, kf, _ := writePair(t, t.TempDir())
	certs, err := LoadCerts(cf, kf, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Listen("127.0.0.1:0", h, ListenOptions{Certs: certs, Limits: l, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv
}

func h3TLS() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, NextProtos: []string{http3.NextProtoH3}, MinVersion: tls.VersionTLS13}
}

// waitFor polls cond for at most 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// floodQUIC dials n QUIC connections from each of the given local IPs
// (one UDP socket per IP) and keeps those that complete. It returns them
// and how many were refused.
func floodQUIC(t testing.TB, addr string, ips []string, n int) (held []*quic.Conn, refused int, close func()) {
	var mu sync.Mutex
	var trs []*quic.Transport
	var wg sync.WaitGroup
	for _, ip := range ips {
		udp, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		tr := &quic.Transport{Conn: udp}
		trs = append(trs, tr)
		raddr, _ := net.ResolveUDPAddr("udp", addr)
		sem := make(chan struct{}, 32) // dials in flight per socket
		for i := 0; i < n; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				c, err := tr.Dial(ctx, raddr, h3TLS(), &quic.Config{HandshakeIdleTimeout: 5 * time.Second, MaxIdleTimeout: 60 * time.Second, KeepAlivePeriod: 10 * time.Second})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					refused++
					return
				}
				held = append(held, c)
			}()
		}
	}
	wg.Wait()
	return held, refused, func() {
		for _, c := range held {
			c.CloseWithError(0, "")
		}
		for _, tr := range trs {
			tr.Close()
			tr.Conn.Close()
		}
	}
}

// TestQUICFloodIsCapped: connections beyond the per-address and global
// caps are refused, not kept, from one socket and from several source
// addresses; the server's count returns to zero when they go.
func TestQUICFloodIsCapped(t *testing.T) {
	lim := Limits{MaxConns: 48, MaxConnsPerIP: 16, RetryAbove: 24, LimitLoopback: true}
	srv := limitedServer(t, okHandler(), lim)

	var m0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)

	// One UDP socket: the per-address cap.
	held, refused, closeAll := floodQUIC(t, srv.Addr(), []string{"127.0.0.1"}, 200)
	st := srv.Stats()
	t.Logf("one socket, 200 dials: %d held, %d refused; server holds %d, refused %d, retries %d", len(held), refused, st.QUICConns, st.QUICRefused, st.QUICRetries)
	if len(held) > lim.MaxConnsPerIP || st.QUICConns > lim.MaxConnsPerIP {
		t.Fatalf("one address holds %d connections (server counts %d), cap %d", len(held), st.QUICConns, lim.MaxConnsPerIP)
	}
	if len(held) == 0 || st.QUICRefused == 0 || refused == 0 {
		t.Fatalf("nothing held or nothing refused: held %d, refused %d/%d", len(held), refused, st.QUICRefused)
	}
	if st.QUICRetries == 0 {
		t.Fatal("no Retry was asked of an address holding several connections")
	}
	closeAll()
	waitFor(t, "the server to release the closed connections", func() bool { return srv.Stats().QUICConns == 0 })

	// Eight source addresses (127.0.0.2-9, all loopback on Linux): the
	// global cap.
	var ips []string
	for i := 2; i <= 9; i++ {
		ips = append(ips, fmt.Sprintf("127.0.0.%d", i))
	}
	held, refused, closeAll = floodQUIC(t, srv.Addr(), ips, 40)
	defer closeAll()
	st = srv.Stats()
	var m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m1)
	t.Logf("8 sockets x 40 dials: %d held, %d refused; server holds %d (cap %d), refused %d in all; heap in use %+.1f MB (client and server)",
		len(held), refused, st.QUICConns, lim.MaxConns, st.QUICRefused, float64(int64(m1.HeapInuse)-int64(m0.HeapInuse))/(1<<20))
	if len(held) > lim.MaxConns || st.QUICConns > lim.MaxConns {
		t.Fatalf("%d connections held (server counts %d), global cap %d", len(held), st.QUICConns, lim.MaxConns)
	}
	if refused == 0 {
		t.Fatal("no connection refused beyond the global cap")
	}
	if len(srv.quicConns.byIP) > lim.MaxConns {
		t.Fatal("per-address state larger than the cap")
	}

	// A held connection still serves requests.
	c := NewClient(ClientOptions{Timeout: 5 * time.Second})
	defer c.Close()
	closeAll()
	waitFor(t, "slots to free", func() bool { return srv.Stats().QUICConns == 0 })
	if _, body, err := c.Do(context.Background(), Peer{Addr: srv.Addr(), Pin: pinOf(t, srv)}, "GET", "/", nil, nil, 1<<10); err != nil || string(body) != "HTTP/3.0" {
		t.Fatalf("after the flood: %q %v", body, err)
	}
}

func pinOf(t *testing.T, srv *Server) string {
	conn, err := tls.Dial("tcp", srv.Addr(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pin, err := PinOf(tls.Certificate{Certificate: [][]byte{conn.ConnectionState().PeerCertificates[0].Raw}})
	if err != nil {
		t.Fatal(err)
	}
	return pin
}

// TestStalledHeadersAreReset: request streams that sent one byte of a
// HEADERS frame are reset at the header deadline; a request whose headers
// came in time may send its body after that deadline.
func TestStalledHeadersAreReset(t *testing.T) {
	const deadline = 500 * time.Millisecond
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		w.Write(b)
	})
	srv := limitedServer(t, echo, Limits{HeaderTimeout: deadline, MaxStreams: 8, LimitLoopback: true})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, srv.Addr(), h3TLS(), &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")

	var strs []*quic.Stream
	for i := 0; i < 8; i++ {
		s, err := conn.OpenStream()
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		s.Write([]byte{0x01}) // the type of a HEADERS frame, and no more
		strs = append(strs, s)
	}
	if _, err := conn.OpenStream(); err == nil {
		t.Fatal("a ninth concurrent stream was allowed; cap 8")
	}
	start := time.Now()
	for i, s := range strs {
		s.SetReadDeadline(time.Now().Add(15 * time.Second))
		_, err := s.Read(make([]byte, 1))
		var se *quic.StreamError
		if !errors.As(err, &se) || se.ErrorCode != quic.StreamErrorCode(http3.ErrCodeRequestIncomplete) {
			t.Fatalf("stalled stream %d: %v, want a reset with H3_REQUEST_INCOMPLETE", i, err)
		}
	}
	if el := time.Since(start); el < deadline-100*time.Millisecond {
		t.Fatalf("stalled streams reset after %v, before the %v deadline", el, deadline)
	}
	t.Logf("8 stalled streams reset after %v (deadline %v)", time.Since(start).Round(time.Millisecond), deadline)

	// Headers in time, body later than the header deadline: served.
	tr := &http3.Transport{TLSClientConfig: h3TLS()}
	defer tr.Close()
	pr, pw := io.Pipe()
	go func() {
		time.Sleep(3 * deadline)
		pw.Write([]byte("late body"))
		pw.Close()
	}()
	req, _ := http.NewRequestWithContext(ctx, "POST", "https://"+srv.Addr()+"/", pr)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "late body" {
		t.Fatalf("a body after the header deadline: %d %q", resp.StatusCode, b)
	}
}

// TestTCPFloodIsCapped: TCP connections that send nothing are held up to
// the per-address and global caps, the rest are closed at accept, and the
// held ones are closed at the header deadline.
func TestTCPFloodIsCapped(t *testing.T) {
	lim := Limits{MaxConns: 20, MaxConnsPerIP: 8, HeaderTimeout: 1 * time.Second, LimitLoopback: true}
	for _, tc := range []struct {
		name     string
		plain    bool
		ips      []string
		per      int
		wantHeld int
	}{
		{"one address", false, []string{"127.0.0.1"}, 30, 8},
		{"four addresses", false, []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}, 10, 20},
		{"behind a proxy: global cap only", true, []string{"127.0.0.1"}, 30, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var srv *Server
			if tc.plain {
				var err error
				srv, err = Listen("127.0.0.1:0", okHandler(), ListenOptions{Limits: lim, Log: zerolog.Nop()})
				if err != nil {
					t.Fatal(err)
				}
				defer srv.Shutdown(context.Background())
			} else {
				srv = limitedServer(t, okHandler(), lim)
			}
			var conns []net.Conn
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			for _, ip := range tc.ips {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
				for i := 0; i < tc.per; i++ {
					c, err := d.Dial("tcp", srv.Addr())
					if err != nil {
						t.Fatal(err)
					}
					conns = append(conns, c)
				}
			}
			total := len(tc.ips) * tc.per
			waitFor(t, "the server to accept every connection", func() bool {
				st := srv.Stats()
				return st.TCPConns+int(st.TCPRefused) == total
			})
			st := srv.Stats()
			t.Logf("%d silent TCP connections: %d held, %d refused", total, st.TCPConns, st.TCPRefused)
			if st.TCPConns != tc.wantHeld || int(st.TCPRefused) != total-tc.wantHeld {
				t.Fatalf("held %d, refused %d; want %d held", st.TCPConns, st.TCPRefused, tc.wantHeld)
			}
			// Every connection ends: the refused at once, the held at the
			// header (TLS handshake) deadline.
			for i, c := range conns {
				c.SetReadDeadline(time.Now().Add(15 * time.Second))
				if _, err := c.Read(make([]byte, 1)); err == nil {
					t.Fatalf("connection %d got data", i)
				} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("connection %d was never closed by the server", i)
				}
			}
			waitFor(t, "the slots to be freed", func() bool { return srv.Stats().TCPConns == 0 })
		})
	}
}

func TestConnCounter(t *testing.T) {
	udp := func(ip string) net.Addr { return &net.UDPAddr{IP: net.ParseIP(ip), Port: 1} }
	c := newConnCounter(3, 2, false)
	var rel []func()
	for _, ip := range []string{"192.0.2.1", "192.0.2.1", "::ffff:192.0.2.1", "127.0.0.1", "127.0.0.1", "198.51.100.1"} {
		r, ok := c.acquire(udp(ip))
		if ok {
			rel = append(rel, r)
		}
	}
	// 192.0.2.1 twice (the mapped form is the same address), loopback
	// once more; then the global cap.
	if c.held() != 3 || c.refused.Load() != 3 {
		t.Fatalf("held %d refused %d", c.held(), c.refused.Load())
	}
	if !c.busy(udp("203.0.113.9"), 3, 4) || c.busy(udp("127.0.0.1"), 3, 4) {
		t.Fatal("busy: a full node asks a Retry of a remote address, never of loopback")
	}
	for _, r := range rel {
		r()
		r() // twice is harmless
	}
	if c.held() != 0 || c.addresses() != 0 {
		t.Fatalf("after release: held %d, %d addresses", c.held(), c.addresses())
	}
}

// TestQUICFloodMemory (SWARM_FLOOD_MEASURE=1) measures the server's heap
// and RSS under a flood from a separate process, with the default limits
// and with none, for docs/performance.md.
func TestQUICFloodMemory(t *testing.T) {
	if os.Getenv("SWARM_FLOOD_CHILD") != "" {
		floodChild(t)
		return
	}
	if os.Getenv("SWARM_FLOOD_MEASURE") == "" {
		t.Skip("set SWARM_FLOOD_MEASURE=1 to measure")
	}
	n, _ := strconv.Atoi(os.Getenv("SWARM_FLOOD_N"))
	if n == 0 {
		n = 4000
	}
	for _, tc := range []struct {
		name string
		lim  Limits
	}{
		{"no limits", Limits{MaxConns: -1, MaxConnsPerIP: -1, RetryAbove: -1, MaxStreams: 256}},
		{"default limits", Limits{LimitLoopback: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := limitedServer(t, okHandler(), tc.lim)
			runtime.GC()
			var m0 runtime.MemStats
			runtime.ReadMemStats(&m0)
			rss0 := rssMB()
			cmd := exec.Command(os.Args[0], "-test.run=^TestQUICFloodMemory$", "-test.count=1")
			cmd.Env = append(os.Environ(), "SWARM_FLOOD_CHILD="+srv.Addr(), "SWARM_FLOOD_N="+strconv.Itoa(n))
			stdin, _ := cmd.StdinPipe()
			out, _ := cmd.StdoutPipe()
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Wait()
			defer stdin.Close()
			var line string
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "FLOOD ") {
					line = sc.Text()
					break
				}
			}
			st := srv.Stats()
			runtime.GC()
			var m1 runtime.MemStats
			runtime.ReadMemStats(&m1)
			t.Logf("%s: attacker %s; server holds %d QUIC connections, refused %d, retries %d; server heap in use %+.1f MB (%.1f MB), stacks %.1f MB, goroutines %d, RSS %.1f -> %.1f MB",
				tc.name, line, st.QUICConns, st.QUICRefused, st.QUICRetries, float64(int64(m1.HeapInuse)-int64(m0.HeapInuse))/(1<<20), float64(m1.HeapInuse)/(1<<20), float64(m1.StackInuse)/(1<<20), runtime.NumGoroutine(), rss0, rssMB())
			stdin.Close()
			cmd.Wait()
			time.Sleep(time.Second)
			runtime.GC()
			runtime.ReadMemStats(&m1)
			if f := os.Getenv("SWARM_FLOOD_HEAP"); f != "" {
				hf, _ := os.Create(f + "." + strings.ReplaceAll(tc.name, " ", "_"))
				pprof.WriteHeapProfile(hf)
				hf.Close()
			}
			t.Logf("%s: attacker gone: heap in use %.1f MB, stacks %.1f MB, goroutines %d, RSS %.1f MB", tc.name, float64(m1.HeapInuse)/(1<<20), float64(m1.StackInuse)/(1<<20), runtime.NumGoroutine(), rssMB())
		})
	}
}

// floodChild is the attacker process: SWARM_FLOOD_N connections from one
// socket, held until stdin closes.
func floodChild(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SWARM_FLOOD_N"))
	held, refused, closeAll := floodQUIC(t, os.Getenv("SWARM_FLOOD_CHILD"), []string{"127.0.0.1"}, n)
	fmt.Printf("FLOOD held=%d refused=%d\n", len(held), refused)
	io.Copy(io.Discard, os.Stdin)
	closeAll()
}

func rssMB() float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
