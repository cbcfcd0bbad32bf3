package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
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

// Server serves a handler on HTTP/3 (UDP) and HTTPS (TCP) on one port.
type Server struct {
	h3   *http3.Server
	tcp  *http.Server
	udp  net.PacketConn
	ln   net.Listener
	log  zerolog.Logger
	once sync.Once
	errc chan error
	addr string
}

// Listen binds addr on UDP and the same port on TCP and starts serving.
func Listen(addr string, cert tls.Certificate, h http.Handler, log zerolog.Logger) (*Server, error) {
	udp, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen udp %s: %w", addr, err)
	}
	// The TCP fallback uses the port UDP got, so an address ending in :0
	// still yields one port for both.
	ln, err := net.Listen("tcp", udp.LocalAddr().String())
	if err != nil {
		udp.Close()
		return nil, fmt.Errorf("listen tcp %s: %w", udp.LocalAddr(), err)
	}
	tlsConf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	s := &Server{
		udp:  udp,
		ln:   ln,
		log:  log,
		errc: make(chan error, 2),
		addr: udp.LocalAddr().String(),
		h3: &http3.Server{
			TLSConfig:      http3.ConfigureTLSConfig(tlsConf),
			QUICConfig:     quicConfig(),
			Handler:        h,
			MaxHeaderBytes: 16 << 10,
			IdleTimeout:    90 * time.Second,
		},
	}
	s.tcp = &http.Server{
		Handler:           altSvc(h, s.h3),
		TLSConfig:         tlsConf.Clone(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          nil,
	}
	go func() { s.errc <- s.h3.Serve(udp) }()
	go func() { s.errc <- s.tcp.ServeTLS(ln, "", "") }()
	return s, nil
}

// altSvc advertises HTTP/3 to clients that came over TCP.
func altSvc(h http.Handler, h3 *http3.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = h3.SetQUICHeaders(w.Header())
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
		// HTTP/3 first: it sends GOAWAY so peers stop opening streams,
		// then TCP, then the sockets (the order caddy uses).
		e1 := s.h3.Shutdown(ctx)
		e2 := s.tcp.Shutdown(ctx)
		s.h3.Close()
		s.udp.Close()
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

// Client dials peers over HTTP/3 and keeps one connection per peer.
type Client struct {
	h3   *http3.Transport
	hc   *http.Client
	mu   sync.RWMutex
	pins map[string]string // host:port -> pin
	once sync.Once
}

// ClientOptions tune a client.
type ClientOptions struct {
	RootCAs *x509.CertPool // for WebPKI peers; nil means the system roots
	Timeout time.Duration  // per request; 0 means 15 s
}

// NewClient makes a client.
func NewClient(o ClientOptions) *Client {
	c := &Client{pins: map[string]string{}}
	base := &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS13}
	c.h3 = &http3.Transport{
		TLSClientConfig: base,
		QUICConfig:      quicConfig(),
		Dial:            c.dial,
	}
	if o.Timeout == 0 {
		o.Timeout = 15 * time.Second
	}
	c.hc = &http.Client{Transport: c.h3, Timeout: o.Timeout}
	return c
}

// dial verifies a pinned peer by its pin instead of by a CA. Verification
// is never skipped: InsecureSkipVerify only hands the check to verifyPin.
func (c *Client) dial(ctx context.Context, addr string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
	c.mu.RLock()
	pin := c.pins[addr]
	c.mu.RUnlock()
	if pin != "" {
		tlsCfg = tlsCfg.Clone()
		tlsCfg.InsecureSkipVerify = true
		tlsCfg.VerifyConnection = verifyPin(pin)
	}
	return quic.DialAddrEarly(ctx, addr, tlsCfg, cfg)
}

// Do sends one request to a peer and reads the whole reply (at most
// maxReply bytes).
func (c *Client) Do(ctx context.Context, p Peer, method, path string, body []byte, hdr http.Header, maxReply int64) (int, []byte, error) {
	hp := p.hostport()
	c.mu.Lock()
	if old, ok := c.pins[hp]; ok && old != p.Pin {
		// A different peer (or a new certificate) at this address: the
		// cached connection was verified against the old pin.
		c.h3.CloseIdleConnections()
	}
	c.pins[hp] = p.Pin
	c.mu.Unlock()
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
	resp, err := c.hc.Do(req)
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
	c.once.Do(func() { err = c.h3.Close() })
	return err
}
