// Package github is the GitHub Issues layer of the swarm (DESIGN §7), an
// extension of the node (ext.go): task tools on issues, a durable write
// queue that honours rate limits, and a sync bot (polling, and a webhook)
// that turns issue activity into P2P notifications. The binary includes
// it by a blank import (cmd/swarm/extensions.go).
//
// Store keys used by this package, extending the key layout documented in
// package store (all under "gh/"):
//
//	gh/q/<seq:16 hex>-<rand>      write queue: a pending Write, in order
//	gh/qseq                       last queue sequence number
//	gh/qdead/<id>                 a Write GitHub rejected for good, or given up (kept for inspection)
//	gh/qcheck/<id>                a later check for two copies of a reposted comment (dedupe.go)
//	gh/poll/<owner>/<name>        poller cursor (last event/comment/issue, ETags)
//	gh/seen/<owner>/<name>/<id>   event IDs handed to the sink (TTL)
//	gh/hook/<delivery id>         webhook deliveries handled (TTL 24h)
package github

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v62/github"
)

// Client is a GitHub REST client for one token. It remembers the last rate
// limit headers it saw so the queue and Status can report them.
type Client struct {
	gh    *gh.Client
	token string // only to redact it from errors; never logged
	pace  pacer  // spaces writes (pace.go)

	mu    sync.Mutex
	rate  Rate
	login string // the token's user, once asked
}

// Rate is the primary rate limit as last reported by GitHub.
type Rate struct {
	Limit     int
	Remaining int
	Reset     time.Time
	Seen      time.Time // when these headers arrived; zero if never
}

// NewClient makes a client. baseURL "" means api.github.com; otherwise it is
// a GitHub Enterprise API root ("https://ghe.example.com/api/v3/", or the
// host alone, to which /api/v3/ is added) or a test server. httpClient nil
// gets one with a 30 s timeout; a given one is copied, not modified.
func NewClient(token, baseURL string, httpClient *http.Client) (*Client, error) {
	if strings.TrimSpace(token) == "" {
		return nil, ErrNoToken
	}
	return makeClient(token, baseURL, httpClient)
}

// NewCallerClient makes a client with no token of its own, for a daemon
// that has none: each request is made with the token of the command it
// runs for (WithToken); one without fails with ErrNoToken before it
// reaches GitHub.
func NewCallerClient(baseURL string, httpClient *http.Client) (*Client, error) {
	return makeClient("", baseURL, httpClient)
}

func makeClient(token, baseURL string, httpClient *http.Client) (*Client, error) {
	if err := checkAPIURL(baseURL); err != nil {
		return nil, err
	}
	c := &Client{token: token, pace: newPacer()}
	hc := &http.Client{Timeout: 30 * time.Second}
	if httpClient != nil {
		cp := *httpClient
		hc = &cp
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc.Transport = rateRecorder{next: base, c: c}
	g := gh.NewClient(hc)
	g.UserAgent = UserAgent
	if token != "" {
		g = g.WithAuthToken(token)
	}
	if baseURL != "" {
		var err error
		if g, err = g.WithEnterpriseURLs(baseURL, baseURL); err != nil {
			return nil, fmt.Errorf("github: bad API base URL %q: %v", baseURL, err)
		}
	}
	c.gh = g
	return c, nil
}

// GH exposes the underlying go-github client for calls this package lacks.
func (c *Client) GH() *gh.Client { return c.gh }

// Login is the token's own user (GET /user, asked once). The bot uses it
// to leave out the echo of the node's own writes.
func (c *Client) Login(ctx context.Context) (string, error) {
	c.mu.Lock()
	l := c.login
	c.mu.Unlock()
	if l != "" {
		return l, nil
	}
	if t := CallerToken(ctx); t != "" && t != c.token {
		// A caller's token may be another user's: not this client's login.
		ctx = context.WithValue(ctx, callerKey{}, "")
	}
	u, _, err := c.gh.Users.Get(ctx, "")
	if err != nil {
		return "", c.mapErr(err, "user")
	}
	c.mu.Lock()
	c.login = u.GetLogin()
	c.mu.Unlock()
	return u.GetLogin(), nil
}

// Rate returns the rate limit last seen.
func (c *Client) Rate() Rate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rate
}

// rateRecorder notes rate-limit headers of every response, whichever call
// made it, so waiting decisions use the freshest numbers.
type rateRecorder struct {
	next http.RoundTripper
	c    *Client
}

