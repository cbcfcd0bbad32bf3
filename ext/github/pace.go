package github

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// GitHub asks integrations to make mutating requests (POST, PATCH, PUT,
// DELETE) serially and at least one second apart, or meet its secondary
// rate limits. Every write of a Client goes through its pacer: one at a
// time, each starting WriteGap after the previous one ended, whoever
// makes it (the queue, a direct Apply, a duplicate's deletion).

// WriteGap is the least time between two writes of one Client.
const WriteGap = time.Second

type pacer struct {
	gap   time.Duration
	now   func() time.Time
	sleep func(context.Context, time.Duration) error
	turn  chan struct{} // held during a write
	last  time.Time     // when the previous write ended; guarded by turn
}

func newPacer() pacer {
	return pacer{gap: WriteGap, now: time.Now, sleep: sleepCtx, turn: make(chan struct{}, 1)}
}

// SetPace replaces the write spacing and its clock (tests: a gap of 0,
// or an injected clock and sleep). now and sleep nil keep the real ones.
// Call it before the client is used.
func (c *Client) SetPace(gap time.Duration, now func() time.Time, sleep func(context.Context, time.Duration) error) {
	c.pace.gap = gap
	if now != nil {
		c.pace.now = now
	}
	if sleep != nil {
		c.pace.sleep = sleep
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func isWrite(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

// do sends one write in its turn.
func (p *pacer) do(req *http.Request, next http.RoundTripper) (*http.Response, error) {
	ctx := req.Context()
	select {
	case p.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, notSentError{ctx.Err()}
	}
	defer func() { <-p.turn }()
	if !p.last.IsZero() {
		if wait := p.last.Add(p.gap).Sub(p.now()); wait > 0 {
			if err := p.sleep(ctx, wait); err != nil {
				return nil, notSentError{err}
			}
		}
	}
	if f, ok := ctx.Value(sentKey{}).(*atomic.Bool); ok {
		f.Store(true)
	}
	resp, err := next.RoundTrip(req)
	p.last = p.now() // the gap runs from the end of a request sent
	return resp, err
}

// sentKey marks a write's context with a flag the pacer sets when the
// request is handed to the network: go-github reports a cancelled
// context as ctx.Err(), which would hide that it never left.
type sentKey struct{}

// withSentFlag returns ctx and the flag that says the write went out.
func withSentFlag(ctx context.Context) (context.Context, *atomic.Bool) {
	f := new(atomic.Bool)
	return context.WithValue(ctx, sentKey{}, f), f
}

// notSentError is a failure before the request left this process: it
// cannot have reached GitHub, so nothing needs checking before a retry.
type notSentError struct{ err error }

func (e notSentError) Error() string { return fmt.Sprintf("github: request not sent: %v", e.err) }
func (e notSentError) Unwrap() error { return e.err }

// notSent reports whether err shows that the request never reached
// GitHub: it waited its turn in vain, had no token, or could not even
// connect. Other network errors leave that open.
func notSent(err error) bool {
	var ns notSentError
	var op *net.OpError
	return errors.As(err, &ns) || errors.Is(err, ErrNoToken) || (errors.As(err, &op) && op.Op == "dial")
}
