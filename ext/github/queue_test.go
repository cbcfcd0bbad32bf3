package github

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/ext/github/fakegithub"
	"github.com/agent-swarm/agent-swarm/store"
)

// done records OnDone calls.
type done struct {
	mu   sync.Mutex
	ws   []Write
	refs []Ref
	errs []error
}

func (d *done) fn(w Write, r Result, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ws, d.refs, d.errs = append(d.ws, w), append(d.refs, r.Ref), append(d.errs, err)
}

func (d *done) n() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.ws)
}

// startQueue runs a queue until the test ends (or stop is called).
func startQueue(t *testing.T, st *store.Store, c *Client, o QueueOptions) (q *Queue, d *done, stop func()) {
	t.Helper()
	d = &done{}
	if o.OnDone == nil {
		o.OnDone = d.fn
	}
	if o.Backoff == 0 {
		o.Backoff = 50 * time.Millisecond
	}
	if o.ResetSlack == 0 {
		o.ResetSlack = 50 * time.Millisecond
	}
	if o.Settle == 0 {
		o.Settle = time.Second
	}
	q = NewQueue(st, c, testLog(t), o)
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan struct{})
	go func() { defer close(exited); q.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-exited }) }
	t.Cleanup(stop)
	return q, d, stop
}

func setup(t *testing.T) (*fakegithub.Server, *Client, *store.Store) {
	f := newFake(t)
	c := newClient(t, f, testToken)
	st := openStore(t, t.TempDir())
	t.Cleanup(func() { st.Close() })
	f.CreateIssue(testRepo, "human", "task", "")
	return f, c, st
}

func bodies(cs []fakegithub.Comment) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Body)
	}
	return out
}

func TestQueueOrderAndMarker(t *testing.T) {
	f, c, st := setup(t)
	q, d, _ := startQueue(t, st, c, QueueOptions{})
	var ids []string
	for _, b := range []string{"one", "two", "three"} {
		id, err := q.Enqueue(Write{Kind: WriteComment, Repo: testRepo, Issue: 1, Body: b})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	eventually(t, 5*time.Second, "3 writes", func() bool { return d.n() == 3 })
	cs := f.Comments(testRepo, 1)
	if len(cs) != 3 {
		t.Fatalf("comments %v", bodies(cs))
	}
	for i, b := range []string{"one", "two", "three"} {
		if want := b + "\n\n" + Marker(ids[i]); cs[i].Body != want {
			t.Fatalf("comment %d = %q, want %q", i, cs[i].Body, want)
		}
	}
	if d.refs[0].Action != ActionCommented || !strings.Contains(d.refs[0].URL, "#issuecomment-") {
		t.Fatalf("ref %+v", d.refs[0])
	}
	if s := q.Status(); s.Pending != 0 || s.LastError != "" || s.Rate.Limit != 5000 {
		t.Fatalf("status %+v", s)
	}
	if _, err := q.Enqueue(Write{Kind: WriteComment, Repo: testRepo, Issue: 1}); err == nil {
		t.Fatal("empty comment queued")
	}
}

func TestQueuePrimaryRateLimit(t *testing.T) {
	f, c, st := setup(t)
	f.SetRemaining(0, time.Second) // exhausted; resets within 1-2 s
	q, d, _ := startQueue(t, st, c, QueueOptions{})
	start := time.Now()
	if _, err := q.Enqueue(Write{Kind: WriteComment, Repo: testRepo, Issue: 1, Body: "hello"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "rate limit seen", func() bool { return !q.Status().LimitedUntil.IsZero() })
	if s := q.Status(); s.Pending != 1 || s.Rate.Remaining != 0 || !strings.Contains(s.LastError, "rate limit") {
		t.Fatalf("status while limited: %+v", s)
	}
	eventually(t, 5*time.Second, "write after reset", func() bool { return d.n() == 1 })
	if d.errs[0] != nil {
		t.Fatal(d.errs[0])
	}
	if len(f.Comments(testRepo, 1)) != 1 {
		t.Fatalf("comments %v", bodies(f.Comments(testRepo, 1)))
	}
	if time.Since(start) < 500*time.Millisecond {
		t.Fatal("did not wait for the reset")
	}
}

func TestQueueSecondaryRateLimit(t *testing.T) {
	for _, status := range []int{403, 429} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			f, c, st := setup(t)
			f.SecondaryLimit(1, status, time.Second)
			q, d, _ := startQueue(t, st, c, QueueOptions{})
			start := time.Now()
			q.Enqueue(Write{Kind: WriteComment, Repo: testRepo, Issue: 1, Body: "hi"})
			eventually(t, 5*time.Second, "write", func() bool { return d.n() == 1 })
			if el := time.Since(start); el < 900*time.Millisecond {
				t.Fatalf("Retry-After not honoured: done after %v", el)
			}
			if d.errs[0] != nil || len(f.Comments(testRepo, 1)) != 1 {
				t.Fatalf("err %v, comments %v", d.errs[0], bodies(f.Comments(testRepo, 1)))
			}
		})
	}
}

