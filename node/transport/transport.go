package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/rs/zerolog"
)

// quicConfig keeps one connection per peer alive between messages: a new
// QUIC handshake costs milliseconds of CPU.
func quicConfig() *quic.Config {
	return &quic.Config{
		KeepAlivePeriod:    10 * time.Second,
		MaxIdleTimeout:     60 * time.Second,
		MaxIncomingStreams: 256,
		Allow0RTT:          true,
	}
}

// Server serves the peer API: HTTP/3 on UDP and HTTPS (HTTP/2) over TCP on
// one port in standalone mode, or plain HTTP/1.1 on a loopback port when a
// proxy in front terminates TLS and QUIC (behind-Angie mode).
type Server struct {
	h3   *http3.Server // nil without QUIC
	tr   *quic.Transport
	ql   *quic.EarlyListener
	tcp  *http.Server
	udp  net.PacketConn
	ln   net.Listener
	log  zerolog.Logger
	once sync.Once
	errc chan error
	addr string

	limits    Limits
	quicConns *connCounter
	tcpConns  *connCounter
	retries   atomic.Int64
	// graceCtx ends at Shutdown (stop taking connections and streams),
	// closeCtx when the grace period is over (close what is left).
	graceCtx, closeCtx       context.Context
	graceCancel, closeCancel context.CancelFunc
	h3mu                     sync.Mutex // orders h3conns.Add before Wait
	h3conns                  sync.WaitGroup
}

// ListenOptions say how to serve.
type ListenOptions struct {
	// Certs for TLS. Nil means plain HTTP/1.1, allowed only on loopback:
	// the proxy in front is the TLS endpoint.
	Certs *Certs
	// NoQUIC serves only HTTPS over TCP (a host whose UDP is blocked).
	NoQUIC bool
	// ResetKey lets a restarted node reset the QUIC connections its
	// previous process had: peers learn at once that it restarted
	// instead of waiting out the idle timeout. It must be the same across
	// restarts (derive it from the node's key).
	ResetKey *quic.StatelessResetKey
	// Limits against connection floods; the zero value is the defaults.
	Limits
	Log zerolog.Logger
}

// Listen binds addr and starts serving h.
func Listen(addr string, h http.Handler, o ListenOptions) (*Server, error) {
	if o.Certs == nil {
		return listenPlain(addr, h, o)
	}
	s := newServer(o, 2)
	tlsConf := &tls.Config{GetCertificate: o.Certs.GetCertificate, MinVersion: tls.VersionTLS13}
	tcpAddr := addr
	if !o.NoQUIC {
		udp, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, err // it says "listen udp ADDR: …" itself
		}
		// TCP takes the port UDP got, so an address ending in :0 still
		// yields one port for both.
		s.udp, tcpAddr = udp, udp.LocalAddr().String()
		s.h3 = &http3.Server{
			TLSConfig:      http3.ConfigureTLSConfig(tlsConf),
			QUICConfig:     s.serverQUICConfig(),
			Handler:        headerDone(h),
			MaxHeaderBytes: 16 << 10,
			// No IdleTimeout: http3's idle timer outlives the connection
			// and keeps its memory for that long after it closed, which a
			// peer that connects and leaves in a loop turns into a flood
			// past the caps. serveQUICConn keeps its own (h3IdleTimeout).
		}
		s.tr = &quic.Transport{
			Conn:                udp,
			StatelessResetKey:   o.ResetKey,
			ConnContext:         s.connCtx,
			VerifySourceAddress: s.verifySource,
		}
	}
	ln, err := net.Listen("tcp", tcpAddr)
	if err != nil {
		if s.udp != nil {
			s.udp.Close()
		}
		return nil, err // it says "listen tcp ADDR: …" itself
	}
	s.ln, s.addr = &limitListener{Listener: ln, c: s.tcpConns}, ln.Addr().String()
	tcpTLS := tlsConf.Clone()
	tcpTLS.NextProtos = []string{"h2", "http/1.1"}
	s.tcp = s.newHTTPServer(altSvc(h, s.h3, ln.Addr().(*net.TCPAddr).Port))
	s.tcp.TLSConfig = tcpTLS
	s.tcp.ErrorLog = stdlog.New(zlWriter{o.Log}, "", 0)
	if s.h3 != nil {
		ql, err := s.tr.ListenEarly(s.h3.TLSConfig, s.h3.QUICConfig)
		if err != nil {
			ln.Close()
			s.udp.Close()
			return nil, fmt.Errorf("listen quic %s: %w", s.addr, err)
		}
		s.ql = ql
		go func() { s.errc <- s.serveQUIC(ql) }()
	}
	go func() { s.errc <- s.tcp.ServeTLS(s.ln, "", "") }()
	return s, nil
}

