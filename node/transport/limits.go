package transport

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the connection limits (DESIGN §5): a small agent node has a
// few hundred peers at most, and each keeps one connection to it.
const (
	// DefaultMaxConns bounds QUIC connections (handshaking or open) and,
	// counted apart, TCP connections. An open QUIC connection costs
	// ~75 KB before any stream, so 512 cost ~40 MB.
	DefaultMaxConns = 512
	// DefaultMaxConnsPerIP bounds connections from one remote address:
	// room for a NAT with dozens of agents behind it, while one host
	// alone cannot take the global cap.
	DefaultMaxConnsPerIP = 64
	// DefaultRetryAbove: with this many QUIC connections open, a new
	// connection first proves its source address (QUIC Retry, one more
	// round trip), so spoofed Initials cannot hold slots.
	DefaultRetryAbove = 64
	// defaultRetryPerIP: an address that already holds this many
	// connections proves itself before it gets another.
	defaultRetryPerIP = 4
	// DefaultMaxStreams bounds concurrent request streams per QUIC
	// connection (and HTTP/2 streams per TCP connection). The node's
	// client batches per peer and needs a handful.
	DefaultMaxStreams = 32
	// defaultMaxUniStreams: HTTP/3 needs three (control, QPACK encoder
	// and decoder); the rest is slack for unknown stream types.
	defaultMaxUniStreams = 8
	// DefaultHeaderTimeout is how long a request's headers may take to
	// arrive, on an HTTP/3 stream as on a TCP connection.
	DefaultHeaderTimeout = 10 * time.Second
	// DefaultHandshakeTimeout bounds a QUIC handshake that makes no
	// progress (quic-go gives up after twice this in any case).
	DefaultHandshakeTimeout = 5 * time.Second
)

// Limits say how many connections and streams outsiders may hold. The
// zero value is the defaults; a negative number switches a limit off.
type Limits struct {
	MaxConns      int           // QUIC connections at once; TCP counted apart
	MaxConnsPerIP int           // of those, from one remote address
	RetryAbove    int           // QUIC connections beyond which a new one must pass a Retry
	MaxStreams    int           // concurrent request streams per connection
	HeaderTimeout time.Duration // to receive a request's headers
	// HandshakeTimeout bounds a QUIC handshake without progress.
	HandshakeTimeout time.Duration
	// LimitLoopback applies the per-address limits and Retry to loopback
	// sources too. Off by default: local agents and a proxy on the same
	// host all share 127.0.0.1, and a loopback source cannot be spoofed
	// from the network. Tests turn it on.
	LimitLoopback bool
}

func orDefault[T int | time.Duration](v, d T) T {
	switch {
	case v == 0:
		return d
	case v < 0:
		return 0 // off
	}
	return v
}

// withDefaults resolves zero values; a limit that is off is 0.
func (l Limits) withDefaults() Limits {
	l.MaxConns = orDefault(l.MaxConns, DefaultMaxConns)
	l.MaxConnsPerIP = orDefault(l.MaxConnsPerIP, DefaultMaxConnsPerIP)
	l.RetryAbove = orDefault(l.RetryAbove, DefaultRetryAbove)
	l.MaxStreams = orDefault(l.MaxStreams, DefaultMaxStreams)
	l.HeaderTimeout = orDefault(l.HeaderTimeout, DefaultHeaderTimeout)
	l.HandshakeTimeout = orDefault(l.HandshakeTimeout, DefaultHandshakeTimeout)
	return l
}

// Stats count what the limits did, for logs and tests.
type Stats struct {
	QUICConns   int   // QUIC connections now held (handshaking or open)
	QUICRefused int64 // QUIC connections refused by a cap
	QUICRetries int64 // Initials answered with a Retry (address validation)
	TCPConns    int   // TCP connections now held
	TCPRefused  int64 // TCP connections closed at accept by a cap
}

var errTooManyConns = errors.New("too many connections")

// connCounter counts connections, globally and per source address. Its
// map holds only addresses with a connection, so it is never larger than
// the global cap.
type connCounter struct {
	max, perIP    int // 0: no cap
	limitLoopback bool

	mu      sync.Mutex
	total   int
	byIP    map[netip.Addr]int
	refused atomic.Int64
}

func newConnCounter(max, perIP int, limitLoopback bool) *connCounter {
	return &connCounter{max: max, perIP: perIP, limitLoopback: limitLoopback, byIP: map[netip.Addr]int{}}
}

func addrIP(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// perAddress says whether ip is subject to the per-address limits.
func (c *connCounter) perAddress(ip netip.Addr) bool {
	return ip.IsValid() && (c.limitLoopback || !ip.IsLoopback())
}

// acquire takes a slot for a connection from a, or reports that a cap is
// reached. release gives the slot back; calling it more than once is safe.
func (c *connCounter) acquire(a net.Addr) (release func(), ok bool) {
	ip := addrIP(a)
	per := c.perAddress(ip)
	c.mu.Lock()
	if (c.max > 0 && c.total >= c.max) || (per && c.perIP > 0 && c.byIP[ip] >= c.perIP) {
		c.mu.Unlock()
		c.refused.Add(1)
		return nil, false
	}
	c.total++
	if per {
		c.byIP[ip]++
	}
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			c.total--
			if per {
				if c.byIP[ip] <= 1 {
					delete(c.byIP, ip)
				} else {
					c.byIP[ip]--
				}
			}
			c.mu.Unlock()
		})
	}, true
}

// busy says whether a new connection from a must first validate its
// address: the node holds many connections, or a holds several.
func (c *connCounter) busy(a net.Addr, above, perIP int) bool {
	ip := addrIP(a)
	per := c.perAddress(ip)
	if !per && ip.IsValid() {
		return false // loopback, not limited
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return (above > 0 && c.total >= above) || (per && perIP > 0 && c.byIP[ip] >= perIP)
}

func (c *connCounter) held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

func (c *connCounter) addresses() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byIP)
}

// limitListener refuses TCP connections beyond the caps by closing them
// at once (rather than leaving them in the kernel's queue, where they
// would block honest peers too), and gives the slot back on Close.
type limitListener struct {
	net.Listener
	c *connCounter
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		release, ok := l.c.acquire(conn.RemoteAddr())
		if !ok {
			conn.Close()
			continue
		}
		return &countedConn{Conn: conn, release: release}, nil
	}
}

type countedConn struct {
	net.Conn
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