func (r rateRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	// The calling command's token, when it brought one, replaces the
	// client's own (set by go-github's auth transport around this one).
	caller := CallerToken(req.Context())
	if caller == "" && r.c.token == "" {
		return nil, ErrNoToken
	}
	if caller != "" && caller != r.c.token {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", "Bearer "+caller)
	}
	var resp *http.Response
	var err error
	if isWrite(req.Method) {
		resp, err = r.c.pace.do(req, r.next)
	} else {
		resp, err = r.next.RoundTrip(req)
	}
	if err != nil {
		if caller != "" && strings.Contains(err.Error(), caller) {
			err = errors.New(strings.ReplaceAll(err.Error(), caller, "[redacted]"))
		}
		return resp, err
	}
	h := resp.Header
	defer secondaryWithoutReset(resp)
	if res := h.Get("X-RateLimit-Resource"); res != "" && res != "core" {
		return resp, nil // search/graphql budgets are separate; writes use core
	}
	rem, err1 := strconv.Atoi(h.Get("X-RateLimit-Remaining"))
	reset, err2 := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64)
	if err1 == nil && err2 == nil {
		limit, _ := strconv.Atoi(h.Get("X-RateLimit-Limit"))
		r.c.mu.Lock()
		r.c.rate = Rate{Limit: limit, Remaining: rem, Reset: time.Unix(reset, 0), Seen: time.Now()}
		r.c.mu.Unlock()
	}
	return resp, nil
}