func newServer(o ListenOptions, nerr int) *Server {
	s := &Server{log: o.Log, errc: make(chan error, nerr), limits: o.Limits.withDefaults()}
	s.quicConns = newConnCounter(s.limits.MaxConns, s.limits.MaxConnsPerIP, s.limits.LimitLoopback)
	s.tcpConns = newConnCounter(s.limits.MaxConns, s.limits.MaxConnsPerIP, s.limits.LimitLoopback)
	s.graceCtx, s.graceCancel = context.WithCancel(context.Background())
	s.closeCtx, s.closeCancel = context.WithCancel(context.Background())
	return s
}

// serverQUICConfig is quicConfig with the limits of a server: fewer
// streams per connection and a bounded handshake.
func (s *Server) serverQUICConfig() *quic.Config {
	c := quicConfig()
	c.MaxIncomingStreams = int64(s.limits.MaxStreams)
	if s.limits.MaxStreams == 0 {
		c.MaxIncomingStreams = 256 // off: the client's value
	}
	c.MaxIncomingUniStreams = defaultMaxUniStreams
	c.HandshakeIdleTimeout = s.limits.HandshakeTimeout
	// Flow-control windows bound what a peer can make quic-go buffer
	// before the handler reads it (a stream whose headers never finish,
	// for up to the header deadline): a connection starts at 256 KiB
	// (quic-go: 768 KiB), so 512 connections hold at most 128 MiB unread;
	// windows grow, up to 8 MiB (quic-go: 15 MB), only while the handler
	// reads fast, and what it reads is charged to the node's body budget.
	c.InitialStreamReceiveWindow = 128 << 10
	c.MaxStreamReceiveWindow = 2 << 20
	c.InitialConnectionReceiveWindow = 256 << 10
	c.MaxConnectionReceiveWindow = 8 << 20
	return c
}

// Stats say what the connection limits hold and refused.
func (s *Server) Stats() Stats {
	return Stats{
		QUICConns:   s.quicConns.held(),
		QUICRefused: s.quicConns.refused.Load(),
		QUICRetries: s.retries.Load(),
		TCPConns:    s.tcpConns.held(),
		TCPRefused:  s.tcpConns.refused.Load(),
	}
}

// listenPlain serves HTTP/1.1 without TLS for a proxy on the same host.
// Every connection comes from the proxy, so only the global cap applies
// (the proxy's own limits are per client).
func listenPlain(addr string, h http.Handler, o ListenOptions) (*Server, error) {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("behind a proxy the node listens on a loopback address, not %q: X-Forwarded-For is trusted only from loopback", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err // it says "listen tcp ADDR: …" itself
	}
	s := newServer(o, 1)
	s.tcpConns.perIP = 0
	s.ln, s.addr = &limitListener{Listener: ln, c: s.tcpConns}, ln.Addr().String()
	s.tcp = s.newHTTPServer(h)
	s.tcp.ErrorLog = stdlog.New(zlWriter{o.Log}, "", 0)
	go func() { s.errc <- s.tcp.Serve(s.ln) }()
	return s, nil
}

// newHTTPServer is the TCP side. ReadHeaderTimeout also bounds the TLS
// handshake (net/http takes the least of its timeouts for it); an idle
// keep-alive connection is closed after IdleTimeout.
func (s *Server) newHTTPServer(h http.Handler) *http.Server {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.limits.HeaderTimeout,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	if s.limits.MaxStreams > 0 {
		hs.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: s.limits.MaxStreams}
	}
	return hs
}

// zlWriter sends net/http's own error lines (TLS handshake failures of
// scanners and the like) to the node's log at debug level, not stderr.
type zlWriter struct{ l zerolog.Logger }

func (w zlWriter) Write(p []byte) (int, error) {
	w.l.Debug().Str("component", "https").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// altSvc advertises HTTP/3 (on the same port) to clients that came over
// TCP. http3.Server.SetQUICHeaders would need its ServeListener, which
// this package does not use (h3serve.go).
func altSvc(h http.Handler, h3 *http3.Server, port int) http.Handler {
	if h3 == nil {
		return h
	}
	v := []string{fmt.Sprintf(`%s=":%d"; ma=2592000`, http3.NextProtoH3, port)}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Alt-Svc"] = v
		h.ServeHTTP(w, r)
	})
}

// Addr is the bound host:port.
func (s *Server) Addr() string { return s.addr }

// Shutdown stops accepting, lets in-flight requests finish until ctx ends,
// then closes the sockets. Safe to call twice.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		// HTTP/3 first: it stops taking connections and streams and lets
		// the requests in flight finish; then TCP, then the sockets (the
		// order caddy uses).
		var e1 error
		s.h3mu.Lock()
		s.graceCancel()
		s.h3mu.Unlock()
		if s.h3 != nil {
			s.ql.Close()
			done := make(chan struct{})
			go func() { s.h3conns.Wait(); close(done) }()
			select {
			case <-done:
			case <-ctx.Done():
				e1 = ctx.Err()
			}
		}
		e2 := s.tcp.Shutdown(ctx)
		s.closeCancel()
		if s.h3 != nil {
			s.tr.Close()
			s.udp.Close()
		}
		err = errors.Join(ignoreClosed(e1), ignoreClosed(e2))
	})
	return err
}

