package github

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/agent-swarm/agent-swarm/store"
)

// Store prefixes of the queue (see the package comment).
const (
	prefixQueue = "gh/q/"
	keySeq      = "gh/qseq"
	prefixDead  = "gh/qdead/"

	minLimitWait = time.Second
)

// QueueOptions tune a Queue; zero values get defaults.
type QueueOptions struct {
	Now   func() time.Time                     // default time.Now
	After func(time.Duration) <-chan time.Time // default time.After
	// OnDone is called once per write: with err nil when it completed,
	// or with the error for which it was given up.
	OnDone      func(w Write, r Result, err error)
	Backoff     time.Duration // first retry delay after a transient error; default 1 s
	MaxBackoff  time.Duration // default 5 min
	MaxAttempts int           // transient / auth failures before giving up; default 20
	ResetSlack  time.Duration // margin after a primary reset time (clock skew); default 1 s
}

// Queue runs GitHub writes durably and in order. Writes survive restarts;
// a write is removed only once GitHub accepted all of it, or refused it
// for good (kept under gh/qdead/ then).
type Queue struct {
	st   *store.Store
	c    *Client
	log  zerolog.Logger
	o    QueueOptions
	wake chan struct{}
	run  sync.Mutex // one worker at a time

	mu         sync.Mutex
	limitUntil time.Time // a rate limit applies to every write, not just the head
	nextAt     time.Time
	lastErr    string
	// tokens: the token of the command that queued a write, by write ID,
	// in memory only (never in the store): the write is made with it
	// while this process runs, with the client's own after a restart.
	tokens map[string]string
}

// QueueStatus reports the queue for operators.
type QueueStatus struct {
	Pending      int
	Dead         int
	NextAttempt  time.Time // zero when idle or due now
	LimitedUntil time.Time // rate limited until then
	LastError    string
	Rate         Rate // primary rate limit last seen on any response
}

// NewQueue makes a queue on st writing through c. Call Run to work it.
func NewQueue(st *store.Store, c *Client, log zerolog.Logger, o QueueOptions) *Queue {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = time.After
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 20
	}
	if o.ResetSlack <= 0 {
		o.ResetSlack = time.Second
	}
	return &Queue{st: st, c: c, log: log.With().Str("component", "github-queue").Logger(), o: o,
		wake: make(chan struct{}, 1), tokens: map[string]string{}}
}

// Enqueue stores w durably and returns its ID. Invalid writes are refused
// here rather than failing later in the worker.
func (q *Queue) Enqueue(w Write) (string, error) { return q.EnqueueFor(context.Background(), w) }

