package fakegithub

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

const tok = "ghp_fakeTESTtoken"

// call makes one request with token and returns the status, the header
// and the decoded JSON body.
func call(t *testing.T, s *Server, token, method, path string, body any) (int, http.Header, any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, s.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v any
	json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode, resp.Header, v
}

func message(v any) string {
	m, _ := v.(map[string]any)
	s, _ := m["message"].(string)
	return s
}

func newServer(t *testing.T) *Server {
	s := New(tok)
	t.Cleanup(s.Close)
	s.AddRepo("Acme/App")
	s.CreateIssue("acme/app", "carol", "task", "")
	return s
}

// Each token is its own user; an App token has no user to show.
func TestPerTokenUsers(t *testing.T) {
	s := newServer(t)
	s.AddToken("tb", "agent-b")
	s.AddAppToken("tapp", "swarm-app[bot]")
	for _, tc := range []struct{ token, login string }{{tok, "swarm-bot"}, {"tb", "agent-b"}, {"tapp", "swarm-app[bot]"}} {
		if st, _, _ := call(t, s, tc.token, "POST", "/repos/acme/app/issues/1/comments", map[string]string{"body": "hi"}); st != 201 {
			t.Fatalf("%s: comment %d", tc.login, st)
		}
	}
	var users []string
	for _, c := range s.Comments("acme/app", 1) {
		users = append(users, c.User)
	}
	if strings.Join(users, " ") != "swarm-bot agent-b swarm-app[bot]" {
		t.Fatalf("authors %v", users)
	}
	if st, _, v := call(t, s, "tb", "GET", "/user", nil); st != 200 || v.(map[string]any)["login"] != "agent-b" {
		t.Fatalf("GET /user: %d %v", st, v)
	}
	if st, _, v := call(t, s, "tapp", "GET", "/user", nil); st != 403 || message(v) != "Resource not accessible by integration" {
		t.Fatalf("GET /user with an App token: %d %v", st, v)
	}
	if st, _, _ := call(t, s, "unknown", "GET", "/user", nil); st != 401 {
		t.Fatalf("unknown token: %d", st)
	}
	log := s.RequestLog()
	if len(log) != 5 || log[1].Login != "agent-b" || !log[1].Write() || log[3].Write() {
		t.Fatalf("log %+v", log)
	}
}

// Refusals no retry fixes: read-only token, archived repository, locked
// issue (403s without rate-limit headers at 0), issues disabled (410).
func TestPermanentRefusals(t *testing.T) {
	comment := map[string]string{"body": "x"}
	for _, tc := range []struct {
		name   string
		setup  func(s *Server)
		token  string
		status int
		msg    string
		reads  bool // reads still work
	}{
		{"read-only token", func(s *Server) { s.AddReadOnlyToken("ro", "viewer") }, "ro", 403, "Resource not accessible by personal access token", true},
		{"archived", func(s *Server) { s.ArchiveRepo("acme/app") }, tok, 403, "Repository was archived so is read-only.", true},
		{"locked", func(s *Server) { s.LockIssue("acme/app", 1) }, tok, 403, "Unable to create comment because issue is locked.", true},
		{"issues disabled", func(s *Server) { s.DisableIssues("acme/app") }, tok, 410, "Issues are disabled for this repo", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t)
			tc.setup(s)
			st, h, v := call(t, s, tc.token, "POST", "/repos/acme/app/issues/1/comments", comment)
			if st != tc.status || message(v) != tc.msg || h.Get("X-RateLimit-Remaining") == "0" || h.Get("Retry-After") != "" {
				t.Fatalf("%d %q %v", st, message(v), h)
			}
			if st, _, _ := call(t, s, tc.token, "GET", "/repos/acme/app/issues/1", nil); (st == 200) != tc.reads {
				t.Fatalf("read: %d", st)
			}
			if len(s.Comments("acme/app", 1)) != 0 {
				t.Fatal("the refused write landed")
			}
		})
	}
}

// A secondary limit may come without Retry-After.
func TestSecondaryLimitWithoutRetryAfter(t *testing.T) {
	s := newServer(t)
	s.SecondaryLimit(1, 403, -1)
	st, h, v := call(t, s, tok, "GET", "/repos/acme/app/issues/1", nil)
	if st != 403 || h.Get("Retry-After") != "" || h.Get("X-RateLimit-Remaining") == "0" || !strings.Contains(message(v), "secondary rate limit") {
		t.Fatalf("%d %v %v", st, h, v)
	}
	s.SecondaryLimit(1, 429, 3*time.Second)
	if st, h, _ := call(t, s, tok, "GET", "/repos/acme/app/issues/1", nil); st != 429 || h.Get("Retry-After") != "3" {
		t.Fatalf("%d %v", st, h)
	}
}