func ignoreClosed(err error) error {
	if err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, quic.ErrServerClosed) || errors.Is(err, net.ErrClosed) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Peer says where a peer is and how to verify it.
type Peer struct {
	Addr string // host:port or https://host[:port]
	Pin  string // SPKI pin; empty means verify by WebPKI
}

// BaseURL is the peer's origin.
func (p Peer) BaseURL() string {
	if strings.HasPrefix(p.Addr, "https://") {
		return p.Addr
	}
	return "https://" + p.Addr
}

func (p Peer) hostport() string {
	h := strings.TrimPrefix(p.Addr, "https://")
	if _, _, err := net.SplitHostPort(h); err != nil {
		return net.JoinHostPort(h, "443")
	}
	return h
}

// Client dials peers over HTTP/3 and keeps one connection per peer. When
// a peer cannot be reached over QUIC (UDP blocked on its side or ours), it
// sends over HTTP/2 on TCP to the same origin instead, remembers that for
// the peer, and tries HTTP/3 again after RetryH3.
type Client struct {
	h3      *http3.Transport
	h2      *http.Transport
	hc3     *http.Client
	hc2     *http.Client
	retryH3 time.Duration
	now     func() time.Time
	tcpTLS  *tls.Config // base for HTTP/2 dials
	resolve func(string) string

	mu   sync.RWMutex
	pins map[string]string    // host:port -> pin
	tcp  map[string]time.Time // host:port -> when to try HTTP/3 again
	once sync.Once

	cmu   sync.Mutex
	conns map[string]*quic.Conn // local UDP address -> open connection (stallWatch)
}

// ClientOptions tune a client.
type ClientOptions struct {
	RootCAs *x509.CertPool // for WebPKI peers; nil means the system roots
	Timeout time.Duration  // per request; 0 means 15 s
	// RetryH3 is how long a peer that needed TCP is sent to over TCP
	// before HTTP/3 is tried again; 0 means 10 minutes.
	RetryH3 time.Duration
	// Resolve maps a host:port to the address actually dialled, the TLS
	// name staying the original host (tests stand up "real" domains on
	// loopback with it); nil dials as given.
	Resolve func(hostport string) string
}

// quicHandshakeTimeout bounds how long an unanswered QUIC handshake delays
// the fallback to TCP.
const quicHandshakeTimeout = 3 * time.Second

// NewClient makes a client.
func NewClient(o ClientOptions) *Client {
	c := &Client{pins: map[string]string{}, tcp: map[string]time.Time{}, conns: map[string]*quic.Conn{}, retryH3: o.RetryH3, now: time.Now, resolve: o.Resolve}
	if c.retryH3 <= 0 {
		c.retryH3 = 10 * time.Minute
	}
	base := &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS13}
	qc := quicConfig()
	qc.HandshakeIdleTimeout = quicHandshakeTimeout
	c.h3 = &http3.Transport{TLSClientConfig: base, QUICConfig: qc, Dial: c.dial}
	// Each transport gets its own copy: net/http rewrites its config's
	// NextProtos on first use, while quic-go clones its own at each dial.
	c.tcpTLS = base.Clone()
	c.h2 = &http.Transport{
		TLSClientConfig:     base.Clone(),
		DialTLSContext:      c.dialTCP,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	if o.Timeout == 0 {
		o.Timeout = 15 * time.Second
	}
	c.hc3 = &http.Client{Transport: c.h3, Timeout: o.Timeout}
	c.hc2 = &http.Client{Transport: c.h2, Timeout: o.Timeout}
	return c
}

// tlsFor is the TLS config for addr: by pin when the membership log gives
// one, else WebPKI. Verification is never skipped: InsecureSkipVerify
// only hands the check to verifyPin.
func (c *Client) tlsFor(addr string, base *tls.Config) *tls.Config {
	c.mu.RLock()
	pin := c.pins[addr]
	c.mu.RUnlock()
	if pin == "" {
		return base
	}
	cfg := base.Clone()
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = verifyPin(pin)
	return cfg
}

func (c *Client) dial(ctx context.Context, addr string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
	tc, to := c.tlsFor(addr, tlsCfg), c.target(addr)
	if to != addr && tc.ServerName == "" {
		tc = tc.Clone()
		tc.ServerName, _, _ = net.SplitHostPort(addr)
	}
	return c.dialQUIC(ctx, to, tc, cfg)
}

