package transport

// How the client notices that HTTP/3 to a peer stopped working, in
// seconds rather than after the 60 s idle timeout (docs/deploy.md, "How
// peers reach a node whose UDP is blocked"):
//
//   - the kernel refuses to send our UDP (a local firewall's OUTPUT drop
//     gives EPERM, no route ENETUNREACH, ...): udpSocket records the error,
//     which quic-go itself only keeps as text;
//   - an open connection goes silent (UDP dropped on the path, or the peer's
//     QUIC endpoint replaced by a process whose stateless resets we cannot
//     recognise): stallWatch closes it when a request gets no packet at all
//     back within answerTimeout.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// answerTimeout is how long a request on an open QUIC connection may go
// without a single packet back before the connection counts as dead. A
// live peer acknowledges the request's packets within a round trip plus
// its 25 ms ACK delay, and QUIC retransmits unanswered packets after each
// probe timeout (PTO), so in 3 s a live peer on any sane path has answered
// several times over; a slow handler does not matter, the ACK comes
// first. Paths with a PTO over 1 s get 3 PTOs (stallLimit).
const answerTimeout = 3 * time.Second

// stallMsg is the reason given when the client closes a silent
// connection; requests that shared it are tried again on a new one.
const stallMsg = "swarm: no answer from the peer"

// errStalled: a request's connection went silent.
var errStalled = errors.New("no answer over QUIC on an open connection")

// sendError is a UDP send the kernel refused: TCP may get through where
// UDP may not (a local firewall), so it is a reason to fall back.
type sendError struct {
	sys  error // the socket's error, e.g. sendmsg: operation not permitted
	quic error // what quic-go made of it
}

func (e *sendError) Error() string {
	return fmt.Sprintf("sending UDP: %v", e.sys)
}

func (e *sendError) Unwrap() []error { return []error{e.sys, e.quic} }

// udpSocket is the client's UDP socket for one connection. It remembers
// the error of its last failed write until a write succeeds: quic-go
// reports a failed send during the handshake only as the text of an
// INTERNAL_ERROR. Embedding *net.UDPConn keeps quic-go's batched and GSO
// I/O (it looks for the OOBCapablePacketConn methods).
type udpSocket struct {
	*net.UDPConn
	err atomic.Pointer[error]
}

func (s *udpSocket) WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (int, int, error) {
	n, oobn, err := s.UDPConn.WriteMsgUDP(b, oob, addr)
	s.note(err)
	return n, oobn, err
}

func (s *udpSocket) WriteTo(b []byte, addr net.Addr) (int, error) {
	n, err := s.UDPConn.WriteTo(b, addr)
	s.note(err)
	return n, err
}

func (s *udpSocket) note(err error) {
	if err != nil {
		s.err.Store(&err)
	} else if s.err.Load() != nil {
		s.err.Store(nil)
	}
}

// sendErr is the error of the last write if it failed.
func (s *udpSocket) sendErr() error {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

// dialQUIC opens a connection on a UDP socket of its own (as
// quic.DialAddrEarly does) and keeps it in c.conns for stallWatch. The
// socket is closed with the connection.
func (c *Client) dialQUIC(ctx context.Context, to string, tc *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
	ua, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		return nil, err
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		return nil, err
	}
	sock := &udpSocket{UDPConn: udp}
	conn, err := quic.DialEarly(ctx, sock, ua, tc, cfg)
	if err != nil {
		udp.Close()
		if serr := sock.sendErr(); serr != nil {
			return nil, &sendError{sys: serr, quic: err}
		}
		return nil, err
	}
	key := conn.LocalAddr().String()
	c.cmu.Lock()
	c.conns[key] = conn
	c.cmu.Unlock()
	go func() {
		<-conn.Context().Done()
		udp.Close()
		c.cmu.Lock()
		if c.conns[key] == conn {
			delete(c.conns, key)
		}
		c.cmu.Unlock()
	}()
	return conn, nil
}

// connAt is the open connection on a local address.
func (c *Client) connAt(local string) *quic.Conn {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	return c.conns[local]
}

// stallWatch watches one HTTP/3 request: once it has a connection, if
// nothing at all comes back on that connection within stallLimit, the
// request is cancelled with errStalled and the connection closed, so the
// next request dials a new one.
type stallWatch struct {
	c      *Client
	cancel context.CancelCauseFunc

	mu    sync.Mutex
	timer *time.Timer
	over  bool
}

// watchH3 returns ctx with the watch attached; call stop when the
// request is over.
func (c *Client) watchH3(ctx context.Context) (context.Context, *stallWatch) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &stallWatch{c: c, cancel: cancel}
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: w.gotConn}), w
}

// gotConn runs when http3 hands the request a connection (again, if it
// retries on a new one itself).
func (w *stallWatch) gotConn(info httptrace.GotConnInfo) {
	conn := w.c.connAt(info.Conn.LocalAddr().String())
	if conn == nil {
		return
	}
	before := conn.ConnectionStats()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.over {
		return
	}
	if w.timer != nil {
		w.timer.Stop()
	}
	w.timer = time.AfterFunc(stallLimit(before), func() {
		if conn.ConnectionStats().PacketsReceived != before.PacketsReceived {
			return // the peer answers; a slow reply is the request timeout's business
		}
		w.mu.Lock()
		over := w.over
		w.mu.Unlock()
		if over {
			return
		}
		// Closed first: the request's retry must not find it still open
		// in http3's pool.
		conn.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), stallMsg)
		w.cancel(errStalled)
	})
}

// stop ends the watch; it reports whether the request was cancelled
// because its connection went silent.
func (w *stallWatch) stop(ctx context.Context) bool {
	w.mu.Lock()
	w.over = true
	if w.timer != nil {
		w.timer.Stop()
	}
	w.mu.Unlock()
	stalled := errors.Is(context.Cause(ctx), errStalled)
	w.cancel(nil)
	return stalled
}

// stallLimit is answerTimeout, or three probe timeouts on a slow path.
func stallLimit(s quic.ConnectionStats) time.Duration {
	pto := s.SmoothedRTT + max(4*s.MeanDeviation, time.Millisecond) + 25*time.Millisecond
	return max(answerTimeout, 3*pto)
}

// newConnMayHelp says whether an HTTP/3 failure is worth one more try
// on a new connection before TCP: the peer reset the connection (it
// restarted, the request was lost with the old process), or the
// connection went silent (UDP cut, or the peer restarted with a reset key
// we do not know; the new handshake tells which).
func newConnMayHelp(err error) bool {
	var reset *quic.StatelessResetError
	return errors.As(err, &reset) || stalled(err)
}

// stalled: the request's connection went silent, seen by its own watch or
// by that of another request on the same connection, which closed it.
func stalled(err error) bool {
	var app *quic.ApplicationError
	return errors.Is(err, errStalled) ||
		errors.As(err, &app) && !app.Remote && app.ErrorMessage == stallMsg
}
