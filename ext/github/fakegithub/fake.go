// Package fakegithub is an in-memory fake of the part of the GitHub REST
// API the swarm uses (issues, labels, assignees, comments, issue events,
// rate limits, webhooks). It is used only by tests: go-github talks to it
// unchanged, with the server URL as an Enterprise base URL (the fake
// answers both /repos/... and /api/v3/repos/...).
//
// It reproduces the behaviour the client depends on: JSON shapes,
// pagination with Link headers, ETag / If-None-Match with 304s that cost
// no rate limit, primary and secondary rate limits (with or without
// Retry-After), 401/404/422 bodies, and injected faults (errors, dropped
// responses after a write applied). And what hid the bugs of issue #15:
// a user per token and App tokens (users.go), list reads that lag and
// writes applied after the client gave up (lag.go), refusals no retry
// fixes — read-only tokens, archived repositories, locked issues, issues
// disabled (limits.go) — case-insensitive repository and label names
// (labels.go), and a log of requests with their times (record.go).
package fakegithub

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	docsURL        = "https://docs.github.com/rest"
	primaryDocs    = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-the-primary-rate-limit"
	secondaryDocs  = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
	defaultPerPage = 30
	maxPerPage     = 100
)

// Issue is a snapshot of an issue on the fake.
type Issue struct {
	Number      int
	Title       string
	Body        string
	State       string // open or closed
	StateReason string
	User        string
	Labels      []string
	Assignees   []string
	Comments    int
	CreatedAt   time.Time
	UpdatedAt   time.Time
	ClosedAt    time.Time
	Locked      bool

	listedAt time.Time // when list reads first show it (lag.go)
}

// Comment is a snapshot of an issue comment.
type Comment struct {
	ID        int64
	Issue     int
	User      string
	Body      string
	CreatedAt time.Time
	UpdatedAt time.Time

	listedAt time.Time // when list reads first show it (lag.go)
}

// Event is a snapshot of an issue event (labeled, closed, ...).
type Event struct {
	ID        int64
	Issue     int
	Event     string
	Actor     string
	Label     string
	Assignee  string
	CreatedAt time.Time
}

type repo struct {
	owner, name string
	issues      []*Issue // index = number-1
	comments    []*Comment
	events      []*Event
	labels      []string // the repository's labels, as first spelled (labels.go)
	// archived: every write is a 403; noIssues: issue routes answer 410
	// (limits.go).
	archived, noIssues bool
}

// Server is the fake. All state is guarded by mu; each request runs
// entirely under it, which keeps the fake simple and its answers ordered.
type Server struct {
	URL string

	srv   *httptest.Server
	token string
	login string

	mu        sync.Mutex
	users     map[string]*user // by token (users.go)
	cur       *user            // the user of the request being served
	log       []Request        // every authenticated request (record.go)
	lag       time.Duration    // list reads show new objects this late (lag.go)
	lateN     int              // writes applied late (lag.go)
	lateAfter time.Duration
	repos     map[string]*repo
	nextID    int64
	limit     int
	remaining int
	window    time.Duration
	resetAt   time.Time
	requests  int
	failN     int
	failCode  int
	secN      int
	secCode   int
	secAfter  time.Duration
	dropN     int
}

// Option configures New.
type Option func(*Server)

// WithLogin sets the login of the token's user (default "swarm-bot").
func WithLogin(login string) Option { return func(s *Server) { s.login = login } }

// WithRateLimit sets the primary budget per window (default 5000 per hour).
func WithRateLimit(limit int, window time.Duration) Option {
	return func(s *Server) { s.limit, s.remaining, s.window = limit, limit, window }
}

