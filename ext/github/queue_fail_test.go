package github

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/ext/github/fakegithub"
	"github.com/agent-swarm/agent-swarm/node"
)

const otherRepo = "acme/other"

// A write GitHub refuses for good fails at once, with an error of the
// kind its exit code needs, and the writes queued after it still go out.
func TestQueuePermanentFailureFailsAtOnce(t *testing.T) {
	const roToken = "ghp_readONLYtoken0123456789"
	for _, tc := range []struct {
		name  string
		setup func(f *fakegithub.Server)
		token string // the caller's, "" for the queue's own
		w     Write
		kind  node.Kind
		want  string
	}{
		{"read-only token", func(f *fakegithub.Server) { f.AddReadOnlyToken(roToken, "viewer") }, roToken,
			Write{Kind: WriteComment, Repo: testRepo, Issue: 1, Body: "hi"}, node.Refused, "Resource not accessible by personal access token"},
		{"bad token", nil, "ghp_revokedTOKEN000000",
			Write{Kind: WriteComment, Repo: testRepo, Issue: 1, Body: "hi"}, node.Refused, "token was rejected (401)"},
		{"locked issue", func(f *fakegithub.Server) { f.LockIssue(testRepo, 1) }, "",
			Write{Kind: WriteComment, Repo: testRepo, Issue: 1, Body: "hi"}, node.Refused, "issue is locked"},
		{"archived repository", func(f *fakegithub.Server) { f.ArchiveRepo(testRepo) }, "",
			Write{Kind: WriteClaim, Repo: testRepo, Issue: 1, Agent: "a1"}, node.Refused, "archived"},
		{"issues disabled", func(f *fakegithub.Server) { f.DisableIssues(testRepo) }, "",
			Write{Kind: WriteCreate, Repo: testRepo, Task: &TaskSpec{Title: "t"}}, node.Invalid, "410"},
		{"missing issue", nil, "",
			Write{Kind: WriteComment, Repo: testRepo, Issue: 9, Body: "hi"}, node.NotFound, "acme/board#9"},
		{"validation", nil, "",
			Write{Kind: WriteCreate, Repo: testRepo, Task: &TaskSpec{Title: strings.Repeat("t", 300)}}, node.Invalid, "maximum is 256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, c, st := setup(t)
			c.SetPace(0, nil, nil)
			f.AddRepo(otherRepo)
			f.CreateIssue(otherRepo, "human", "elsewhere", "")
			if tc.setup != nil {
				tc.setup(f)
			}
			// An hour's backoff: a retry would never finish in the test.
			q, d, _ := startQueue(t, st, c, QueueOptions{Backoff: time.Hour})
			if _, err := q.EnqueueFor(WithToken(context.Background(), tc.token), tc.w); err != nil {
				t.Fatal(err)
			}
			after := Write{Kind: WriteComment, Repo: otherRepo, Issue: 1, Body: "still goes out"}
			if _, err := q.Enqueue(after); err != nil {
				t.Fatal(err)
			}
			eventually(t, 5*time.Second, "both writes done", func() bool { return d.n() == 2 })
			failed := d.errs[0]
			if d.ws[0].Kind != tc.w.Kind {
				failed = d.errs[1]
				d.errs[1] = d.errs[0]
			}
			if failed == nil || !Permanent(failed) || !strings.Contains(failed.Error(), tc.want) {
				t.Fatalf("error %v, want a permanent one naming %q", failed, tc.want)
			}
			if k := node.KindOf(UserError(failed)); k != tc.kind {
				t.Fatalf("kind %q, want %q (%v)", k, tc.kind, failed)
			}
			if strings.Contains(failed.Error(), tc.token) && tc.token != "" {
				t.Fatal("the token is in the error")
			}
			if d.errs[1] != nil || len(f.Comments(otherRepo, 1)) != 1 {
				t.Fatalf("the later write: %v, comments %v", d.errs[1], bodies(f.Comments(otherRepo, 1)))
			}
			s := q.Status()
			if s.Pending != 0 || s.Dead != 1 || len(s.Failed) != 1 || !strings.Contains(s.Failed[0].LastError, tc.want) || s.Failed[0].FailedAt.IsZero() {
				t.Fatalf("status %+v", s)
			}
		})
	}
}

