package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v62/github"
	"github.com/rs/zerolog"

	"github.com/agent-swarm/agent-swarm/store"
)

// Event is issue activity turned into a P2P notification. ID is stable per
// underlying object ("event:<id>", "comment:<id>", "issue:<number>",
// "hook:<body hash>") so receivers can drop repeats.
type Event struct {
	ID       string    `json:"id"`
	Repo     string    `json:"repo"`
	Issue    int       `json:"issue"`
	Action   string    `json:"action"` // opened, commented, labeled, assigned, closed, reopened, ...
	Actor    string    `json:"actor,omitempty"`
	URL      string    `json:"url,omitempty"`
	Title    string    `json:"title,omitempty"`
	Body     string    `json:"body,omitempty"` // excerpt
	Label    string    `json:"label,omitempty"`
	Assignee string    `json:"assignee,omitempty"`
	At       time.Time `json:"at"`
	// PR: the issue is a pull request (GitHub numbers both alike).
	PR bool `json:"pr,omitempty"`
	// WriteID is the swarm write whose marker the comment or issue body
	// carries: a swarm member made it, whoever's token wrote it.
	WriteID string `json:"write_id,omitempty"`
}

// wanted are the event kinds an agent needs; the rest (unlabeled,
// unassigned, mentioned, subscribed, renamed, referenced...) are dropped:
// a mention is its comment, a subscription is noise.
var wanted = map[string]bool{"opened": true, "commented": true, "labeled": true, "assigned": true,
	"closed": true, "reopened": true}