// New starts a fake accepting token. Close it when done.
func New(token string, opts ...Option) *Server {
	s := &Server{token: token, login: "swarm-bot", repos: map[string]*repo{},
		nextID: 1000, limit: 5000, remaining: 5000, window: time.Hour}
	for _, o := range opts {
		o(s)
	}
	s.users = map[string]*user{token: {login: s.login}}
	s.resetAt = nextReset(time.Now(), s.window)
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// nextReset is whole seconds, like X-RateLimit-Reset.
func nextReset(now time.Time, window time.Duration) time.Time {
	return now.Add(window).Truncate(time.Second).Add(time.Second)
}

func now() time.Time { return time.Now().UTC().Truncate(time.Second) }

// AddRepo creates an empty repository "owner/name".
func (s *Server) AddRepo(full string) {
	o, n, _ := strings.Cut(full, "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repos[strings.ToLower(full)] = &repo{owner: o, name: n}
}

// ---- fault and limit injection ----

// FailNext makes the next n requests fail with status (e.g. 500, 502).
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failCode = n, status
}

// SecondaryLimit makes the next n requests hit a secondary rate limit,
// answered with status (403 or 429) and Retry-After; a negative
// retryAfter sends none (GitHub does not always: clients must then wait
// at least a minute).
func (s *Server) SecondaryLimit(n, status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secN, s.secCode, s.secAfter = n, status, retryAfter
}

// DropNextWrite applies the next n non-GET requests and then closes the
// connection without answering: the client cannot know the write landed.
func (s *Server) DropNextWrite(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropN = n
}

// SetRemaining sets the primary budget left in the current window, and
// optionally (window > 0) restarts the window so it resets after window.
func (s *Server) SetRemaining(n int, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remaining = n
	if window > 0 {
		s.window = window
		s.resetAt = nextReset(time.Now(), window)
	}
}

// RateRemaining is the primary budget left.
func (s *Server) RateRemaining() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refill()
	return s.remaining
}

// Requests counts authenticated requests received.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func (s *Server) refill() {
	if !time.Now().Before(s.resetAt) {
		s.remaining = s.limit
		s.resetAt = nextReset(time.Now(), s.window)
	}
}

// ---- inspection and out-of-band activity ("a human on github.com") ----

// Issues returns copies of all issues of repo.
func (s *Server) Issues(full string) []Issue {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Issue
	if r := s.repoOf(full); r != nil {
		for _, i := range r.issues {
			out = append(out, cloneIssue(i))
		}
	}
	return out
}

// Comments returns copies of the comments on one issue.
func (s *Server) Comments(full string, number int) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Comment
	if r := s.repoOf(full); r != nil {
		for _, c := range r.comments {
			if c.Issue == number {
				out = append(out, *c)
			}
		}
	}
	return out
}

// Events returns copies of the repo's issue events, oldest first.
func (s *Server) Events(full string) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Event
	if r := s.repoOf(full); r != nil {
		for _, e := range r.events {
			out = append(out, *e)
		}
	}
	return out
}

// CreateIssue opens an issue as user, without using the API budget.
func (s *Server) CreateIssue(full, user, title, body string, labels ...string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.createIssue(s.repoOf(full), user, title, body, labels, nil).Number
}

// AddComment comments as user, as if on github.com.
func (s *Server) AddComment(full string, number int, user, body string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repoOf(full)
	return s.addComment(r, r.issues[number-1], user, body).ID
}

// AddLabel labels an issue as user, recording a labeled event.
func (s *Server) AddLabel(full string, number int, user, label string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repoOf(full)
	s.addLabels(r, r.issues[number-1], user, []string{label})
}

// SetState opens or closes an issue as user.
func (s *Server) SetState(full string, number int, user, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repoOf(full)
	s.setState(r, r.issues[number-1], user, state, "")
}

func cloneIssue(i *Issue) Issue {
	c := *i
	c.Labels = append([]string(nil), i.Labels...)
	c.Assignees = append([]string(nil), i.Assignees...)
	return c
}

// ---- state changes (callers hold mu) ----

func (s *Server) id() int64 { s.nextID++; return s.nextID }

func (s *Server) createIssue(r *repo, user, title, body string, labels, assignees []string) *Issue {
	t := now()
	i := &Issue{Number: len(r.issues) + 1, Title: title, Body: body, State: "open", User: user,
		CreatedAt: t, UpdatedAt: t, listedAt: time.Now().Add(s.lag)}
	r.issues = append(r.issues, i)
	s.addLabels(r, i, user, labels)
	s.addAssignees(r, i, user, assignees)
	return i
}

func (s *Server) event(r *repo, i *Issue, kind, actor, label, assignee string) {
	r.events = append(r.events, &Event{ID: s.id(), Issue: i.Number, Event: kind, Actor: actor,
		Label: label, Assignee: assignee, CreatedAt: now()})
	i.UpdatedAt = now()
}