// Writes to one issue keep their order; a write waiting on a retry holds
// up only its own issue.
func TestQueuePerIssueOrder(t *testing.T) {
	f, c, st := setup(t)
	c.SetPace(0, nil, nil)
	f.CreateIssue(testRepo, "human", "second task", "")
	f.FailNext(1, 503) // the first write meets a 503 and retries in an hour
	q, d, _ := startQueue(t, st, c, QueueOptions{Backoff: time.Hour})
	q.Enqueue(Write{Kind: WriteComment, Repo: testRepo, Issue: 1, Body: "first on #1"})
	eventually(t, 5*time.Second, "the first attempt", func() bool { return !q.Status().NextAttempt.IsZero() })
	q.Enqueue(Write{Kind: WriteComment, Repo: testRepo, Issue: 1, Body: "second on #1"})
	q.Enqueue(Write{Kind: WriteComment, Repo: testRepo, Issue: 2, Body: "on #2"})
	eventually(t, 5*time.Second, "the write on #2", func() bool { return d.n() == 1 })
	if got := bodies(f.Comments(testRepo, 2)); len(got) != 1 || !strings.HasPrefix(got[0], "on #2") {
		t.Fatalf("#2 comments %q", got)
	}
	time.Sleep(200 * time.Millisecond)
	if got := f.Comments(testRepo, 1); len(got) != 0 {
		t.Fatalf("#1 written out of order: %q", bodies(got))
	}
	if s := q.Status(); s.Pending != 2 {
		t.Fatalf("status %+v", s)
	}
}

// fakeClock is an injected clock: After and the pacer's sleep advance it
// at once, recording each wait.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (k *fakeClock) Now() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.now
}

func (k *fakeClock) After(d time.Duration) <-chan time.Time {
	k.mu.Lock()
	k.now = k.now.Add(d)
	k.waits = append(k.waits, d)
	k.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- k.Now()
	return ch
}

func (k *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.now = k.now.Add(d)
	return nil
}

// limitWaits are the recorded waits of a minute or more: the queue's
// waits for secondary limits (its other waits are shorter here).
func (k *fakeClock) limitWaits(min time.Duration) []time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []time.Duration
	for _, d := range k.waits {
		if d >= min {
			out = append(out, d)
		}
	}
	return out
}

// Secondary limits without Retry-After: a minute, then twice as long each
// time, up to the cap; never the primary reset (an hour away here).
func TestQueueSecondaryLimitBacksOffExponentially(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		limits int
		cap    time.Duration
		want   []time.Duration
	}{
		{"403", 403, 4, 0, []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute}},
		{"429", 429, 3, 0, []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute}},
		{"capped", 403, 5, 5 * time.Minute, []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, c, st := setup(t)
			clk := newFakeClock()
			c.SetPace(WriteGap, clk.Now, clk.Sleep)
			f.SecondaryLimit(tc.limits, tc.status, -1)
			q, d, _ := startQueue(t, st, c, QueueOptions{Now: clk.Now, After: clk.After, LimitCap: tc.cap,
				Jitter: func(time.Duration) time.Duration { return 0 }})
			q.Enqueue(Write{Kind: WriteComment, Repo: testRepo, Issue: 1, Body: "patient"})
			eventually(t, 5*time.Second, "the write", func() bool { return d.n() == 1 })
			if d.errs[0] != nil || len(f.Comments(testRepo, 1)) != 1 {
				t.Fatalf("err %v, comments %d", d.errs[0], len(f.Comments(testRepo, 1)))
			}
			if got := clk.limitWaits(time.Minute); !equalDurations(got, tc.want) {
				t.Fatalf("waits %v, want %v", got, tc.want)
			}
		})
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Jitter spreads the waits over up to a quarter more, never less.
func TestQueueSecondaryLimitJitter(t *testing.T) {
	q := NewQueue(nil, nil, testLog(t), QueueOptions{})
	rl := &RateLimited{Secondary: true}
	for streak := 1; streak <= 4; streak++ {
		base := time.Minute << (streak - 1)
		for i := 0; i < 50; i++ {
			if d := q.secondaryWait(rl, streak); d < base || d >= base+base/4 {
				t.Fatalf("streak %d: wait %v outside [%v, %v)", streak, d, base, base+base/4)
			}
		}
	}
	advised := &RateLimited{Secondary: true, Advised: true, RetryAfter: 90 * time.Minute}
	if d := q.secondaryWait(advised, 1); d < 90*time.Minute {
		t.Fatalf("a Retry-After above the cap is still honoured: %v", d)
	}
}