// target is the address to dial for addr.
func (c *Client) target(addr string) string {
	if c.resolve == nil {
		return addr
	}
	return c.resolve(addr)
}

func (c *Client) dialTCP(ctx context.Context, network, addr string) (net.Conn, error) {
	cfg := c.tlsFor(addr, c.tcpTLS).Clone()
	cfg.NextProtos = []string{"h2", "http/1.1"}
	if cfg.ServerName == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
	}
	d := tls.Dialer{Config: cfg}
	return d.DialContext(ctx, network, c.target(addr))
}

// Via says how the next request to p goes: "h3" or "h2" (TCP fallback).
func (c *Client) Via(p Peer) string {
	if c.overTCP(p.hostport()) {
		return "h2"
	}
	return "h3"
}

func (c *Client) overTCP(hp string) bool {
	c.mu.RLock()
	until, ok := c.tcp[hp]
	c.mu.RUnlock()
	return ok && c.now().Before(until)
}

func (c *Client) setTCP(hp string, on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if on {
		c.tcp[hp] = c.now().Add(c.retryH3)
	} else {
		delete(c.tcp, hp)
	}
}

// unreachable reports a QUIC failure that TCP may get around: no answer
// to the handshake, an open connection gone silent, a UDP send the kernel
// refused (a local firewall: EPERM, EACCES; no route: ENETUNREACH, ...),
// or another socket error. A refused certificate is not one.
func unreachable(err error) bool {
	var hto *quic.HandshakeTimeoutError
	var ito *quic.IdleTimeoutError
	var send *sendError
	var op *net.OpError
	return errors.As(err, &hto) || errors.As(err, &ito) || stalled(err) ||
		errors.As(err, &send) || errors.As(err, &op)
}

// Do sends one request to a peer and reads the whole reply (at most
// maxReply bytes). Requests are safe to repeat (envelopes carry IDs the
// receiver deduplicates), so a request that failed on QUIC is sent again
// over TCP.
func (c *Client) Do(ctx context.Context, p Peer, method, path string, body []byte, hdr http.Header, maxReply int64) (int, []byte, error) {
	hp := p.hostport()
	c.mu.Lock()
	if old, ok := c.pins[hp]; ok && old != p.Pin {
		// A different peer (or a new certificate) at this address: cached
		// connections were verified against the old pin.
		c.h3.CloseIdleConnections()
		c.h2.CloseIdleConnections()
	}
	c.pins[hp] = p.Pin
	c.mu.Unlock()
	if c.overTCP(hp) {
		return c.do(ctx, c.hc2, p, method, path, body, hdr, maxReply)
	}
	code, b, err := c.doH3(ctx, p, method, path, body, hdr, maxReply)
	if newConnMayHelp(err) && ctx.Err() == nil {
		// The peer restarted (it reset the connection, or it cannot and
		// the connection went silent), so the new process never saw the
		// request; or UDP stopped on the way. Send it again on a new
		// connection: its handshake fails within quicHandshakeTimeout if
		// UDP is gone, and then TCP is tried.
		code, b, err = c.doH3(ctx, p, method, path, body, hdr, maxReply)
	}
	if err == nil || !unreachable(err) || ctx.Err() != nil {
		if err == nil {
			c.setTCP(hp, false)
		}
		return code, b, err
	}
	code, b, err2 := c.do(ctx, c.hc2, p, method, path, body, hdr, maxReply)
	if err2 != nil {
		return code, b, fmt.Errorf("HTTP/3: %v; HTTP/2 over TCP: %w", err, err2)
	}
	c.setTCP(hp, true)
	return code, b, nil
}

// doH3 is do over HTTP/3 with a stallWatch on the connection.
func (c *Client) doH3(ctx context.Context, p Peer, method, path string, body []byte, hdr http.Header, maxReply int64) (int, []byte, error) {
	wctx, w := c.watchH3(ctx)
	code, b, err := c.do(wctx, c.hc3, p, method, path, body, hdr, maxReply)
	if w.stop(wctx) && err != nil && ctx.Err() == nil {
		err = fmt.Errorf("%w (%s): %v", errStalled, p.hostport(), err)
	}
	return code, b, err
}

func (c *Client) do(ctx context.Context, hc *http.Client, p Peer, method, path string, body []byte, hdr http.Header, maxReply int64) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.BaseURL()+path, rd)
	if err != nil {
		return 0, nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if int64(len(b)) > maxReply {
		return resp.StatusCode, nil, fmt.Errorf("reply exceeds %d bytes", maxReply)
	}
	return resp.StatusCode, b, nil
}

// Close closes every connection. Safe to call twice.
func (c *Client) Close() error {
	var err error
	c.once.Do(func() {
		c.h2.CloseIdleConnections()
		err = c.h3.Close()
	})
	return err
}
