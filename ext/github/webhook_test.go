package github

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/agent-swarm/agent-swarm/ext/github/fakegithub"
)

var hookSecret = []byte("hook-secret")

func hookServer(t *testing.T, h http.Handler) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("POST /github/webhook", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/github/webhook"
}

func TestWebhookValid(t *testing.T) {
	f := newFake(t)
	n := f.CreateIssue(testRepo, "carol", "Bug", "body text")
	cid := f.AddComment(testRepo, n, "dave", "a comment")
	col := &collector{}
	u := hookServer(t, WebhookHandler(hookSecret, col.sink))
	for _, tc := range []struct {
		event   string
		payload any
		status  int
		want    Event // zero: no event
	}{
		{"issues", f.IssuesPayload(testRepo, "opened", n, "carol"), 202,
			Event{ID: "issue:1", Repo: testRepo, Issue: 1, Action: "opened", Actor: "carol", Title: "Bug", Body: "body text"}},
		{"issues", f.IssuesPayload(testRepo, "closed", n, "erin"), 202,
			Event{Repo: testRepo, Issue: 1, Action: "closed", Actor: "erin", Title: "Bug"}},
		{"issue_comment", f.IssueCommentPayload(testRepo, cid), 202,
			Event{ID: "comment:" + strconv.FormatInt(cid, 10), Repo: testRepo, Issue: 1, Action: "commented", Actor: "dave", Title: "Bug", Body: "a comment"}},
		{"ping", map[string]any{"zen": "Keep it logically awesome.", "hook_id": 1}, 200, Event{}},
		{"push", map[string]any{"ref": "refs/heads/main"}, 202, Event{}},
	} {
		before := len(col.all())
		resp, err := f.Deliver(u, hookSecret, tc.event, tc.payload)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("%s: status %d", tc.event, resp.StatusCode)
		}
		evs := col.all()[before:]
		if tc.want.Action == "" {
			if len(evs) != 0 {
				t.Fatalf("%s: unexpected %+v", tc.event, evs)
			}
			continue
		}
		if len(evs) != 1 {
			t.Fatalf("%s: %d events", tc.event, len(evs))
		}
		got := evs[0]
		if tc.want.ID == "" {
			tc.want.ID = got.ID // a delivery ID
			if !strings.HasPrefix(got.ID, "hook:") {
				t.Fatalf("id %q", got.ID)
			}
		}
		if got.URL == "" {
			t.Fatalf("%s: no URL", tc.event)
		}
		got.URL, got.At = "", tc.want.At
		if got != tc.want {
			t.Fatalf("%s:\ngot  %+v\nwant %+v", tc.event, got, tc.want)
		}
	}
}

func TestWebhookRejects(t *testing.T) {
	f := newFake(t)
	f.CreateIssue(testRepo, "u", "t", "")
	col := &collector{}
	u := hookServer(t, WebhookHandler(hookSecret, col.sink))
	payload := f.IssuesPayload(testRepo, "opened", 1, "u")

	// Wrong secret, via the fake's normal signing.
	resp, _ := f.Deliver(u, []byte("other"), "issues", payload)
	if resp.StatusCode != 401 {
		t.Fatalf("wrong secret: %d", resp.StatusCode)
	}
	body := []byte(`{"action":"opened"}`)
	good := fakegithub.Sign(hookSecret, body)
	for _, tc := range []struct {
		name   string
		hdr    map[string]string
		body   []byte
		status int
	}{
		{"missing signature", nil, body, 401},
		{"sha1 only", map[string]string{"X-Hub-Signature": "sha1=abcd"}, body, 401},
		{"not hex", map[string]string{"X-Hub-Signature-256": "sha256=zz"}, body, 401},
		{"no prefix", map[string]string{"X-Hub-Signature-256": strings.TrimPrefix(good, "sha256=")}, body, 401},
		{"tampered body", map[string]string{"X-Hub-Signature-256": good}, []byte(`{"action":"closed"}`), 401},
		{"malformed json", map[string]string{"X-Hub-Signature-256": fakegithub.Sign(hookSecret, []byte("{oops"))}, []byte("{oops"), 400},
		{"incomplete payload", map[string]string{"X-Hub-Signature-256": good}, body, 400},
		{"too large", map[string]string{"X-Hub-Signature-256": "sha256=00"}, bytes.Repeat([]byte("a"), 2<<20), 413},
	} {
		req, _ := http.NewRequest("POST", u, bytes.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "issues")
		for k, v := range tc.hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
	}
	if len(col.all()) != 0 {
		t.Fatalf("sink called: %+v", col.all())
	}
	// An empty secret accepts nothing, even a matching empty-key HMAC.
	u2 := hookServer(t, WebhookHandler(nil, col.sink))
	resp, _ = f.Deliver(u2, nil, "issues", payload)
	if resp.StatusCode != 401 || len(col.all()) != 0 {
		t.Fatalf("empty secret: %d", resp.StatusCode)
	}
	resp, _ = http.Get(u)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
}