// With Retry-After the first wait is Retry-After, and repeated limits
// double it. Real time, small values (go-github also honours Retry-After
// on its own clock): measured between the attempts the fake received.
func TestQueueSecondaryLimitRetryAfterDoubles(t *testing.T) {
	f, c, st := setup(t)
	c.SetPace(0, nil, nil)
	f.SecondaryLimit(2, 403, time.Second)
	q, d, _ := startQueue(t, st, c, QueueOptions{Jitter: func(time.Duration) time.Duration { return 0 }})
	q.Enqueue(Write{Kind: WriteComment, Repo: testRepo, Issue: 1, Body: "x"})
	eventually(t, 10*time.Second, "the write", func() bool { return d.n() == 1 })
	var at []time.Time
	for _, r := range f.RequestLog() {
		if r.Write() {
			at = append(at, r.At)
		}
	}
	if len(at) != 3 {
		t.Fatalf("%d attempts, want 3", len(at))
	}
	first, second := at[1].Sub(at[0]), at[2].Sub(at[1])
	if first < time.Second || second < 2*time.Second || second < first*3/2 {
		t.Fatalf("attempts %v then %v apart, want 1s then twice that", first, second)
	}
}

// After MaxLimited secondary limits the write is given up: the caller and
// status are told, and the next write goes out once GitHub allows.
func TestQueueGivesUpAfterRepeatedLimits(t *testing.T) {
	f, c, st := setup(t)
	clk := newFakeClock()
	c.SetPace(WriteGap, clk.Now, clk.Sleep)
	f.SecondaryLimit(3, 403, -1)
	q, d, _ := startQueue(t, st, c, QueueOptions{Now: clk.Now, After: clk.After, MaxLimited: 3})
	q.Enqueue(Write{Kind: WriteComment, Repo: testRepo, Issue: 1, Body: "refused thrice"})
	q.Enqueue(Write{Kind: WriteComment, Repo: testRepo, Issue: 1, Body: "next"})
	eventually(t, 5*time.Second, "both writes", func() bool { return d.n() == 2 })
	var ge *GaveUpError
	if !errors.As(d.errs[0], &ge) || !ge.Limited || ge.Attempts != 3 || Permanent(d.errs[0]) {
		t.Fatalf("first: %v", d.errs[0])
	}
	if k := node.KindOf(UserError(d.errs[0])); k != node.Unreachable {
		t.Fatalf("kind %q", k)
	}
	if !strings.Contains(d.errs[0].Error(), "secondary rate limit refused it 3 times") {
		t.Fatalf("message: %v", d.errs[0])
	}
	if d.errs[1] != nil {
		t.Fatalf("second: %v", d.errs[1])
	}
	if s := q.Status(); len(s.Failed) != 1 || !strings.Contains(s.Failed[0].LastError, "given up") {
		t.Fatalf("status %+v", s)
	}
}

// Transient failures are retried MaxAttempts times, then given up with
// an error saying so.
func TestQueueGivesUpAfterTransientFailures(t *testing.T) {
	f, c, st := setup(t)
	c.SetPace(0, nil, nil)
	f.FailNext(100, 502)
	q, d, _ := startQueue(t, st, c, QueueOptions{Backoff: time.Millisecond, MaxAttempts: 3, Settle: time.Millisecond})
	q.Enqueue(Write{Kind: WriteUnblock, Repo: testRepo, Issue: 1})
	eventually(t, 5*time.Second, "the write", func() bool { return d.n() == 1 })
	var ge *GaveUpError
	if !errors.As(d.errs[0], &ge) || ge.Limited || ge.Attempts != 3 || !Transient(d.errs[0]) {
		t.Fatalf("err %v", d.errs[0])
	}
	if k := node.KindOf(UserError(d.errs[0])); k != node.Unreachable {
		t.Fatalf("kind %q", k)
	}
}
