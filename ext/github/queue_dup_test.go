package github

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/ext/github/fakegithub"
)

// posts counts the comment POSTs the fake received.
func posts(f *fakegithub.Server) int {
	n := 0
	for _, r := range f.RequestLog() {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/comments") {
			n++
		}
	}
	return n
}

// stillOne waits out a while and checks the issue keeps exactly one
// comment with the write's marker.
func stillOne(t *testing.T, f *fakegithub.Server, issue int, id string, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		n := 0
		for _, c := range f.Comments(testRepo, issue) {
			if strings.Contains(c.Body, Marker(id)) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d comments carry the marker: %q", n, bodies(f.Comments(testRepo, issue)))
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The three ways a write landed that issue #15 found doubled, each with
// list reads lagging: each ends with one visible comment, posted once.
func TestQueueOneCommentPerWrite(t *testing.T) {
	t.Run("list lag after a dropped answer", func(t *testing.T) {
		f, c, st := setup(t)
		f.SetListLag(4 * time.Second)
		f.DropNextWrite(1)
		q, d, _ := startQueue(t, st, c, QueueOptions{Backoff: 200 * time.Millisecond, Settle: 8 * time.Second})
		id, _ := q.Enqueue(Write{Kind: WriteComment, Repo: testRepo, Issue: 1, Body: "once"})
		eventually(t, 15*time.Second, "the write", func() bool { return d.n() == 1 })
		if d.errs[0] != nil || posts(f) != 1 {
			t.Fatalf("err %v, %d posts", d.errs[0], posts(f))
		}
		stillOne(t, f, 1, id, 500*time.Millisecond)
	})

	t.Run("applied after the client timed out", func(t *testing.T) {
		f := newFake(t)
		f.CreateIssue(testRepo, "human", "task", "")
		c, err := NewClient(testToken, f.URL, &http.Client{Timeout: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		st := openStore(t, t.TempDir())
		t.Cleanup(func() { st.Close() })
		f.SetListLag(time.Second)
		f.LateApply(1, 1500*time.Millisecond) // lands 1 s after the client gave up
		q, d, _ := startQueue(t, st, c, QueueOptions{Backoff: 200 * time.Millisecond, Settle: 6 * time.Second})
		id, _ := q.Enqueue(Write{Kind: WriteComment, Repo: testRepo, Issue: 1, Body: "late"})
		eventually(t, 15*time.Second, "the write", func() bool { return d.n() == 1 })
		if d.errs[0] != nil || posts(f) != 1 {
			t.Fatalf("err %v, %d posts", d.errs[0], posts(f))
		}
		stillOne(t, f, 1, id, 500*time.Millisecond)
	})

	t.Run("applied while the node was killed", func(t *testing.T) {
		f := newFake(t)
		c := newClient(t, f, testToken)
		f.CreateIssue(testRepo, "human", "task", "")
		dir := t.TempDir()
		st := openStore(t, dir)
		f.SetListLag(time.Second)
		f.LateApply(1, 1500*time.Millisecond)
		q1, _, stop := startQueue(t, st, c, QueueOptions{})
		id, _ := q1.Enqueue(Write{Kind: WriteComment, Repo: testRepo, Issue: 1, Body: "crash"})
		eventually(t, 5*time.Second, "the request in flight", func() bool { return posts(f) == 1 })
		stop() // the node dies mid-request; GitHub applies it anyway
		st.Close()

		st2 := openStore(t, dir)
		defer st2.Close()
		_, d, _ := startQueue(t, st2, c, QueueOptions{Backoff: 200 * time.Millisecond, Settle: 6 * time.Second})
		eventually(t, 15*time.Second, "the resumed write", func() bool { return d.n() == 1 })
		if d.errs[0] != nil || posts(f) != 1 {
			t.Fatalf("err %v, %d posts", d.errs[0], posts(f))
		}
		stillOne(t, f, 1, id, 500*time.Millisecond)
	})
}

// When a copy shows up anyway (later than the queue waited), the later
// copy — the writer's own — is deleted, and a person's comment quoting
// the marker is left alone.
func TestQueueDeletesLaterCopy(t *testing.T) {
	f, c, st := setup(t)
	c.SetPace(0, nil, nil)
	f.SetListLag(2 * time.Second)
	f.DropNextWrite(1)
	// Settle below the lag: the queue posts again before the first copy
	// is visible.
	q, d, _ := startQueue(t, st, c, QueueOptions{Backoff: 100 * time.Millisecond, Settle: 500 * time.Millisecond})
	id, _ := q.Enqueue(Write{Kind: WriteComment, Repo: testRepo, Issue: 1, Body: "twice"})
	eventually(t, 10*time.Second, "the write", func() bool { return d.n() == 1 })
	if d.errs[0] != nil || posts(f) != 2 {
		t.Fatalf("err %v, %d posts (want the repost this test is about)", d.errs[0], posts(f))
	}
	full := "twice\n\n" + Marker(id)
	f.AddComment(testRepo, 1, "human", "> "+full+"\n\nwhy twice?")
	first := f.Comments(testRepo, 1)[0]
	eventually(t, 15*time.Second, "the later copy deleted", func() bool {
		n := 0
		for _, cm := range f.Comments(testRepo, 1) {
			if cm.Body == full {
				n++
			}
		}
		return n == 1
	})
	got := f.Comments(testRepo, 1)
	if len(got) != 2 || got[0].ID != first.ID || got[1].User != "human" {
		t.Fatalf("left %+v, want the first copy and the person's comment", got)
	}
}