// A write GitHub applied but whose answer was lost is not repeated.
func TestQueueDroppedResponse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		w     Write
		check func(*fakegithub.Server) error
	}{
		{"comment", Write{Kind: WriteComment, Repo: testRepo, Issue: 1, Body: "once"}, func(f *fakegithub.Server) error {
			if n := len(f.Comments(testRepo, 1)); n != 1 {
				return errors.New("comments: " + strings.Join(bodies(f.Comments(testRepo, 1)), "|"))
			}
			return nil
		}},
		{"claim", Write{Kind: WriteClaim, Repo: testRepo, Issue: 1, Agent: "a1", Login: "bob"}, func(f *fakegithub.Server) error {
			is := f.Issues(testRepo)[0]
			if n := len(f.Comments(testRepo, 1)); n != 1 || is.Labels[0] != LabelInProgress || is.Assignees[0] != "bob" {
				return errors.New("claim not applied once")
			}
			return nil
		}},
		{"create", Write{Kind: WriteCreate, Repo: testRepo, Task: &TaskSpec{Title: "new"}}, func(f *fakegithub.Server) error {
			if n := len(f.Issues(testRepo)); n != 2 {
				return fmt.Errorf("%d issues created", n-1)
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, c, st := setup(t)
			f.DropNextWrite(1)
			q, d, _ := startQueue(t, st, c, QueueOptions{})
			q.Enqueue(tc.w)
			eventually(t, 5*time.Second, "write", func() bool { return d.n() == 1 })
			if d.errs[0] != nil {
				t.Fatal(d.errs[0])
			}
			if err := tc.check(f); err != nil {
				t.Fatal(err)
			}
			if tc.w.Kind == WriteCreate && d.refs[0].Issue != 2 {
				t.Fatalf("ref %+v", d.refs[0])
			}
		})
	}
}

// A restart resumes pending writes, including one whose comment may have
// landed before the process stopped.
func TestQueueRestart(t *testing.T) {
	f := newFake(t)
	c := newClient(t, f, testToken)
	f.CreateIssue(testRepo, "human", "task", "")
	dir := t.TempDir()

	st := openStore(t, dir)
	f.DropNextWrite(1)
	// A long backoff: after the dropped answer, this process waits.
	q1, d1, stop := startQueue(t, st, c, QueueOptions{Backoff: time.Hour})
	q1.Enqueue(Write{Kind: WriteClaim, Repo: testRepo, Issue: 1, Agent: "a1"})
	q1.Enqueue(Write{Kind: WriteComment, Repo: testRepo, Issue: 1, Body: "second"})
	eventually(t, 5*time.Second, "first attempt", func() bool { return !q1.Status().NextAttempt.IsZero() })
	stop()
	if d1.n() != 0 || len(f.Comments(testRepo, 1)) != 1 {
		t.Fatalf("before restart: done %d, comments %v", d1.n(), bodies(f.Comments(testRepo, 1)))
	}
	st.Close()

	st2 := openStore(t, dir)
	defer st2.Close()
	if s := NewQueue(st2, c, testLog(t), QueueOptions{}).Status(); s.Pending != 2 {
		t.Fatalf("pending after restart %+v", s)
	}
	// The backoff stored by the first process still applies; a clock
	// moved past it stands in for waiting an hour.
	_, d2, _ := startQueue(t, st2, c, QueueOptions{Now: func() time.Time { return time.Now().Add(2 * time.Hour) }})
	eventually(t, 5*time.Second, "resumed writes", func() bool { return d2.n() == 2 })
	got := bodies(f.Comments(testRepo, 1))
	if len(got) != 2 || !strings.HasPrefix(got[0], "Claimed by a1") || !strings.HasPrefix(got[1], "second") {
		t.Fatalf("comments %q", got)
	}
	if is := f.Issues(testRepo)[0]; is.Labels[0] != LabelInProgress {
		t.Fatalf("labels %v", is.Labels)
	}
}

func TestQueueGivesUpOnRefusal(t *testing.T) {
	f, c, st := setup(t)
	q, d, _ := startQueue(t, st, c, QueueOptions{})
	q.Enqueue(Write{Kind: WriteComment, Repo: testRepo, Issue: 42, Body: "lost"})
	q.Enqueue(Write{Kind: WriteComment, Repo: testRepo, Issue: 1, Body: "after"})
	eventually(t, 5*time.Second, "both writes", func() bool { return d.n() == 2 })
	if !errors.Is(d.errs[0], ErrNotFound) || d.errs[1] != nil {
		t.Fatalf("errs %v", d.errs)
	}
	if s := q.Status(); s.Dead != 1 || s.Pending != 0 {
		t.Fatalf("status %+v", s)
	}
	if len(f.Comments(testRepo, 1)) != 1 {
		t.Fatal("second write not done")
	}
}

func TestQueueRetriesServerErrors(t *testing.T) {
	f, c, st := setup(t)
	f.FailNext(2, 502)
	q, d, _ := startQueue(t, st, c, QueueOptions{})
	q.Enqueue(Write{Kind: WriteComment, Repo: testRepo, Issue: 1, Body: "x"})
	eventually(t, 5*time.Second, "write", func() bool { return d.n() == 1 })
	if d.errs[0] != nil || len(f.Comments(testRepo, 1)) != 1 || d.ws[0].Attempts != 3 {
		t.Fatalf("err %v attempts %d comments %d", d.errs[0], d.ws[0].Attempts, len(f.Comments(testRepo, 1)))
	}
}