// EnqueueFor is Enqueue for the command whose token ctx carries
// (WithToken): the write is made with that token.
func (q *Queue) EnqueueFor(ctx context.Context, w Write) (string, error) {
	token := CallerToken(ctx)
	w.Step, w.Sent, w.Attempts, w.NextAt, w.LastError = 0, false, 0, time.Time{}, ""
	if err := w.Validate(); err != nil {
		return "", err
	}
	w.Enqueued = q.o.Now()
	err := q.st.Update(func(tx *store.Tx) error {
		var seq uint64
		if err := tx.Get([]byte(keySeq), &seq); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		seq++
		// The random part keeps markers unique even if the store is wiped
		// and the sequence restarts: an old comment must never match.
		w.ID = fmt.Sprintf("%016x-%s", seq, randHex(4))
		if err := tx.Put([]byte(keySeq), seq); err != nil {
			return err
		}
		// Known before the commit, so the worker never sees the write
		// without its token.
		q.setToken(w.ID, token)
		return tx.Put([]byte(prefixQueue+w.ID), w)
	})
	if err != nil {
		q.setToken(w.ID, "")
		return "", fmt.Errorf("github: queue write: %w", err)
	}
	q.Wake()
	return w.ID, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Wake makes the worker look at the queue now (after Enqueue, or in tests
// after moving an injected clock).
func (q *Queue) Wake() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Run works the queue until ctx ends. It resumes whatever a previous
// process left pending.
func (q *Queue) Run(ctx context.Context) error {
	if !q.run.TryLock() {
		return errors.New("github: queue already running")
	}
	defer q.run.Unlock()
	for ctx.Err() == nil {
		w, ok, err := q.head()
		if err != nil {
			if errors.Is(err, store.ErrClosed) {
				return err
			}
			q.log.Error().Err(err).Msg("read queue")
			q.sleep(ctx, q.o.Backoff)
			continue
		}
		if !ok {
			q.setNext(time.Time{})
			q.sleep(ctx, -1)
			continue
		}
		at := q.dueAt(w)
		if wait := at.Sub(q.o.Now()); wait > 0 {
			q.setNext(at)
			q.sleep(ctx, wait)
			continue
		}
		q.setNext(time.Time{})
		q.attempt(ctx, w)
	}
	return nil
}

// sleep waits d (forever if d < 0), a Wake, or the end of ctx.
func (q *Queue) sleep(ctx context.Context, d time.Duration) {
	var timer <-chan time.Time
	if d >= 0 {
		timer = q.o.After(d)
	}
	select {
	case <-ctx.Done():
	case <-q.wake:
	case <-timer:
	}
}

func (q *Queue) head() (w Write, ok bool, err error) {
	err = q.st.View(func(tx *store.Tx) error {
		return tx.Scan([]byte(prefixQueue), nil, func(_ []byte, decode func(any) error) (bool, error) {
			ok = true
			return false, decode(&w)
		})
	})
	return w, ok, err
}

// dueAt is when w may be tried: its own backoff, any rate limit hit, and
// an exhausted primary budget seen on any response (the poller's too).
func (q *Queue) dueAt(w Write) time.Time {
	q.mu.Lock()
	at := laterOf(w.NextAt, q.limitUntil)
	q.mu.Unlock()
	if r := q.c.Rate(); !r.Seen.IsZero() && r.Remaining == 0 {
		at = laterOf(at, r.Reset.Add(q.o.ResetSlack))
	}
	return at
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func (q *Queue) setNext(t time.Time) {
	q.mu.Lock()
	q.nextAt = t
	q.mu.Unlock()
}

func (q *Queue) save(w *Write) error {
	return q.st.Update(func(tx *store.Tx) error { return tx.Put([]byte(prefixQueue+w.ID), w) })
}

// setToken records (or, for "", forgets) the token a write is made with.
func (q *Queue) setToken(id, token string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if token == "" {
		delete(q.tokens, id)
		return
	}
	q.tokens[id] = token
}

func (q *Queue) attempt(ctx context.Context, w Write) {
	q.mu.Lock()
	token := q.tokens[w.ID]
	q.mu.Unlock()
	ctx = WithToken(ctx, token)
	w.Attempts++
	log := q.log.With().Str("write", w.ID).Str("kind", w.Kind).Str("repo", w.Repo).Int("issue", w.Issue).Logger()
	res, err := q.c.execute(ctx, &w, q.save)
	if err == nil {
		q.finish(w, res, nil, log)
		return
	}
	if ctx.Err() != nil {
		q.saveLogged(&w, log) // Sent stays as is: the outcome is unknown
		return
	}
	q.setErr(err)
	w.LastError = err.Error()
	var rl *RateLimited
	switch {
	case errors.As(err, &rl):
		w.Attempts-- // waiting out a limit is not a failure
		until := rl.Until
		if !rl.Secondary {
			until = until.Add(q.o.ResetSlack)
		}
		// Never hammer: a reset already past by our clock (skew) or a
		// Retry-After of 0 still waits a little.
		until = laterOf(until, q.o.Now().Add(minLimitWait))
		q.mu.Lock()
		q.limitUntil = laterOf(q.limitUntil, until)
		q.mu.Unlock()
		w.NextAt = until
		log.Info().Time("until", until).Bool("secondary", rl.Secondary).Msg("rate limited; write waits")
	case retryable(err) && w.Attempts < q.o.MaxAttempts:
		w.NextAt = q.o.Now().Add(q.backoff(w.Attempts))
		log.Warn().Err(err).Int("attempt", w.Attempts).Time("retry_at", w.NextAt).Msg("write failed; will retry")
	default:
		q.finish(w, res, err, log)
		return
	}
	q.saveLogged(&w, log)
}

// retryable errors may pass later unchanged: network, 5xx, and auth or
// no token at all (the operator may fix the token; the write should not
// be lost meanwhile).
func retryable(err error) bool {
	return uncertain(err) || errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrForbidden) || errors.Is(err, ErrNoToken)
}

func (q *Queue) backoff(attempt int) time.Duration {
	d := q.o.Backoff
	for i := 1; i < attempt && d < q.o.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, q.o.MaxBackoff)
}

func (q *Queue) saveLogged(w *Write, log zerolog.Logger) {
	if err := q.save(w); err != nil {
		log.Error().Err(err).Msg("save write progress")
	}
}

// finish removes the write; a refused one is kept under gh/qdead/.
func (q *Queue) finish(w Write, res Result, failed error, log zerolog.Logger) {
	err := q.st.Update(func(tx *store.Tx) error {
		if failed != nil {
			w.LastError = failed.Error()
			if err := tx.Put([]byte(prefixDead+w.ID), w); err != nil {
				return err
			}
		}
		return tx.Delete([]byte(prefixQueue + w.ID))
	})
	if err != nil {
		log.Error().Err(err).Msg("remove finished write")
		return
	}
	q.setToken(w.ID, "")
	if failed != nil {
		log.Warn().Err(failed).Msg("write given up")
	} else {
		q.setErr(nil)
		log.Debug().Str("url", res.Ref.URL).Msg("write done")
	}
	if q.o.OnDone != nil {
		q.o.OnDone(w, res, failed)
	}
}

func (q *Queue) setErr(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.lastErr = ""
	if err != nil {
		q.lastErr = err.Error()
	}
}

// Status reports pending and given-up counts, timing and rate limits.
func (q *Queue) Status() QueueStatus {
	var s QueueStatus
	count := func(prefix string, n *int) func(*store.Tx) error {
		return func(tx *store.Tx) error {
			return tx.Scan([]byte(prefix), nil, func([]byte, func(any) error) (bool, error) {
				*n++
				return true, nil
			})
		}
	}
	if err := q.st.View(count(prefixQueue, &s.Pending)); err != nil {
		s.LastError = err.Error()
	}
	_ = q.st.View(count(prefixDead, &s.Dead))
	q.mu.Lock()
	defer q.mu.Unlock()
	s.NextAttempt, s.LastError, s.Rate = q.nextAt, firstNonEmpty(s.LastError, q.lastErr), q.c.Rate()
	if q.limitUntil.After(q.o.Now()) {
		s.LimitedUntil = q.limitUntil
	}
	return s
}