// Repository names and labels are case-insensitive, labels keep the
// repository's spelling.
func TestCaseInsensitiveNames(t *testing.T) {
	s := newServer(t)
	s.CreateLabel("acme/app", "Status:Ready")
	if st, _, _ := call(t, s, tok, "POST", "/repos/ACME/app/issues/1/labels", []string{"status:ready", "Phase:One"}); st != 200 {
		t.Fatalf("add labels %d", st)
	}
	if got := s.Issues("Acme/APP")[0].Labels; strings.Join(got, ",") != "Status:Ready,Phase:One" {
		t.Fatalf("labels %v", got)
	}
	_, _, v := call(t, s, tok, "GET", "/repos/acme/app/issues?labels=STATUS:READY", nil)
	if l, _ := v.([]any); len(l) != 1 {
		t.Fatalf("filter by label in another case: %v", v)
	}
	if st, _, _ := call(t, s, tok, "DELETE", "/repos/acme/app/issues/1/labels/status:ready", nil); st != 200 {
		t.Fatalf("remove %d", st)
	}
	if got := s.Issues("acme/app")[0].Labels; strings.Join(got, ",") != "Phase:One" {
		t.Fatalf("labels after removal %v", got)
	}
	_, _, v = call(t, s, tok, "GET", "/repos/acme/app/issues/1", nil)
	if u, _ := v.(map[string]any)["html_url"].(string); !strings.Contains(u, "/Acme/App/issues/1") {
		t.Fatalf("the repository's own spelling: %v", u)
	}
}

// New comments and issues reach list reads only after the lag; a direct
// read is not delayed.
func TestListLag(t *testing.T) {
	s := newServer(t)
	s.SetListLag(300 * time.Millisecond)
	s.AddComment("acme/app", 1, "carol", "soon")
	n := s.CreateIssue("acme/app", "carol", "new", "")
	count := func(path string) int {
		_, _, v := call(t, s, tok, "GET", path, nil)
		l, _ := v.([]any)
		return len(l)
	}
	if count("/repos/acme/app/issues/1/comments") != 0 || count("/repos/acme/app/issues") != 1 {
		t.Fatal("listed before the lag")
	}
	if st, _, _ := call(t, s, tok, "GET", "/repos/acme/app/issues/2", nil); st != 200 || n != 2 {
		t.Fatalf("direct read %d", st)
	}
	time.Sleep(350 * time.Millisecond)
	if count("/repos/acme/app/issues/1/comments") != 1 || count("/repos/acme/app/issues") != 2 {
		t.Fatal("not listed after the lag")
	}
}

// A late write lands after its client gave up.
func TestLateApply(t *testing.T) {
	s := newServer(t)
	s.LateApply(1, 400*time.Millisecond)
	c := &http.Client{Timeout: 100 * time.Millisecond}
	req, _ := http.NewRequest("POST", s.URL+"/repos/acme/app/issues/1/comments", strings.NewReader(`{"body":"late"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	if _, err := c.Do(req); err == nil {
		t.Fatal("the client did not time out")
	}
	if len(s.Comments("acme/app", 1)) != 0 {
		t.Fatal("applied early")
	}
	time.Sleep(500 * time.Millisecond)
	if got := s.Comments("acme/app", 1); len(got) != 1 || got[0].Body != "late" {
		t.Fatalf("comments %+v", got)
	}
}

// A comment is deleted by its author only.
func TestDeleteComment(t *testing.T) {
	s := newServer(t)
	s.AddToken("tb", "agent-b")
	id := s.AddComment("acme/app", 1, "swarm-bot", "mine")
	path := "/repos/acme/app/issues/comments/" + itoa(id)
	if st, _, v := call(t, s, "tb", "DELETE", path, nil); st != 403 || !strings.Contains(message(v), "admin") {
		t.Fatalf("another's delete: %d %v", st, v)
	}
	if st, _, _ := call(t, s, tok, "DELETE", path, nil); st != 204 {
		t.Fatalf("own delete: %d", st)
	}
	if len(s.Comments("acme/app", 1)) != 0 || s.Issues("acme/app")[0].Comments != 0 {
		t.Fatal("comment not gone")
	}
	if st, _, _ := call(t, s, tok, "DELETE", path, nil); st != 404 {
		t.Fatalf("second delete: %d", st)
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