func (s *Server) addComment(r *repo, i *Issue, user, body string) *Comment {
	t := now()
	c := &Comment{ID: s.id(), Issue: i.Number, User: user, Body: body, CreatedAt: t, UpdatedAt: t,
		listedAt: time.Now().Add(s.lag)}
	r.comments = append(r.comments, c)
	i.Comments++
	i.UpdatedAt = t
	return c
}

func (s *Server) addLabels(r *repo, i *Issue, actor string, labels []string) {
	for _, l := range labels {
		l = r.label(l)
		if !contains(i.Labels, l) {
			i.Labels = append(i.Labels, l)
			s.event(r, i, "labeled", actor, l, "")
		}
	}
}

func (s *Server) removeLabel(r *repo, i *Issue, actor, label string) bool {
	for k, l := range i.Labels {
		if strings.EqualFold(l, label) {
			i.Labels = append(i.Labels[:k:k], i.Labels[k+1:]...)
			s.event(r, i, "unlabeled", actor, l, "")
			return true
		}
	}
	return false
}

func (s *Server) setLabels(r *repo, i *Issue, actor string, labels []string) {
	for _, l := range append([]string(nil), i.Labels...) {
		if !containsFold(labels, l) {
			s.removeLabel(r, i, actor, l)
		}
	}
	s.addLabels(r, i, actor, labels)
}

func (s *Server) addAssignees(r *repo, i *Issue, actor string, logins []string) {
	for _, l := range logins {
		if !contains(i.Assignees, l) {
			i.Assignees = append(i.Assignees, l)
			s.event(r, i, "assigned", actor, "", l)
		}
	}
}

func (s *Server) setAssignees(r *repo, i *Issue, actor string, logins []string) {
	kept := i.Assignees[:0:0]
	for _, l := range i.Assignees {
		if contains(logins, l) {
			kept = append(kept, l)
		} else {
			s.event(r, i, "unassigned", actor, "", l)
		}
	}
	i.Assignees = kept
	s.addAssignees(r, i, actor, logins)
}

func (s *Server) setState(r *repo, i *Issue, actor, state, reason string) {
	if i.State == state {
		return
	}
	i.State = state
	if state == "closed" {
		i.ClosedAt = now()
		i.StateReason = reason
		if reason == "" {
			i.StateReason = "completed"
		}
		s.event(r, i, "closed", actor, "", "")
		return
	}
	i.ClosedAt, i.StateReason = time.Time{}, "reopened"
	s.event(r, i, "reopened", actor, "", "")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ---- HTTP ----

// reply is what a route produces; serve turns it into a response.
type reply struct {
	status int
	body   any
	list   []any // a paginated list (body ignored)
}

type apiErr struct {
	Message string           `json:"message"`
	Errors  []map[string]any `json:"errors,omitempty"`
	Docs    string           `json:"documentation_url"`
}

func fail(status int, msg string, errs ...map[string]any) reply {
	return reply{status: status, body: apiErr{Message: msg, Errors: errs, Docs: docsURL}}
}

func notFound() reply { return fail(http.StatusNotFound, "Not Found") }

func invalid(resource, field, code string) reply {
	return fail(http.StatusUnprocessableEntity, "Validation Failed",
		map[string]any{"resource": resource, "field": field, "code": code})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	// Read the body first: a late write (lag.go) is applied after the
	// client may have hung up.
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.authorized(r)
	if u == nil {
		writeJSON(w, http.StatusUnauthorized, apiErr{Message: "Bad credentials", Docs: docsURL})
		return
	}
	s.requests++
	s.record(r, u)
	s.refill()
	if s.injected(w) {
		return
	}
	if s.remaining <= 0 {
		s.rateHeaders(w.Header())
		writeJSON(w, http.StatusForbidden, apiErr{
			Message: "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID.",
			Docs:    primaryDocs})
		return
	}
	s.applyLate(r) // may let go of mu for a while
	s.cur = u
	rp := s.route(r)
	s.respond(w, r, rp)
}

// authorized is the user of the request's token, nil for none or an
// unknown one.
func (s *Server) authorized(r *http.Request) *user {
	h := r.Header.Get("Authorization")
	for _, p := range []string{"Bearer ", "token "} {
		if t, ok := strings.CutPrefix(h, p); ok {
			for tok, u := range s.users {
				if hmac.Equal([]byte(t), []byte(tok)) {
					return u
				}
			}
			return nil
		}
	}
	return nil
}

// injected answers with an injected fault, reporting whether it did.
func (s *Server) injected(w http.ResponseWriter) bool {
	if s.secN > 0 {
		s.secN--
		if s.secAfter >= 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(s.secAfter/time.Second)))
		}
		s.rateHeaders(w.Header())
		writeJSON(w, s.secCode, apiErr{
			Message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
			Docs:    secondaryDocs})
		return true
	}
	if s.failN > 0 {
		s.failN--
		writeJSON(w, s.failCode, apiErr{Message: http.StatusText(s.failCode), Docs: docsURL})
		return true
	}
	return false
}