func TestWebhookDedupe(t *testing.T) {
	f := newFake(t)
	f.CreateIssue(testRepo, "u", "t", "")
	payload := f.IssuesPayload(testRepo, "labeled", 1, "u")
	dir := t.TempDir()
	st := openStore(t, dir)
	col := &collector{}
	u := hookServer(t, WebhookHandler(hookSecret, col.sink, WithStore(st), WithLogger(testLog(t))))
	for i, want := range []int{202, 200} {
		resp, err := f.DeliverID(u, hookSecret, "issues", "guid-1", payload)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("delivery %d: %d %s", i, resp.StatusCode, b)
		}
	}
	st.Close()
	// Durable: a restarted node still knows the delivery.
	st2 := openStore(t, dir)
	defer st2.Close()
	u2 := hookServer(t, WebhookHandler(hookSecret, col.sink, WithStore(st2)))
	resp, _ := f.DeliverID(u2, hookSecret, "issues", "guid-1", payload)
	// The HMAC covers the body, not the delivery header: the same signed
	// body under a new or a missing header is the same delivery.
	resp2, _ := f.DeliverID(u2, hookSecret, "issues", "guid-2", payload)
	resp3, _ := f.DeliverID(u2, hookSecret, "issues", "", payload)
	if resp.StatusCode != 200 || resp2.StatusCode != 200 || resp3.StatusCode != 200 || len(col.all()) != 1 {
		t.Fatalf("after restart: %d %d %d, events %d", resp.StatusCode, resp2.StatusCode, resp3.StatusCode, len(col.all()))
	}
	// A new event is announced.
	f.SetState(testRepo, 1, "u", "closed")
	resp4, _ := f.DeliverID(u2, hookSecret, "issues", "guid-4", f.IssuesPayload(testRepo, "closed", 1, "u"))
	if resp4.StatusCode != 202 || len(col.all()) != 2 {
		t.Fatalf("new event: %d, events %d", resp4.StatusCode, len(col.all()))
	}

	// A sink failure is not recorded: GitHub's redelivery goes through.
	col2 := &collector{failAt: 1}
	u3 := hookServer(t, WebhookHandler(hookSecret, col2.sink))
	r1, _ := f.DeliverID(u3, hookSecret, "issues", "guid-3", payload)
	r2, _ := f.DeliverID(u3, hookSecret, "issues", "guid-3", payload)
	if r1.StatusCode != 500 || r2.StatusCode != 202 || len(col2.all()) != 1 {
		t.Fatalf("redelivery: %d %d", r1.StatusCode, r2.StatusCode)
	}
}

