package github

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

func ids(evs []Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

func actions(evs []Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, fmt.Sprintf("%d:%s", e.Issue, e.Action))
	}
	return out
}

func TestPollerPrimesThenDelivers(t *testing.T) {
	f := newFake(t)
	c := newClient(t, f, testToken)
	st := openStore(t, t.TempDir())
	defer st.Close()
	f.CreateIssue(testRepo, "old", "history", "", "status:ready")
	f.AddComment(testRepo, 1, "old", "old comment")

	p, _ := NewPoller(c, st, testRepo, testLog(t))
	col := &collector{}
	if n, err := p.Poll(context.Background(), col.sink); err != nil || n != 0 {
		t.Fatalf("priming poll: %d %v", n, err)
	}

	f.CreateIssue(testRepo, "carol", "New bug", "It breaks", "bug")
	f.AddComment(testRepo, 2, "dave", "me too <!-- swarm-write:x -->")
	f.AddLabel(testRepo, 1, "erin", "status:blocked")
	f.SetState(testRepo, 1, "erin", "closed")
	n, err := p.Poll(context.Background(), col.sink)
	if err != nil {
		t.Fatal(err)
	}
	got := col.all()
	want := []string{"2:opened", "2:labeled", "1:labeled", "1:closed", "2:commented"}
	if n != len(want) || !slices.Equal(actions(got), want) {
		t.Fatalf("got %v, want %v", actions(got), want)
	}
	op, cm, lb := got[0], got[4], got[2]
	if op.Title != "New bug" || op.Actor != "carol" || op.Body != "It breaks" || op.ID != "issue:2" || op.URL == "" {
		t.Fatalf("opened %+v", op)
	}
	if cm.Body != "me too" || cm.Actor != "dave" || cm.URL == "" {
		t.Fatalf("commented %+v", cm)
	}
	if lb.Label != "status:blocked" || lb.Actor != "erin" {
		t.Fatalf("labeled %+v", lb)
	}
}

func TestPollerETagCostsNothing(t *testing.T) {
	f := newFake(t)
	c := newClient(t, f, testToken)
	st := openStore(t, t.TempDir())
	defer st.Close()
	p, _ := NewPoller(c, st, testRepo, testLog(t))
	p.Backfill = true
	col := &collector{}
	f.CreateIssue(testRepo, "u", "t", "", "x")
	f.AddComment(testRepo, 1, "u", "c")
	if n, err := p.Poll(context.Background(), col.sink); err != nil || n != 3 {
		t.Fatalf("first poll: %d %v", n, err)
	}
	// A second poll may move the comments cursor (new URL, one 200); the
	// third is fully conditional.
	p.Poll(context.Background(), col.sink)
	budget, reqs := f.RateRemaining(), f.Requests()
	for i := 0; i < 3; i++ {
		if n, err := p.Poll(context.Background(), col.sink); err != nil || n != 0 {
			t.Fatalf("idle poll: %d %v", n, err)
		}
	}
	if f.RateRemaining() != budget {
		t.Fatalf("304s cost rate limit: %d -> %d", budget, f.RateRemaining())
	}
	if f.Requests() != reqs+9 {
		t.Fatalf("%d requests for 3 idle polls, want 9", f.Requests()-reqs)
	}
	f.AddComment(testRepo, 1, "u", "new")
	if n, _ := p.Poll(context.Background(), col.sink); n != 1 {
		t.Fatalf("after new comment: %d", n)
	}
	if len(col.all()) != 4 {
		t.Fatalf("events %v", ids(col.all()))
	}
}

// A restart (new poller, same store) after a sink failure mid-batch
// neither repeats nor skips anything.
func TestPollerRestartNoDupNoGap(t *testing.T) {
	f := newFake(t)
	c := newClient(t, f, testToken)
	dir := t.TempDir()
	st := openStore(t, dir)
	col := &collector{}

	p1, _ := NewPoller(c, st, testRepo, testLog(t))
	p1.Poll(context.Background(), col.sink) // prime on an empty repo
	f.CreateIssue(testRepo, "u", "a", "")
	for i := 0; i < 130; i++ { // more than a page of events
		f.AddLabel(testRepo, 1, "u", fmt.Sprintf("l%d", i))
	}
	for i := 0; i < 5; i++ {
		f.AddComment(testRepo, 1, "u", fmt.Sprintf("c%d", i))
	}
	col.failAt = 40 // the sink fails mid-batch
	if _, err := p1.Poll(context.Background(), col.sink); err != errSinkDown {
		t.Fatalf("poll err %v", err)
	}
	st.Close()

	st2 := openStore(t, dir)
	defer st2.Close()
	p2, _ := NewPoller(c, st2, testRepo, testLog(t))
	if _, err := p2.Poll(context.Background(), col.sink); err != nil {
		t.Fatal(err)
	}
	f.AddComment(testRepo, 1, "u", "late")
	p2.Poll(context.Background(), col.sink)

	got := ids(col.all())
	want := []string{"issue:1"}
	for _, e := range f.Events(testRepo) {
		want = append(want, fmt.Sprintf("event:%d", e.ID))
	}
	for _, cm := range f.Comments(testRepo, 1) {
		want = append(want, fmt.Sprintf("comment:%d", cm.ID))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %d events, want %d\ngot  %v\nwant %v", len(got), len(want), got, want)
	}
}

func TestBotRun(t *testing.T) {
	f := newFake(t)
	c := newClient(t, f, testToken)
	st := openStore(t, t.TempDir())
	defer st.Close()
	col := &collector{}
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan error)
	go func() {
		exited <- Bot{Client: c, Store: st, Repo: testRepo, Interval: 20 * time.Millisecond,
			Sink: col.sink, Log: testLog(t), Backfill: true}.Run(ctx)
	}()
	f.CreateIssue(testRepo, "u", "t", "")
	f.AddComment(testRepo, 1, "v", "hi")
	eventually(t, 5*time.Second, "bot events", func() bool { return len(col.all()) == 2 })
	cancel()
	if err := <-exited; err != nil {
		t.Fatal(err)
	}
}