func (s *Server) rateHeaders(h http.Header) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(s.remaining, 0)))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(s.resetAt.Unix(), 10))
	h.Set("X-RateLimit-Used", strconv.Itoa(s.limit-max(s.remaining, 0)))
	h.Set("X-RateLimit-Resource", "core")
}

func (s *Server) respond(w http.ResponseWriter, r *http.Request, rp reply) {
	if rp.list != nil {
		rp.body = s.paginate(w.Header(), r, rp.list)
	}
	var b []byte
	if rp.body != nil {
		b, _ = json.Marshal(rp.body)
	}
	if r.Method == http.MethodGet && rp.status == http.StatusOK {
		sum := sha256.Sum256(b)
		etag := `W/"` + hex.EncodeToString(sum[:16]) + `"`
		w.Header().Set("ETag", etag)
		if etagMatch(r.Header.Get("If-None-Match"), etag) {
			// GitHub: a 304 to a conditional request costs no rate limit.
			s.rateHeaders(w.Header())
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	s.remaining--
	s.rateHeaders(w.Header())
	if r.Method != http.MethodGet && s.dropN > 0 && rp.status < 300 {
		s.dropN--
		drop(w)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(rp.status)
	w.Write(b)
}

// drop closes the connection without a response: the write has been
// applied, the client sees a network error.
func drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // net/http closes the connection
}

func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == etag || t == "*" || strings.TrimPrefix(t, "W/") == strings.TrimPrefix(etag, "W/") {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// paginate slices items by page/per_page and sets the Link header.
func (s *Server) paginate(h http.Header, r *http.Request, items []any) []any {
	q := r.URL.Query()
	per, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || per <= 0 {
		per = defaultPerPage
	}
	per = min(per, maxPerPage)
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page <= 0 {
		page = 1
	}
	last := max((len(items)+per-1)/per, 1)
	link := func(p int, rel string) string {
		q.Set("page", strconv.Itoa(p))
		q.Set("per_page", strconv.Itoa(per))
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}
		return fmt.Sprintf(`<%s>; rel="%s"`, u.String(), rel)
	}
	var links []string
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(page-1, "prev"), link(1, "first"))
	}
	if len(links) > 0 {
		h.Set("Link", strings.Join(links, ", "))
	}
	lo := min((page-1)*per, len(items))
	return append([]any{}, items[lo:min(lo+per, len(items))]...)
}

// route dispatches /repos/{owner}/{repo}/issues... (with or without the
// Enterprise /api/v3 prefix). Unknown routes are 404s, as on GitHub.
func (s *Server) route(r *http.Request) reply {
	path := strings.TrimPrefix(r.URL.Path, "/api/v3")
	if path == "/user" && r.Method == http.MethodGet {
		return s.whoami()
	}
	seg := strings.Split(strings.Trim(path, "/"), "/")
	if len(seg) < 4 || seg[0] != "repos" || seg[3] != "issues" {
		return notFound()
	}
	rp := s.repoOf(seg[1] + "/" + seg[2])
	if rp == nil {
		return notFound()
	}
	if no, refused := s.refuse(r, rp); refused {
		return no
	}
	rest := seg[4:]
	if len(rest) == 0 {
		return s.routeIssues(r, rp)
	}
	switch rest[0] {
	case "comments":
		if len(rest) == 1 && r.Method == http.MethodGet {
			return s.listComments(r, rp, 0)
		}
		if len(rest) == 2 && r.Method == http.MethodDelete {
			return s.deleteComment(rp, rest[1])
		}
		return notFound()
	case "events":
		if len(rest) == 1 && r.Method == http.MethodGet {
			return s.listEvents(r, rp)
		}
		return notFound()
	}
	n, err := strconv.Atoi(rest[0])
	if err != nil || n < 1 || n > len(rp.issues) {
		return notFound()
	}
	return s.routeIssue(r, rp, rp.issues[n-1], rest[1:])
}