// writeIDOf reads the swarm write marker in a body ("" if none).
func writeIDOf(body string) string {
	m := markerIDRE.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

var markerIDRE = regexp.MustCompile(`<!-- swarm-write:([0-9A-Za-z-]{1,64}) -->`)

const (
	excerptLen = 280
	seenTTL    = 7 * 24 * time.Hour
)

var markerRE = regexp.MustCompile(`<!-- swarm-write:[^>]*-->`)

// excerpt shortens a body for a notification, dropping our write markers.
func excerpt(s string) string {
	s = strings.TrimSpace(markerRE.ReplaceAllString(s, ""))
	if r := []rune(s); len(r) > excerptLen {
		return string(r[:excerptLen]) + "…"
	}
	return s
}

// Poller reads a repository's issue activity with conditional requests.
// Its cursor is stored after the sink has taken the events, so a restart
// neither repeats nor skips; a TTL'd seen-set catches a crash in between.
type Poller struct {
	c           *Client
	st          *store.Store
	log         zerolog.Logger
	repo        string
	owner, name string
	// Backfill makes the first poll deliver the existing history. By
	// default the first poll only records where the repository stands: a
	// newly linked repository must not flood the swarm with old activity.
	Backfill bool
	MaxPages int // pages read per list per poll; default 10
	// Seen is what was announced; share it with the webhook handler so
	// the two sources announce an event once.
	Seen *Seen
	// Since: with no usable cursor, start from this time rather than from
	// now: a node taking the bot over from another master reads from
	// where that one may have left off, and Seen (which holds what the
	// other announced, from its relays) drops what was told already.
	Since time.Time
	floor time.Time // nothing before it is announced (set with Since)
	// Learn, if set, hears each new comment that carries a swarm write's
	// marker before the events of the same poll are handed on.
	Learn func(Event)
}

type cursor struct {
	Primed     bool              `json:"primed"`
	EventID    int64             `json:"event_id"`
	IssueNum   int               `json:"issue_num"`
	CommentID  int64             `json:"comment_id"`
	CommentsAt time.Time         `json:"comments_at"`
	ETags      map[string]string `json:"etags"`
	PolledAt   time.Time         `json:"polled_at,omitempty"`
}

// cursorMaxAge: a cursor older than this would walk past what Seen still
// remembers (seenTTL) and replay; such a node starts again from Since.
const cursorMaxAge = seenTTL - 24*time.Hour

// etag is the stored ETag to send: only page 1 is asked conditionally.
func (c *cursor) etag(u string, page int) string {
	if page != 1 {
		return ""
	}
	return c.ETags[u]
}

// NewPoller makes a poller for repo ("owner/name").
func NewPoller(c *Client, st *store.Store, repo string, log zerolog.Logger) (*Poller, error) {
	o, n, err := ParseRepo(repo)
	if err != nil {
		return nil, err
	}
	return &Poller{c: c, st: st, repo: repo, owner: o, name: n, MaxPages: 10, Seen: NewSeen(st),
		log: log.With().Str("component", "github-poller").Str("repo", repo).Logger()}, nil
}

func (p *Poller) key() []byte { return store.Key("gh", "poll", p.owner, p.name) }

func (p *Poller) load() (cursor, error) {
	var c cursor
	err := p.st.View(func(tx *store.Tx) error { return tx.Get(p.key(), &c) })
	if errors.Is(err, store.ErrNotFound) {
		err = nil
	}
	if c.ETags == nil {
		c.ETags = map[string]string{}
	}
	return c, err
}

func (p *Poller) save(c cursor) error {
	return p.st.Update(func(tx *store.Tx) error { return tx.Put(p.key(), c) })
}

// Poll hands new activity to sink, oldest first, and returns how many
// events it handed. A sink error stops the poll; what the sink took is
// recorded, the rest comes again next time.
func (p *Poller) Poll(ctx context.Context, sink func(Event) error) (int, error) {
	cur, err := p.load()
	if err != nil {
		return 0, err
	}
	if cur.Primed && (cur.PolledAt.IsZero() || time.Since(cur.PolledAt) > cursorMaxAge) && !p.Since.IsZero() {
		cur = cursor{ETags: map[string]string{}} // too old to trust: from Since
	}
	switch {
	case !cur.Primed && !p.Since.IsZero():
		cur = cursor{Primed: true, CommentsAt: p.Since, ETags: map[string]string{}}
		p.floor = p.Since
		p.log.Info().Time("since", p.Since).Msg("poller takes over; reading from where the last bot may have stopped")
	case !cur.Primed && !p.Backfill:
		if err := p.prime(ctx, &cur); err != nil {
			return 0, err
		}
		cur.PolledAt = time.Now()
		return 0, p.save(cur)
	}
	cur.Primed, cur.PolledAt = true, time.Now()
	// Openings, then events, then comments, as they happened; the
	// comments are read before the events, so a swarm write's comment
	// (its marker) names its author a swarm writer before that write's
	// label and assignment events are handed on.
	total, err := p.pollIssues(ctx, &cur, sink)
	if err != nil {
		return total, err
	}
	batch, err := p.fetchComments(ctx, &cur)
	if err != nil {
		return total, err
	}
	n, err := p.pollEvents(ctx, &cur, sink)
	total += n
	if err != nil {
		return total, err
	}
	n, err = p.emitComments(&cur, batch, sink)
	return total + n, err
}

// beforeFloor: t is before what a taking-over poller reads from.
func (p *Poller) beforeFloor(t time.Time) bool { return !p.floor.IsZero() && t.Before(p.floor) }

// get fetches one page, conditionally when etag is set; notModified
// reports a 304. go-github treats 304 as an error (it is not 2xx), with
// the response attached, so it is recognised by status here.
func (p *Poller) get(ctx context.Context, u, etag string, v any) (resp *gh.Response, notModified bool, err error) {
	req, err := p.c.gh.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, false, err
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err = p.c.gh.Do(ctx, req, v)
	if resp != nil && resp.StatusCode == http.StatusNotModified {
		return resp, true, nil
	}
	if err != nil {
		return resp, false, p.c.mapErr(err, p.repo)
	}
	return resp, false, nil
}

func (p *Poller) path(tail string) string {
	return fmt.Sprintf("repos/%s/%s/%s", url.PathEscape(p.owner), url.PathEscape(p.name), tail)
}

func (p *Poller) issuesURL() string {
	return p.path("issues?state=all&sort=created&direction=desc&per_page=100")
}

func (p *Poller) eventsURL() string { return p.path("issues/events?per_page=100") }

func pageURL(u string, page int) string {
	if page == 1 {
		return u // page 1 keeps the URL its ETag was stored under
	}
	return u + "&page=" + strconv.Itoa(page)
}

// prime records the newest issue, event and comment without emitting.
func (p *Poller) prime(ctx context.Context, cur *cursor) error {
	var issues []*gh.Issue
	if _, _, err := p.get(ctx, p.path("issues?state=all&sort=created&direction=desc&per_page=1"), "", &issues); err != nil {
		return err
	}
	var events []*gh.IssueEvent
	if _, _, err := p.get(ctx, p.path("issues/events?per_page=1"), "", &events); err != nil {
		return err
	}
	var comments []*gh.IssueComment
	if _, _, err := p.get(ctx, p.path("issues/comments?sort=created&direction=desc&per_page=1"), "", &comments); err != nil {
		return err
	}
	if len(issues) > 0 {
		cur.IssueNum = issues[0].GetNumber()
	}
	if len(events) > 0 {
		cur.EventID = events[0].GetID()
	}
	if len(comments) > 0 {
		cur.CommentID, cur.CommentsAt = comments[0].GetID(), comments[0].GetCreatedAt().Time
	}
	cur.Primed = true
	p.log.Info().Int("issue", cur.IssueNum).Int64("event", cur.EventID).Msg("poller primed; history not replayed")
	return nil
}

// newest walks a newest-first list until an item at or below the cursor,
// returning the newer items oldest first. ok is false on a 304.
func newest[T any](ctx context.Context, p *Poller, cur *cursor, u string, isNew func(T) bool) (items []T, etag string, ok bool, err error) {
	for page := 1; page <= p.MaxPages; page++ {
		var list []T
		resp, nm, err := p.get(ctx, pageURL(u, page), cur.etag(u, page), &list)
		if err != nil || nm {
			return nil, "", false, err
		}
		if page == 1 {
			etag = resp.Header.Get("ETag")
		}
		for _, it := range list {
			if !isNew(it) {
				return reverse(items), etag, true, nil
			}
			items = append(items, it)
		}
		if resp.NextPage == 0 {
			return reverse(items), etag, true, nil
		}
	}
	p.log.Warn().Str("list", u).Int("pages", p.MaxPages).Msg("more activity than one poll reads; older part skipped")
	return reverse(items), etag, true, nil
}

func reverse[T any](s []T) []T {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
	return s
}

func (p *Poller) pollIssues(ctx context.Context, cur *cursor, sink func(Event) error) (int, error) {
	u := p.issuesURL()
	list, etag, ok, err := newest(ctx, p, cur, u, func(is *gh.Issue) bool {
		return is.GetNumber() > cur.IssueNum && !p.beforeFloor(is.GetCreatedAt().Time)
	})
	if err != nil || !ok {
		return 0, err
	}
	n := 0
	for _, is := range list {
		if !p.beforeFloor(is.GetCreatedAt().Time) {
			sent, err := p.emit(p.issueOpened(is), sink)
			if err != nil {
				return n, p.saveAfter(*cur, err)
			}
			if sent {
				n++
			}
		}
		cur.IssueNum = is.GetNumber()
	}
	cur.ETags[u] = etag
	return n, p.save(*cur)
}

// saveAfter records the progress made before a sink error.
func (p *Poller) saveAfter(cur cursor, cause error) error {
	if err := p.save(cur); err != nil {
		p.log.Error().Err(err).Msg("save poll cursor")
	}
	return cause
}

func (p *Poller) pollEvents(ctx context.Context, cur *cursor, sink func(Event) error) (int, error) {
	u := p.eventsURL()
	list, etag, ok, err := newest(ctx, p, cur, u, func(e *gh.IssueEvent) bool {
		return e.GetID() > cur.EventID && !p.beforeFloor(e.GetCreatedAt().Time)
	})
	if err != nil || !ok {
		return 0, err
	}
	n := 0
	for _, e := range list {
		if ev, ok := p.issueEvent(e); ok && !p.beforeFloor(ev.At) {
			sent, err := p.emit(ev, sink)
			if err != nil {
				return n, p.saveAfter(*cur, err)
			}
			if sent {
				n++
			}
		}
		cur.EventID = e.GetID()
	}
	cur.ETags[u] = etag
	return n, p.save(*cur)
}

// commentBatch is one poll's new comments, read before the events so
// that the swarm writers they reveal are known when the events come
// (Poller.Learn), and handed to the sink after them.
type commentBatch struct {
	u, etag     string
	list        []*gh.IssueComment
	notModified bool
}

// fetchComments lists comments updated since the cursor, oldest first.
// "since" is second-grained and its edge inclusive or not, so it starts a
// little early; comment IDs (increasing) and the seen-set drop repeats.
func (p *Poller) fetchComments(ctx context.Context, cur *cursor) (commentBatch, error) {
	b := commentBatch{u: p.path("issues/comments?sort=updated&direction=asc&per_page=100")}
	if !cur.CommentsAt.IsZero() {
		b.u += "&since=" + url.QueryEscape(cur.CommentsAt.Add(-2*time.Second).UTC().Format(time.RFC3339))
	}
	for page := 1; ; page++ {
		if page > p.MaxPages {
			b.etag = "" // the rest comes next poll; page 1 must not answer 304 then
			break
		}
		var list []*gh.IssueComment
		resp, nm, err := p.get(ctx, pageURL(b.u, page), cur.etag(b.u, page), &list)
		if err != nil {
			return b, err
		}
		if nm {
			b.notModified = true
			return b, nil
		}
		if page == 1 {
			b.etag = resp.Header.Get("ETag")
		}
		b.list = append(b.list, list...)
		if resp.NextPage == 0 {
			break
		}
	}
	if p.Learn != nil {
		for _, cm := range b.list {
			if ev := p.commented(cm); ev.WriteID != "" {
				p.Learn(ev)
			}
		}
	}
	return b, nil
}

// emitComments hands the batch's new comments to sink. Edits of old
// comments are not notifications.
func (p *Poller) emitComments(cur *cursor, b commentBatch, sink func(Event) error) (int, error) {
	if b.notModified {
		return 0, nil
	}
	startID, n := cur.CommentID, 0
	for _, cm := range b.list {
		if cm.GetID() > startID && !p.beforeFloor(cm.GetCreatedAt().Time) {
			sent, err := p.emit(p.commented(cm), sink)
			if err != nil {
				return n, p.saveAfter(*cur, err)
			}
			if sent {
				n++
			}
			cur.CommentID = max(cur.CommentID, cm.GetID())
		}
		cur.CommentsAt = laterOf(cur.CommentsAt, cm.GetUpdatedAt().Time)
	}
	// The comments URL moves with the cursor: keep only current ETags.
	keep := map[string]string{b.u: b.etag}
	for _, k := range []string{p.issuesURL(), p.eventsURL()} {
		keep[k] = cur.ETags[k]
	}
	cur.ETags = keep
	return n, p.save(*cur)
}

// emit hands e to sink unless it was handed before, by this poller or
// by a webhook sharing its Seen.
func (p *Poller) emit(e Event, sink func(Event) error) (bool, error) {
	return p.Seen.Once(e, sink)
}

func (p *Poller) issueOpened(is *gh.Issue) Event {
	return Event{ID: fmt.Sprintf("issue:%d", is.GetNumber()), Repo: p.repo, Issue: is.GetNumber(),
		Action: "opened", Actor: is.GetUser().GetLogin(), URL: is.GetHTMLURL(), Title: is.GetTitle(),
		Body: excerpt(is.GetBody()), At: is.GetCreatedAt().Time, PR: is.IsPullRequest(), WriteID: writeIDOf(is.GetBody())}
}

// issueEvent converts one issue event; kinds an agent does not need are
// dropped (wanted).
func (p *Poller) issueEvent(e *gh.IssueEvent) (Event, bool) {
	if !wanted[e.GetEvent()] {
		return Event{}, false
	}
	is := e.GetIssue()
	return Event{ID: fmt.Sprintf("event:%d", e.GetID()), Repo: p.repo, Issue: is.GetNumber(),
		Action: e.GetEvent(), Actor: e.GetActor().GetLogin(), URL: is.GetHTMLURL(), Title: is.GetTitle(),
		Label: e.GetLabel().GetName(), Assignee: e.GetAssignee().GetLogin(), At: e.GetCreatedAt().Time,
		PR: is.IsPullRequest()}, true
}

func (p *Poller) commented(cm *gh.IssueComment) Event {
	return Event{ID: fmt.Sprintf("comment:%d", cm.GetID()), Repo: p.repo, Issue: issueNumber(cm.GetIssueURL()),
		Action: "commented", Actor: cm.GetUser().GetLogin(), URL: cm.GetHTMLURL(),
		Body: excerpt(cm.GetBody()), At: cm.GetCreatedAt().Time,
		// GitHub links a pull request's conversation comments under /pull/.
		PR: strings.Contains(cm.GetHTMLURL(), "/pull/"), WriteID: writeIDOf(cm.GetBody())}
}

// issueNumber reads the number from an issue API URL (".../issues/12").
func issueNumber(u string) int {
	n, _ := strconv.Atoi(u[strings.LastIndexByte(u, '/')+1:])
	return n
}

// Bot polls a repository and hands its activity to Sink.
type Bot struct {
	Client   *Client
	Store    *store.Store
	Repo     string
	Interval time.Duration // default 1 min
	Sink     func(Event) error
	Log      zerolog.Logger
	Backfill bool
	Seen     *Seen       // shared with the webhook handler; default: its own on Store
	Since    time.Time   // see Poller.Since
	Learn    func(Event) // see Poller.Learn
}

// Run polls until ctx ends, waiting out rate limits.
func (b Bot) Run(ctx context.Context) error {
	p, err := NewPoller(b.Client, b.Store, b.Repo, b.Log)
	if err != nil {
		return err
	}
	p.Backfill, p.Since, p.Learn = b.Backfill, b.Since, b.Learn
	if b.Seen != nil {
		p.Seen = b.Seen
	}
	every := b.Interval
	if every <= 0 {
		every = time.Minute
	}
	for {
		n, err := p.Poll(ctx, b.Sink)
		wait := every
		var rl *RateLimited
		switch {
		case errors.As(err, &rl):
			wait = max(wait, time.Until(rl.Until))
			p.log.Info().Time("until", rl.Until).Msg("poll rate limited")
		case err != nil && ctx.Err() == nil:
			p.log.Warn().Err(err).Msg("poll failed")
		case n > 0:
			p.log.Debug().Int("events", n).Msg("polled")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}