var (
	ownerRE = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$`)
	nameRE  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)
)

// ParseRepo splits "owner/name".
func ParseRepo(repo string) (owner, name string, err error) {
	o, n, ok := strings.Cut(strings.TrimSpace(repo), "/")
	switch {
	case !ok || o == "" || n == "":
		return "", "", fmt.Errorf("github: repository %q: want owner/name", repo)
	case strings.Contains(n, "/"):
		return "", "", fmt.Errorf("github: repository %q: want owner/name, not a path or URL", repo)
	case !ownerRE.MatchString(o):
		return "", "", fmt.Errorf("github: repository %q: owner %q may hold only letters, digits and '-'", repo, o)
	case !nameRE.MatchString(n) || n == "." || n == "..":
		return "", "", fmt.Errorf("github: repository %q: name %q may hold only letters, digits, '.', '_' and '-'", repo, n)
	}
	return o, n, nil
}

// Errors callers branch on. None of them ever carries the token.
var (
	ErrUnauthorized = errors.New("github: the token was rejected (401): it is bad, expired or revoked; set a valid GITHUB_TOKEN or GH_TOKEN, or run `gh auth login`")
	ErrNotFound     = errors.New("github: not found")
	ErrForbidden    = errors.New("github: forbidden")
	// ErrGone is a 410: the repository's issues are disabled.
	ErrGone = errors.New("github: gone (410: issues are disabled for the repository)")
)

// RateLimited means GitHub refused the call for a rate limit; retry at Until.
type RateLimited struct {
	Until     time.Time
	Secondary bool // a secondary (abuse) limit rather than the hourly budget
	Message   string
	// RetryAfter is GitHub's Retry-After, when it sent one (Advised).
	// Without it GitHub asks for at least a minute, then exponential
	// backoff (the queue's secondaryWait).
	RetryAfter time.Duration
	Advised    bool
}

func (e *RateLimited) Error() string {
	kind := "rate limit"
	if e.Secondary {
		kind = "secondary rate limit"
	}
	return fmt.Sprintf("github: %s exceeded, retry at %s: %s", kind, e.Until.UTC().Format(time.RFC3339), e.Message)
}

// ValidationError is a 422: GitHub understood the request but refused it.
type ValidationError struct {
	Message string
	Errors  []string
}

func (e *ValidationError) Error() string {
	if len(e.Errors) == 0 {
		return "github: validation failed: " + e.Message
	}
	return fmt.Sprintf("github: validation failed: %s (%s)", e.Message, strings.Join(e.Errors, "; "))
}

// APIError is any other non-success answer; 5xx ones are worth retrying.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("github: HTTP %d: %s", e.Status, e.Message)
}

// mapErr turns a go-github error into one of ours. what names the object
// ("owner/name#3") for 404s. The request URL is left out: it adds nothing
// for the user and could in principle carry secrets in a query.
func (c *Client) mapErr(err error, what string) error {
	if err == nil {
		return nil
	}
	var rl *gh.RateLimitError
	var ab *gh.AbuseRateLimitError
	var er *gh.ErrorResponse
	switch {
	case errors.As(err, &rl):
		until := rl.Rate.Reset.Time
		if until.IsZero() {
			until = time.Now().Add(time.Minute)
		}
		return &RateLimited{Until: until, Message: rl.Message}
	case errors.As(err, &ab):
		// ab.RetryAfter is a real Retry-After, or what is left of one
		// (go-github's local check): the transport hides the primary
		// reset that go-github would otherwise take for it.
		rl := &RateLimited{Until: time.Now().Add(time.Minute), Secondary: true, Message: ab.Message}
		if ab.RetryAfter != nil {
			rl.RetryAfter, rl.Advised = max(*ab.RetryAfter, 0), true
			rl.Until = time.Now().Add(rl.RetryAfter)
		}
		return rl
	case errors.As(err, &er):
		return c.mapResponse(er, what)
	}
	return c.redact(err)
}

func (c *Client) mapResponse(er *gh.ErrorResponse, what string) error {
	status := 0
	if er.Response != nil {
		status = er.Response.StatusCode
	}
	switch status {
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusNotFound:
		return fmt.Errorf("%w: %s (or the token cannot see it)", ErrNotFound, what)
	case http.StatusUnprocessableEntity:
		return c.validation(er)
	case http.StatusTooManyRequests:
		// go-github v62 only recognises 403 rate limits; GitHub also uses 429.
		return limited429(er)
	case http.StatusForbidden:
		return fmt.Errorf("%w: %s: %s", ErrForbidden, what, c.scrub(er.Message))
	case http.StatusGone:
		return fmt.Errorf("%w: %s: %s", ErrGone, what, c.scrub(er.Message))
	}
	return &APIError{Status: status, Message: c.scrub(er.Message)}
}

func (c *Client) validation(er *gh.ErrorResponse) error {
	v := &ValidationError{Message: c.scrub(er.Message)}
	for _, e := range er.Errors {
		s := e.Message
		if s == "" {
			s = strings.TrimSpace(fmt.Sprintf("%s %s %s", e.Resource, e.Field, e.Code))
		}
		v.Errors = append(v.Errors, c.scrub(s))
	}
	return v
}

// limited429 reads a 429: a primary limit when the budget is spent (wait
// for its reset), else a secondary one (Retry-After, when given).
func limited429(er *gh.ErrorResponse) *RateLimited {
	h := er.Response.Header
	if h.Get("X-RateLimit-Remaining") == "0" {
		if e, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			return &RateLimited{Until: time.Unix(e, 0), Message: er.Message}
		}
	}
	rl := &RateLimited{Until: time.Now().Add(time.Minute), Secondary: true, Message: er.Message}
	if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s >= 0 {
		rl.RetryAfter, rl.Advised = time.Duration(s)*time.Second, true
		rl.Until = time.Now().Add(rl.RetryAfter)
	}
	return rl
}

// secondaryWithoutReset hides X-RateLimit-Reset from a 403 or 429 that is
// not a spent primary budget. go-github takes that header for a
// secondary limit's Retry-After when there is none, and then refuses
// every request locally until the hourly reset: the queue waited ~50
// minutes where GitHub asks for one (issue #15). Its rate was recorded.
func secondaryWithoutReset(resp *http.Response) {
	if (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests) &&
		resp.Header.Get("X-RateLimit-Remaining") != "0" {
		resp.Header.Del("X-RateLimit-Reset")
	}
}

func (c *Client) scrub(s string) string {
	if c.token != "" && strings.Contains(s, c.token) {
		return strings.ReplaceAll(s, c.token, "[redacted]")
	}
	return s
}

// redact guards against a transport error quoting the token.
func (c *Client) redact(err error) error {
	if c.token != "" && strings.Contains(err.Error(), c.token) {
		return errors.New(c.scrub(err.Error()))
	}
	return err
}

// Transient reports whether err may succeed on retry without any change:
// network failures, timeouts and 5xx answers. Such a write may or may not
// have reached GitHub. Rate limits are reported separately (RateLimited).
func Transient(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status >= 500 || ae.Status == 0
	}
	var ne net.Error
	var ue *url.Error
	return errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}