func (s *Server) routeIssues(r *http.Request, rp *repo) reply {
	switch r.Method {
	case http.MethodGet:
		return s.listIssues(r, rp)
	case http.MethodPost:
		return s.postIssue(r, rp)
	}
	return notFound()
}

func (s *Server) routeIssue(r *http.Request, rp *repo, i *Issue, rest []string) reply {
	key := r.Method
	if len(rest) > 0 {
		key += " " + rest[0]
	}
	switch {
	case key == "GET":
		return reply{status: 200, body: s.issueJSON(rp, i)}
	case key == "PATCH":
		return s.patchIssue(r, rp, i)
	case key == "GET comments":
		return s.listComments(r, rp, i.Number)
	case key == "POST comments":
		if i.Locked {
			return fail(http.StatusForbidden, "Unable to create comment because issue is locked.")
		}
		return s.postComment(r, rp, i)
	case key == "GET labels":
		return reply{status: 200, list: labelsJSON(i.Labels)}
	case strings.HasSuffix(key, " labels"):
		return s.labels(r, rp, i, rest[1:])
	case key == "POST assignees" || key == "DELETE assignees":
		return s.assignees(r, rp, i)
	}
	return notFound()
}

// ---- routes ----

func (s *Server) listIssues(r *http.Request, rp *repo) reply {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	var want []string
	if l := q.Get("labels"); l != "" {
		want = strings.Split(l, ",")
	}
	since, _ := time.Parse(time.RFC3339, q.Get("since"))
	var sel []*Issue
	for _, i := range rp.issues {
		if (state == "all" || i.State == state) && hasAll(i.Labels, want) && !i.UpdatedAt.Before(since) && listed(i.listedAt) {
			sel = append(sel, i)
		}
	}
	sortIssues(sel, q.Get("sort"), q.Get("direction"))
	out := []any{}
	for _, i := range sel {
		out = append(out, s.issueJSON(rp, i))
	}
	return reply{status: 200, list: out}
}

func sortIssues(sel []*Issue, by, dir string) {
	key := func(i *Issue) int64 { return int64(i.Number) } // created order
	switch by {
	case "updated":
		key = func(i *Issue) int64 { return i.UpdatedAt.UnixNano()*1024 + int64(i.Number) }
	case "comments":
		key = func(i *Issue) int64 { return int64(i.Comments)<<32 + int64(i.Number) }
	}
	sort.SliceStable(sel, func(a, b int) bool {
		if dir == "asc" {
			return key(sel[a]) < key(sel[b])
		}
		return key(sel[a]) > key(sel[b])
	})
}

func hasAll(have, want []string) bool {
	for _, w := range want {
		if !containsFold(have, strings.TrimSpace(w)) {
			return false
		}
	}
	return true
}

type issueReq struct {
	Title     *string   `json:"title"`
	Body      *string   `json:"body"`
	State     *string   `json:"state"`
	Reason    *string   `json:"state_reason"`
	Labels    *[]string `json:"labels"`
	Assignees *[]string `json:"assignees"`
	Assignee  *string   `json:"assignee"`
}

