package github

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Three queued writes reach GitHub at least a second apart (measured by
// the fake's arrival times), each naming the app in its User-Agent.
func TestWritesSpacedAndNamed(t *testing.T) {
	f, c, st := setup(t)
	f.AddRepo(otherRepo)
	f.CreateIssue(otherRepo, "human", "t", "")
	q, d, _ := startQueue(t, st, c, QueueOptions{})
	q.Enqueue(Write{Kind: WriteComment, Repo: testRepo, Issue: 1, Body: "a"})
	q.Enqueue(Write{Kind: WriteComment, Repo: otherRepo, Issue: 1, Body: "b"})
	q.Enqueue(Write{Kind: WriteComment, Repo: testRepo, Issue: 1, Body: "c"})
	eventually(t, 10*time.Second, "three writes", func() bool { return d.n() == 3 })
	var last time.Time
	writes := 0
	for _, r := range f.RequestLog() {
		if !strings.HasPrefix(r.UserAgent, "agent-swarm/") || r.UserAgent != UserAgent {
			t.Fatalf("User-Agent %q", r.UserAgent)
		}
		if !r.Write() {
			continue
		}
		if writes > 0 && r.At.Sub(last) < WriteGap {
			t.Fatalf("writes %v apart", r.At.Sub(last))
		}
		last = r.At
		writes++
	}
	if writes != 3 {
		t.Fatalf("%d writes", writes)
	}
}

// The pacer, on an injected clock: back-to-back writes wait out the gap
// from the end of the previous one; a write after a pause waits nothing;
// reads never wait.
func TestPacerGap(t *testing.T) {
	f, c, _ := setup(t)
	clk := newFakeClock()
	var slept []time.Duration
	c.SetPace(WriteGap, clk.Now, func(ctx context.Context, d time.Duration) error {
		slept = append(slept, d)
		return clk.Sleep(ctx, d)
	})
	ctx := context.Background()
	comment := func() {
		t.Helper()
		if _, err := c.Comment(ctx, testRepo, 1, "x"); err != nil {
			t.Fatal(err)
		}
	}
	comment()
	comment()
	if _, err := c.GetTask(ctx, testRepo, 1); err != nil {
		t.Fatal(err)
	}
	clk.Sleep(ctx, 5*time.Second)
	comment()
	if len(slept) != 1 || slept[0] != WriteGap {
		t.Fatalf("slept %v, want one wait of %v", slept, WriteGap)
	}
	if n := len(f.Comments(testRepo, 1)); n != 3 {
		t.Fatalf("%d comments", n)
	}
}

// A write whose caller gives up while it waits its turn never left: it
// is no unknown outcome, so nothing needs checking before a retry.
func TestPacerCancelledIsNotSent(t *testing.T) {
	f, c, _ := setup(t)
	if _, err := c.Comment(context.Background(), testRepo, 1, "first"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	w := Write{ID: "0000000000000001-abcd", Kind: WriteComment, Repo: testRepo, Issue: 1, Body: "second"}
	saved := 0
	_, err := c.execute(ctx, &w, execOpts{save: func(*Write) error { saved++; return nil }})
	if err == nil || w.Sent || saved != 1 {
		t.Fatalf("err %v, sent %v, saved %d: want a failure known not to have left", err, w.Sent, saved)
	}
	if n := len(f.Comments(testRepo, 1)); n != 1 {
		t.Fatalf("%d comments", n)
	}
}
