package transport

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// The HTTP/3 side is served here rather than by http3.Server.ServeListener,
// because a request stream must get a deadline for its headers before
// http3 starts reading them, and ServeListener accepts the streams itself.
// http3.Server still parses and answers each request (RawServerConn).
//
// What this gives up: on a graceful shutdown there is no GOAWAY (the
// control stream is http3's). Requests in flight finish; new streams on an
// open connection are refused with H3_REQUEST_REJECTED, which says the
// request was not processed, and each connection is closed with
// H3_NO_ERROR once its requests are done.

// connCtx is the QUIC Transport's ConnContext: it takes a slot for the
// connection before quic-go allocates its state, refusing it
// (CONNECTION_REFUSED) beyond the caps, and gives the slot back when the
// connection ends (its context is done then, or when the handshake fails).
func (s *Server) connCtx(ctx context.Context, ci *quic.ClientInfo) (context.Context, error) {
	release, ok := s.quicConns.acquire(ci.RemoteAddr)
	if !ok {
		return nil, errTooManyConns
	}
	context.AfterFunc(ctx, release)
	return ctx, nil
}

// verifySource is the QUIC Transport's VerifySourceAddress: under load a
// new connection must first echo a Retry token, proving it owns its
// source address.
func (s *Server) verifySource(a net.Addr) bool {
	if s.quicConns.busy(a, s.limits.RetryAbove, defaultRetryPerIP) {
		s.retries.Add(1)
		return true
	}
	return false
}

func (s *Server) serveQUIC(ln *quic.EarlyListener) error {
	for {
		conn, err := ln.Accept(s.graceCtx)
		if err != nil {
			if s.graceCtx.Err() != nil || errors.Is(err, quic.ErrServerClosed) {
				return http.ErrServerClosed
			}
			return err
		}
		s.h3mu.Lock()
		if s.graceCtx.Err() != nil {
			s.h3mu.Unlock()
			conn.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), "")
			return http.ErrServerClosed
		}
		s.h3conns.Add(1)
		s.h3mu.Unlock()
		go func() {
			defer s.h3conns.Done()
			s.serveQUICConn(conn)
		}()
	}
}

func (s *Server) serveQUICConn(conn *quic.Conn) {
	hconn, err := s.h3.NewRawServerConn(conn)
	if err != nil {
		conn.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeInternalError), "")
		return
	}
	go func() {
		for {
			str, err := conn.AcceptUniStream(context.Background())
			if err != nil {
				return
			}
			go hconn.HandleUnidirectionalStream(str)
		}
	}()
	idle := newIdleTimer(h3IdleTimeout, func() {
		hconn.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), "idle timeout")
	})
	defer context.AfterFunc(conn.Context(), idle.stop)()
	var inflight sync.WaitGroup
	ctx, draining := s.graceCtx, false
	for {
		str, err := conn.AcceptStream(ctx)
		if err != nil {
			// Anything but the start of a graceful shutdown (the
			// connection closed, the grace period over) ends the loop.
			if draining || s.graceCtx.Err() == nil || conn.Context().Err() != nil || s.closeCtx.Err() != nil {
				break
			}
			// Graceful shutdown: keep refusing new streams until the
			// requests in flight are done, then close.
			ctx, draining = s.closeCtx, true
			go func() {
				inflight.Wait()
				hconn.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), "")
			}()
			continue
		}
		if draining {
			str.CancelRead(quic.StreamErrorCode(http3.ErrCodeRequestRejected))
			str.CancelWrite(quic.StreamErrorCode(http3.ErrCodeRequestRejected))
			continue
		}
		if d := s.limits.HeaderTimeout; d > 0 {
			// Cleared by headerDone once the handler runs. A stream whose
			// headers are late fails to parse and http3 resets it
			// (H3_REQUEST_INCOMPLETE).
			_ = str.SetReadDeadline(time.Now().Add(d))
		}
		idle.busy()
		inflight.Go(func() {
			defer idle.done()
			hconn.HandleRequestStream(str)
		})
	}
	if s.closeCtx.Err() != nil {
		hconn.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), "")
	}
	inflight.Wait()
}

// headerDone wraps the HTTP/3 handler: the headers are in, so the header
// deadline no longer applies (bodies have their own bound in the
// handlers).
func headerDone(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
		h.ServeHTTP(w, r)
	})
}

// h3IdleTimeout closes an HTTP/3 connection that has had no request for
// this long (QUIC keep-alives do not count).
const h3IdleTimeout = 90 * time.Second

// idleTimer fires when no request has been active for d. Unlike http3's,
// it is stopped when the connection ends, so it keeps nothing alive.
type idleTimer struct {
	d      time.Duration
	mu     sync.Mutex
	active int
	t      *time.Timer
}

func newIdleTimer(d time.Duration, f func()) *idleTimer {
	return &idleTimer{d: d, t: time.AfterFunc(d, f)}
}

func (i *idleTimer) busy() {
	i.mu.Lock()
	i.active++
	i.t.Stop()
	i.mu.Unlock()
}

func (i *idleTimer) done() {
	i.mu.Lock()
	if i.active--; i.active == 0 {
		i.t.Reset(i.d)
	}
	i.mu.Unlock()
}

func (i *idleTimer) stop() {
	i.mu.Lock()
	i.active = 1 << 30 // never again
	i.t.Stop()
	i.mu.Unlock()
}