func (s *Server) postIssue(r *http.Request, rp *repo) reply {
	var in issueReq
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		return fail(http.StatusBadRequest, "Problems parsing JSON")
	}
	if in.Title == nil || strings.TrimSpace(*in.Title) == "" {
		return invalid("Issue", "title", "missing_field")
	}
	if len([]rune(*in.Title)) > 256 {
		return fail(http.StatusUnprocessableEntity, "Validation Failed", map[string]any{"resource": "Issue",
			"field": "title", "code": "custom", "message": "title is too long (maximum is 256 characters)"})
	}
	if bad := badLabels(in.Labels); bad.status != 0 {
		return bad
	}
	var body string
	if in.Body != nil {
		body = *in.Body
	}
	i := s.createIssue(rp, s.actor(), *in.Title, body, deref(in.Labels), assignees(in))
	return reply{status: http.StatusCreated, body: s.issueJSON(rp, i)}
}

func assignees(in issueReq) []string {
	a := deref(in.Assignees)
	if in.Assignee != nil && *in.Assignee != "" {
		a = append(a, *in.Assignee)
	}
	return a
}

func deref(p *[]string) []string {
	if p == nil {
		return nil
	}
	return *p
}

// badLabels is GitHub's check on label names: 1 to 50 characters.
func badLabels(labels *[]string) reply {
	for _, l := range deref(labels) {
		if strings.TrimSpace(l) == "" || len([]rune(l)) > 50 {
			return invalid("Label", "name", "invalid")
		}
	}
	return reply{}
}

func (s *Server) patchIssue(r *http.Request, rp *repo, i *Issue) reply {
	var in issueReq
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		return fail(http.StatusBadRequest, "Problems parsing JSON")
	}
	if in.State != nil && *in.State != "open" && *in.State != "closed" {
		return invalid("Issue", "state", "invalid")
	}
	if in.Title != nil && strings.TrimSpace(*in.Title) == "" {
		return invalid("Issue", "title", "missing_field")
	}
	if bad := badLabels(in.Labels); bad.status != 0 {
		return bad
	}
	if in.Title != nil && *in.Title != i.Title {
		i.Title = *in.Title
		s.event(rp, i, "renamed", s.actor(), "", "")
	}
	if in.Body != nil {
		i.Body, i.UpdatedAt = *in.Body, now()
	}
	if in.Labels != nil {
		s.setLabels(rp, i, s.actor(), *in.Labels)
	}
	if in.Assignees != nil || in.Assignee != nil {
		s.setAssignees(rp, i, s.actor(), assignees(in))
	}
	if in.State != nil {
		reason := ""
		if in.Reason != nil {
			reason = *in.Reason
		}
		s.setState(rp, i, s.actor(), *in.State, reason)
	}
	return reply{status: 200, body: s.issueJSON(rp, i)}
}

