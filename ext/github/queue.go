package github

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"sort"
	"strings"
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

	minLimitWait   = time.Second
	maxFailedShown = 5
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
	MaxAttempts int           // transient failures (network, 5xx) before giving up; default 20
	ResetSlack  time.Duration // margin after a primary reset time (clock skew); default 1 s

	// Settle is how long after a request that may have landed (timeout,
	// dropped answer, crash) the queue keeps looking for it, with
	// backoff, before writing again: longer than GitHub's list lag and
	// its late applies. Default 2 min.
	Settle time.Duration
	// Secondary rate limits: wait Retry-After when GitHub gives one,
	// else LimitWait (default 1 min, GitHub's advice); repeated limits
	// double the wait up to LimitCap (default 30 min), plus Jitter (by
	// default up to a quarter more). A write that meets MaxLimited of
	// them (default 8) is given up.
	LimitWait  time.Duration
	LimitCap   time.Duration
	MaxLimited int
	Jitter     func(time.Duration) time.Duration
}

// Queue runs GitHub writes durably, in order per issue. Writes survive
// restarts; a write is removed only once GitHub accepted all of it, or
// refused it for good, or it was given up (kept under gh/qdead/ then).
// A refusal no retry can fix fails the write at once; network errors and
// 5xx are retried with backoff, rate limits waited out.
type Queue struct {
	st   *store.Store
	c    *Client
	log  zerolog.Logger
	o    QueueOptions
	wake chan struct{}
	run  sync.Mutex // one worker at a time

	mu         sync.Mutex
	limitUntil time.Time // a rate limit applies to every write, not just the head
	streak     int       // secondary limits met since the last success
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
	Failed       []Write   // the last given-up writes, newest first (LastError says why)
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
	if o.Settle <= 0 {
		o.Settle = 2 * time.Minute
	}
	if o.LimitWait <= 0 {
		o.LimitWait = time.Minute
	}
	if o.LimitCap <= 0 {
		o.LimitCap = 30 * time.Minute
	}
	if o.MaxLimited <= 0 {
		o.MaxLimited = 8
	}
	if o.Jitter == nil {
		o.Jitter = quarterJitter
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
		w, wAt, wOK, err := q.next()
		var c dupCheck
		var cAt time.Time
		cOK := false
		if err == nil {
			c, cAt, cOK, err = q.nextCheck()
		}
		if err != nil {
			if errors.Is(err, store.ErrClosed) {
				return err
			}
			q.log.Error().Err(err).Msg("read queue")
			q.sleep(ctx, q.o.Backoff)
			continue
		}
		if !wOK && !cOK {
			q.setNext(time.Time{})
			q.sleep(ctx, -1)
			continue
		}
		check := cOK && (!wOK || cAt.Before(wAt))
		at := wAt
		if check {
			at = cAt
		}
		if wait := at.Sub(q.o.Now()); wait > 0 {
			q.setNext(at)
			q.sleep(ctx, wait)
			continue
		}
		q.setNext(time.Time{})
		if check {
			q.runCheck(ctx, c)
		} else {
			q.attempt(ctx, w)
		}
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

// next is the write to try next and when: of the oldest pending write
// of each issue (writes to one issue keep their order; a write waiting
// or failing never holds up another issue's), the one due first.
func (q *Queue) next() (w Write, at time.Time, ok bool, err error) {
	heads := map[string]bool{}
	err = q.st.View(func(tx *store.Tx) error {
		return tx.Scan([]byte(prefixQueue), nil, func(_ []byte, decode func(any) error) (bool, error) {
			var c Write
			if err := decode(&c); err != nil {
				return false, err
			}
			k := c.orderKey()
			if heads[k] {
				return true, nil
			}
			heads[k] = true
			if cAt := q.dueAt(c); !ok || cAt.Before(at) {
				w, at, ok = c, cAt, true
			}
			return true, nil
		})
	})
	return w, at, ok, err
}

// orderKey: writes with the same key are made in the order queued. New
// issues (Issue 0) keep their order among themselves.
func (w Write) orderKey() string { return fmt.Sprintf("%s#%d", strings.ToLower(w.Repo), w.Issue) }

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
	res, err := q.c.execute(ctx, &w, execOpts{save: q.save, now: q.o.Now, settle: q.o.Settle})
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
	var uc *Unconfirmed
	switch {
	case errors.As(err, &uc):
		w.Attempts-- // looking again is not a failure
		w.Checks++
		w.NextAt = earlierOf(uc.Until, q.o.Now().Add(q.backoff(w.Checks)))
		log.Info().Time("next_check", w.NextAt).Msg("earlier attempt not visible yet; checking again before writing again")
	case errors.As(err, &rl):
		w.Attempts-- // waiting out a limit is not a failure
		if rl.Secondary {
			w.Limited++
			if w.Limited >= q.o.MaxLimited {
				q.finish(w, res, &GaveUpError{Attempts: w.Limited, Limited: true, Err: err}, log)
				return
			}
		}
		w.NextAt = q.limited(rl)
		log.Info().Time("until", w.NextAt).Bool("secondary", rl.Secondary).Msg("rate limited; write waits")
	case !uncertain(err):
		// 401, 403 that is no rate limit, 404, 410, 422, no token: no
		// retry can fix it. Fail now, and let the rest go on.
		q.finish(w, res, err, log)
		return
	case w.Attempts < q.o.MaxAttempts:
		w.NextAt = q.o.Now().Add(q.backoff(w.Attempts))
		log.Warn().Err(err).Int("attempt", w.Attempts).Time("retry_at", w.NextAt).Msg("write failed; will retry")
	default:
		q.finish(w, res, &GaveUpError{Attempts: w.Attempts, Err: err}, log)
		return
	}
	q.saveLogged(&w, log)
}

// limited records a rate limit, which holds every write, and returns
// when writing may resume.
func (q *Queue) limited(rl *RateLimited) time.Time {
	now := q.o.Now()
	var until time.Time
	q.mu.Lock()
	defer q.mu.Unlock()
	if rl.Secondary {
		q.streak++
		until = now.Add(q.secondaryWait(rl, q.streak))
	} else {
		until = rl.Until.Add(q.o.ResetSlack)
	}
	// Never hammer: a reset already past by our clock (skew) or a
	// Retry-After of 0 still waits a little.
	until = laterOf(until, now.Add(minLimitWait))
	q.limitUntil = laterOf(q.limitUntil, until)
	return until
}

// secondaryWait is GitHub's advice for its secondary limits: wait
// Retry-After when given, else at least a minute; when limits repeat,
// back off exponentially (with jitter, up to a cap), never below
// Retry-After. streak counts the limits met in a row (1 for the first).
func (q *Queue) secondaryWait(rl *RateLimited, streak int) time.Duration {
	base := q.o.LimitWait
	if rl.Advised {
		base = max(rl.RetryAfter, minLimitWait)
	}
	d := base
	for i := 1; i < streak && d < q.o.LimitCap; i++ {
		d *= 2
	}
	d = min(d, q.o.LimitCap)
	d += q.o.Jitter(d)
	if rl.Advised {
		d = max(d, rl.RetryAfter)
	}
	return d
}

// quarterJitter spreads retries over up to a quarter more of the wait,
// so nodes limited together do not come back together.
func quarterJitter(d time.Duration) time.Duration {
	if d < 4 {
		return 0
	}
	return time.Duration(mathrand.Int64N(int64(d / 4)))
}

func earlierOf(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
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

// finish removes the write; a refused one is kept under gh/qdead/. A
// write that posted a comment again is checked later for two copies.
func (q *Queue) finish(w Write, res Result, failed error, log zerolog.Logger) {
	err := q.st.Update(func(tx *store.Tx) error {
		if failed != nil {
			w.LastError, w.FailedAt = failed.Error(), q.o.Now()
			if err := tx.Put([]byte(prefixDead+w.ID), w); err != nil {
				return err
			}
		}
		if w.Reposted {
			c := dupCheck{ID: w.ID, Repo: w.Repo, Issue: w.Issue, Since: w.Enqueued, Due: q.o.Now().Add(q.o.Settle)}
			if err := tx.Put([]byte(prefixCheck+w.ID), c); err != nil {
				return err
			}
		}
		return tx.Delete([]byte(prefixQueue + w.ID))
	})
	if err != nil {
		log.Error().Err(err).Msg("remove finished write")
		return
	}
	if !w.Reposted {
		q.setToken(w.ID, "") // else the check deletes with it
	}
	if failed != nil {
		log.Warn().Err(failed).Msg("write given up")
	} else {
		q.mu.Lock()
		q.streak = 0
		q.mu.Unlock()
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
	s.Failed = q.failed()
	q.mu.Lock()
	defer q.mu.Unlock()
	s.NextAttempt, s.LastError, s.Rate = q.nextAt, firstNonEmpty(s.LastError, q.lastErr), q.c.Rate()
	if q.limitUntil.After(q.o.Now()) {
		s.LimitedUntil = q.limitUntil
	}
	return s
}

// failed is the last given-up writes, newest first.
func (q *Queue) failed() []Write {
	var all []Write
	_ = q.st.View(func(tx *store.Tx) error {
		return tx.Scan([]byte(prefixDead), nil, func(_ []byte, decode func(any) error) (bool, error) {
			var w Write
			if decode(&w) == nil {
				all = append(all, w)
			}
			return true, nil
		})
	})
	// Newest failure first (keys are in queueing order).
	sort.SliceStable(all, func(i, j int) bool { return all[i].FailedAt.After(all[j].FailedAt) })
	return all[:min(len(all), maxFailedShown)]
}