func TestWebhookFormEncoded(t *testing.T) {
	f := newFake(t)
	f.CreateIssue(testRepo, "u", "t", "")
	col := &collector{}
	u := hookServer(t, WebhookHandler(hookSecret, col.sink))
	js := `{"action":"reopened","issue":{"number":1,"title":"t"},"repository":{"full_name":"acme/board"},"sender":{"login":"u"}}`
	body := []byte("payload=" + url.QueryEscape(js))
	req, _ := http.NewRequest("POST", u, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-GitHub-Event", "issues")
	req.Header.Set("X-Hub-Signature-256", fakegithub.Sign(hookSecret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 202 || len(col.all()) != 1 || col.all()[0].Action != "reopened" {
		t.Fatalf("%d %+v", resp.StatusCode, col.all())
	}
}

// The webhook and the poller of one node share what was announced: an
// opening, a comment and a label change that both report are announced
// once, in either order, and across a restart; a webhook spelling the
// repository in another case is the same repository.
func TestWebhookAndPollerAnnounceOnce(t *testing.T) {
	f := newFake(t)
	c := newClient(t, f, testToken)
	dir := t.TempDir()
	st := openStore(t, dir)
	col := &collector{}
	seen := NewSeen(st)
	u := hookServer(t, WebhookHandler(hookSecret, col.sink, WithStore(st), WithSeen(seen)))
	p, _ := NewPoller(c, st, testRepo, testLog(t))
	p.Seen = seen
	ctx := context.Background()
	if _, err := p.Poll(ctx, col.sink); err != nil { // prime
		t.Fatal(err)
	}
	upper := func(pl map[string]any) map[string]any {
		r := pl["repository"].(map[string]any)
		r["full_name"] = strings.ToUpper(r["full_name"].(string))
		return pl
	}

	// Webhook first, then the poll.
	f.CreateIssue(testRepo, "carol", "a bug", "it breaks")
	cm := f.AddComment(testRepo, 1, "carol", "details")
	f.AddLabel(testRepo, 1, "carol", "bug")
	labeled := f.IssuesPayload(testRepo, "labeled", 1, "carol")
	labeled["label"] = map[string]any{"name": "bug"}
	for _, d := range []struct {
		event   string
		payload map[string]any
	}{
		{"issues", f.IssuesPayload(testRepo, "opened", 1, "carol")},
		{"issue_comment", upper(f.IssueCommentPayload(testRepo, cm))},
		{"issues", labeled},
	} {
		resp, err := f.Deliver(u, hookSecret, d.event, d.payload)
		if err != nil || resp.StatusCode != 202 {
			t.Fatalf("%s: %v %v", d.event, resp.StatusCode, err)
		}
	}
	if n, err := p.Poll(ctx, col.sink); err != nil || n != 0 || len(col.all()) != 3 {
		t.Fatalf("poll after webhooks: n=%d err=%v, %d events: %+v", n, err, len(col.all()), col.all())
	}

	// Poll first, then the webhook (a late delivery), after a restart.
	f.AddComment(testRepo, 1, "dave", "me too")
	f.SetState(testRepo, 1, "dave", "closed")
	if _, err := p.Poll(ctx, col.sink); err != nil || len(col.all()) != 5 {
		t.Fatalf("poll: %v, %d events", err, len(col.all()))
	}
	st.Close()
	st2 := openStore(t, dir)
	defer st2.Close()
	u2 := hookServer(t, WebhookHandler(hookSecret, col.sink, WithStore(st2)))
	comments := f.Comments(testRepo, 1)
	for _, d := range []struct {
		event   string
		payload map[string]any
	}{
		{"issue_comment", f.IssueCommentPayload(testRepo, comments[len(comments)-1].ID)},
		{"issues", upper(f.IssuesPayload(testRepo, "closed", 1, "dave"))},
	} {
		resp, err := f.Deliver(u2, hookSecret, d.event, d.payload)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("late %s: %v %v", d.event, resp.StatusCode, err)
		}
	}
	if len(col.all()) != 5 {
		t.Fatalf("late deliveries announced again: %+v", col.all()[5:])
	}
}