func (s *Server) postComment(r *http.Request, rp *repo, i *Issue) reply {
	var in struct {
		Body *string `json:"body"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		return fail(http.StatusBadRequest, "Problems parsing JSON")
	}
	if in.Body == nil || strings.TrimSpace(*in.Body) == "" {
		return invalid("IssueComment", "body", "missing_field")
	}
	c := s.addComment(rp, i, s.actor(), *in.Body)
	return reply{status: http.StatusCreated, body: s.commentJSON(rp, c)}
}

// listComments lists one issue's comments (number > 0, ascending) or the
// repository's (sort created|updated, direction asc|desc), both with since.
func (s *Server) listComments(r *http.Request, rp *repo, number int) reply {
	q := r.URL.Query()
	since, _ := time.Parse(time.RFC3339, q.Get("since"))
	var sel []*Comment
	for _, c := range rp.comments {
		if (number == 0 || c.Issue == number) && !c.UpdatedAt.Before(since) && listed(c.listedAt) {
			sel = append(sel, c)
		}
	}
	if number == 0 {
		sortComments(sel, q.Get("sort"), q.Get("direction"))
	}
	out := []any{}
	for _, c := range sel {
		out = append(out, s.commentJSON(rp, c))
	}
	return reply{status: 200, list: out}
}

func sortComments(sel []*Comment, by, dir string) {
	key := func(c *Comment) int64 { return c.ID }
	if by == "updated" {
		key = func(c *Comment) int64 { return c.UpdatedAt.Unix()<<24 + c.ID }
	}
	if by == "" {
		dir = "asc" // GitHub ignores direction without sort
	}
	sort.SliceStable(sel, func(a, b int) bool {
		if dir == "desc" {
			return key(sel[a]) > key(sel[b])
		}
		return key(sel[a]) < key(sel[b])
	})
}

// listEvents lists the repository's issue events, newest first.
func (s *Server) listEvents(r *http.Request, rp *repo) reply {
	out := []any{}
	for k := len(rp.events) - 1; k >= 0; k-- {
		out = append(out, s.eventJSON(rp, rp.events[k]))
	}
	return reply{status: 200, list: out}
}

func (s *Server) labels(r *http.Request, rp *repo, i *Issue, rest []string) reply {
	switch {
	case r.Method == http.MethodDelete && len(rest) == 1:
		if !s.removeLabel(rp, i, s.actor(), rest[0]) {
			return fail(http.StatusNotFound, "Label does not exist")
		}
		return reply{status: 200, list: labelsJSON(i.Labels)}
	case r.Method == http.MethodDelete && len(rest) == 0:
		s.setLabels(rp, i, s.actor(), nil)
		return reply{status: http.StatusNoContent}
	case len(rest) != 0 || (r.Method != http.MethodPost && r.Method != http.MethodPut):
		return notFound()
	}
	names, ok := decodeNames(r, "labels")
	if !ok {
		return fail(http.StatusBadRequest, "Problems parsing JSON")
	}
	if bad := badLabels(&names); bad.status != 0 {
		return bad
	}
	if r.Method == http.MethodPut {
		s.setLabels(rp, i, s.actor(), names)
	} else {
		s.addLabels(rp, i, s.actor(), names)
	}
	return reply{status: 200, list: labelsJSON(i.Labels)}
}

// decodeNames accepts ["a","b"] or {"<field>":["a","b"]}, as GitHub does.
func decodeNames(r *http.Request, field string) ([]string, bool) {
	var raw json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
		return nil, false
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list, true
	}
	var obj map[string][]string
	if json.Unmarshal(raw, &obj) != nil {
		return nil, false
	}
	return obj[field], true
}

func (s *Server) assignees(r *http.Request, rp *repo, i *Issue) reply {
	names, ok := decodeNames(r, "assignees")
	if !ok {
		return fail(http.StatusBadRequest, "Problems parsing JSON")
	}
	if r.Method == http.MethodPost {
		s.addAssignees(rp, i, s.actor(), names)
		return reply{status: http.StatusCreated, body: s.issueJSON(rp, i)}
	}
	var kept []string
	for _, a := range i.Assignees {
		if !contains(names, a) {
			kept = append(kept, a)
		}
	}
	s.setAssignees(rp, i, s.actor(), kept)
	return reply{status: 200, body: s.issueJSON(rp, i)}
}

// ---- JSON shapes (the fields go-github reads, named as GitHub names them) ----

func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

func userJSON(login string) map[string]any {
	var id int64
	for _, c := range login {
		id = id*31 + int64(c)
	}
	return map[string]any{"login": login, "id": id & 0xffffff, "type": "User",
		"html_url": "https://github.com/" + login}
}

func labelsJSON(names []string) []any {
	out := []any{}
	for _, n := range names {
		sum := sha256.Sum256([]byte(n))
		out = append(out, map[string]any{"id": int64(sum[0])<<16 | int64(sum[1])<<8 | int64(sum[2]),
			"name": n, "color": hex.EncodeToString(sum[:3]), "default": false, "description": nil})
	}
	return out
}

func (s *Server) apiBase(rp *repo) string {
	return s.URL + "/api/v3/repos/" + rp.owner + "/" + rp.name
}

func (s *Server) htmlBase(rp *repo) string {
	return s.URL + "/" + rp.owner + "/" + rp.name
}

func (s *Server) issueJSON(rp *repo, i *Issue) map[string]any {
	as := []any{}
	var first any
	for k, a := range i.Assignees {
		as = append(as, userJSON(a))
		if k == 0 {
			first = userJSON(a)
		}
	}
	var reason any
	if i.StateReason != "" {
		reason = i.StateReason
	}
	api := fmt.Sprintf("%s/issues/%d", s.apiBase(rp), i.Number)
	return map[string]any{
		"id": int64(i.Number) + 500000, "node_id": fmt.Sprintf("I_fake%d", i.Number),
		"url": api, "repository_url": s.apiBase(rp), "comments_url": api + "/comments",
		"events_url": api + "/events", "labels_url": api + "/labels{/name}",
		"html_url": fmt.Sprintf("%s/issues/%d", s.htmlBase(rp), i.Number),
		"number":   i.Number, "title": i.Title, "body": i.Body, "state": i.State, "state_reason": reason,
		"locked": i.Locked, "user": userJSON(i.User), "labels": labelsJSON(i.Labels),
		"assignee": first, "assignees": as, "milestone": nil, "comments": i.Comments,
		"created_at": ts(i.CreatedAt), "updated_at": ts(i.UpdatedAt), "closed_at": ts(i.ClosedAt),
		"author_association": "OWNER",
	}
}

func (s *Server) commentJSON(rp *repo, c *Comment) map[string]any {
	return map[string]any{
		"id": c.ID, "node_id": fmt.Sprintf("IC_fake%d", c.ID),
		"url":       fmt.Sprintf("%s/issues/comments/%d", s.apiBase(rp), c.ID),
		"html_url":  fmt.Sprintf("%s/issues/%d#issuecomment-%d", s.htmlBase(rp), c.Issue, c.ID),
		"issue_url": fmt.Sprintf("%s/issues/%d", s.apiBase(rp), c.Issue),
		"body":      c.Body, "user": userJSON(c.User),
		"created_at": ts(c.CreatedAt), "updated_at": ts(c.UpdatedAt), "author_association": "OWNER",
	}
}

func (s *Server) eventJSON(rp *repo, e *Event) map[string]any {
	m := map[string]any{
		"id": e.ID, "node_id": fmt.Sprintf("E_fake%d", e.ID),
		"url":   fmt.Sprintf("%s/issues/events/%d", s.apiBase(rp), e.ID),
		"actor": userJSON(e.Actor), "event": e.Event, "commit_id": nil, "commit_url": nil,
		"created_at": ts(e.CreatedAt), "issue": s.issueJSON(rp, rp.issues[e.Issue-1]),
	}
	if e.Label != "" {
		sum := sha256.Sum256([]byte(e.Label))
		m["label"] = map[string]any{"name": e.Label, "color": hex.EncodeToString(sum[:3])}
	}
	if e.Assignee != "" {
		m["assignee"] = userJSON(e.Assignee)
		m["assigner"] = userJSON(e.Actor)
	}
	return m
}

// ---- webhooks ----

// Sign returns the X-Hub-Signature-256 value for body.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Deliver POSTs a signed webhook, as GitHub does, with a fresh delivery ID.
func (s *Server) Deliver(url string, secret []byte, event string, payload any) (*http.Response, error) {
	var b [16]byte
	rand.Read(b[:])
	return s.DeliverID(url, secret, event, hex.EncodeToString(b[:]), payload)
}

// DeliverID is Deliver with a chosen X-GitHub-Delivery (for redeliveries).
func (s *Server) DeliverID(url string, secret []byte, event, delivery string, payload any) (*http.Response, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/fake")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-GitHub-Hook-ID", "1")
	req.Header.Set("X-Hub-Signature-256", Sign(secret, body))
	return http.DefaultClient.Do(req)
}

// IssuesPayload builds an "issues" webhook payload for issue number.
func (s *Server) IssuesPayload(full, action string, number int, sender string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.repoOf(full)
	return map[string]any{"action": action, "issue": s.issueJSON(rp, rp.issues[number-1]),
		"repository": s.repoJSON(rp), "sender": userJSON(sender)}
}

// IssueCommentPayload builds an "issue_comment" created payload.
func (s *Server) IssueCommentPayload(full string, commentID int64) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.repoOf(full)
	for _, c := range rp.comments {
		if c.ID == commentID {
			return map[string]any{"action": "created", "issue": s.issueJSON(rp, rp.issues[c.Issue-1]),
				"comment": s.commentJSON(rp, c), "repository": s.repoJSON(rp), "sender": userJSON(c.User)}
		}
	}
	return nil
}

func (s *Server) repoJSON(rp *repo) map[string]any {
	return map[string]any{"id": 42, "name": rp.name, "full_name": rp.owner + "/" + rp.name,
		"owner": userJSON(rp.owner), "html_url": s.htmlBase(rp), "url": s.apiBase(rp), "private": false}
}
