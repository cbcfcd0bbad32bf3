package github

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	gh "github.com/google/go-github/v62/github"
)

// Write kinds: one GitHub change each, possibly several requests.
const (
	WriteCreate  = "create"
	WriteComment = "comment"
	WriteClaim   = "claim"
	WriteBlock   = "block"
	WriteUnblock = "unblock"
	WriteClose   = "close"
	WriteLabels  = "labels"
	WriteAssign  = "assign"
	// WriteRelease makes a claimed task ready again: status:ready, Login
	// unassigned (when set), and the comment Body (when set).
	WriteRelease = "release"
	// WriteUnassign removes Login from the assignees (a claim backing off).
	WriteUnassign = "unassign"
)

// maxBody keeps comment bodies under GitHub's 65536-character limit with
// room for the marker.
const maxBody = 65000

// Write is a serialisable description of one GitHub write. Enqueued ones
// carry an ID, which is also the idempotency marker put in the comment or
// issue body they create.
type Write struct {
	ID     string    `json:"id,omitempty"`
	Kind   string    `json:"kind"`
	Repo   string    `json:"repo"`
	Issue  int       `json:"issue,omitempty"`
	Body   string    `json:"body,omitempty"` // comment text; block reason
	Task   *TaskSpec `json:"task,omitempty"` // create
	Add    []string  `json:"add,omitempty"`  // labels to add (labels)
	Remove []string  `json:"remove,omitempty"`
	Agent  string    `json:"agent,omitempty"` // claim
	Login  string    `json:"login,omitempty"` // claim, assign
	PR     string    `json:"pr,omitempty"`    // close
	// Meta is the caller's, kept with the write and handed back to OnDone
	// (the node keeps there which swarm to notify).
	Meta map[string]string `json:"meta,omitempty"`

	// Progress, kept durably by the queue.
	Step int  `json:"step,omitempty"` // requests (steps) already done
	Sent bool `json:"sent,omitempty"` // the current step may have reached GitHub
	// SentAt is when the current step's request last went out: until
	// SentAt + the queue's Settle, a check that does not find it does not
	// post again (GitHub may show it late, or apply it late).
	SentAt time.Time `json:"sent_at,omitempty"`
	Checks int       `json:"checks,omitempty"` // unconfirmed checks of the current step
	// Reposted: a marked comment was posted again after an attempt that
	// was never confirmed; both may exist, so the queue checks later
	// (dedupe.go).
	Reposted  bool      `json:"reposted,omitempty"`
	Limited   int       `json:"limited,omitempty"` // secondary rate limits met
	FailedAt  time.Time `json:"failed_at,omitempty"`
	Attempts  int       `json:"attempts,omitempty"`
	Enqueued  time.Time `json:"enqueued"`
	NextAt    time.Time `json:"next_at,omitempty"`
	LastError string    `json:"last_error,omitempty"`
}

// Result is the outcome of a write.
type Result struct {
	Ref  Ref
	Task *Task // create only
}

// Marker is the invisible tag that lets a retry find its earlier success.
func Marker(id string) string { return "<!-- swarm-write:" + id + " -->" }

// Validate rejects writes GitHub would refuse, before they are queued.
func (w Write) Validate() error {
	if _, _, err := ParseRepo(w.Repo); err != nil {
		return err
	}
	if w.Kind != WriteCreate && w.Issue <= 0 {
		return fmt.Errorf("github: %s write needs an issue number", w.Kind)
	}
	if utf8.RuneCountInString(w.Body) > maxBody {
		return fmt.Errorf("github: text of %d characters exceeds GitHub's limit", utf8.RuneCountInString(w.Body))
	}
	switch w.Kind {
	case WriteCreate:
		if w.Task == nil {
			return errors.New("github: create write without a task")
		}
		return w.Task.validate()
	case WriteComment:
		if strings.TrimSpace(w.Body) == "" {
			return errors.New("github: comment is empty")
		}
	case WriteClaim:
		if strings.TrimSpace(w.Agent) == "" {
			return errors.New("github: claim needs the agent's name")
		}
	case WriteAssign, WriteUnassign:
		if w.Login == "" {
			return fmt.Errorf("github: %s needs a GitHub login", w.Kind)
		}
	case WriteRelease:
	case WriteLabels:
		return validLabels(w.Add, w.Remove)
	case WriteBlock, WriteUnblock, WriteClose:
	default:
		return fmt.Errorf("github: unknown write kind %q", w.Kind)
	}
	return nil
}

func validLabels(add, remove []string) error {
	if len(add)+len(remove) == 0 {
		return errors.New("github: labels write changes nothing")
	}
	for _, l := range append(append([]string(nil), add...), remove...) {
		if strings.TrimSpace(l) == "" || utf8.RuneCountInString(l) > 50 || strings.Contains(l, ",") {
			return fmt.Errorf("github: label %q: want 1-50 characters, no commas", l)
		}
	}
	return nil
}

func (w Write) action() string {
	return map[string]string{WriteCreate: ActionCreated, WriteComment: ActionCommented,
		WriteClaim: ActionClaimed, WriteBlock: ActionBlocked, WriteUnblock: ActionUnblocked,
		WriteClose: ActionCompleted, WriteLabels: ActionLabeled, WriteAssign: ActionAssigned,
		WriteRelease: ActionReleased, WriteUnassign: ActionReleased}[w.Kind]
}

// Apply performs w now, without the queue.
func (c *Client) Apply(ctx context.Context, w Write) (Result, error) {
	w.ID, w.Step, w.Sent = "", 0, false
	return c.execute(ctx, &w, execOpts{})
}

// execOpts are the queue's part in executing a write.
type execOpts struct {
	// save records progress durably (nil outside the queue).
	save func(*Write) error
	now  func() time.Time // default time.Now
	// settle: how long after a request that may have landed a check
	// that does not find it waits before writing again.
	settle time.Duration
}

// Unconfirmed says an earlier request of the write may still land: it
// was not found yet, and it is too early to write again. Retry at Until
// at the latest.
type Unconfirmed struct {
	Until time.Time
}

func (e *Unconfirmed) Error() string {
	return "github: an earlier attempt of this write may still land; checking again before writing again (until " +
		e.Until.UTC().Format(time.RFC3339) + ")"
}

// step is one request of a write. Only steps that create something
// (marked) are not idempotent; they embed the marker and, when an earlier
// attempt may have landed (recheck), look for it first.
type step struct {
	marked bool
	run    func(recheck bool) error
}

type run struct {
	ctx         context.Context
	c           *Client
	owner, name string
	w           *Write
	o           execOpts
	res         Result
	issueURL    string
	commentURL  string
}

// execute runs w's remaining steps. o.save (nil outside the queue)
// records progress durably: right before a marked step's request, so a
// crash mid-request leaves Sent set; and after each step, so a retry
// does not redo it.
func (c *Client) execute(ctx context.Context, w *Write, o execOpts) (Result, error) {
	if err := w.Validate(); err != nil {
		return Result{}, err
	}
	if o.now == nil {
		o.now = time.Now
	}
	owner, n, _ := ParseRepo(w.Repo)
	x := &run{ctx: ctx, c: c, owner: owner, name: n, w: w, o: o,
		res: Result{Ref: Ref{Repo: w.Repo, Issue: w.Issue, Action: w.action()}}}
	steps := x.plan()
	save := o.save
	for w.Step < len(steps) {
		if err := steps[w.Step].run(w.Sent); err != nil {
			return x.res, err
		}
		w.Step, w.Sent, w.SentAt, w.Checks = w.Step+1, false, time.Time{}, 0
		if save != nil && w.Step < len(steps) {
			if err := save(w); err != nil {
				return x.res, err
			}
		}
	}
	x.res.Ref.URL = x.issueURL
	if x.res.Ref.URL == "" || w.Kind == WriteComment {
		x.res.Ref.URL = firstNonEmpty(x.commentURL, x.issueURL)
	}
	return x.res, nil
}

// uncertain errors leave open whether the request took effect.
func uncertain(err error) bool {
	return Transient(err) || errors.Is(err, context.Canceled)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func (x *run) plan() []step {
	w := x.w
	switch w.Kind {
	case WriteCreate:
		return []step{{marked: true, run: x.create}}
	case WriteComment:
		return []step{x.comment(w.Body)}
	case WriteClaim:
		s := []step{x.comment("Claimed by " + w.Agent), x.status(LabelInProgress)}
		if w.Login != "" {
			s = append(s, x.assign(w.Login))
		}
		return s
	case WriteBlock:
		reason := "Blocked."
		if strings.TrimSpace(w.Body) != "" {
			reason = "Blocked: " + w.Body
		}
		// The comment first: its marker names the writer before the
		// label's event comes (the sync bot knows swarm writes by it).
		return []step{x.comment(reason), x.status(LabelBlocked)}
	case WriteUnblock:
		return []step{x.status(LabelReady)}
	case WriteClose:
		var s []step
		if w.PR != "" {
			s = append(s, x.comment("Completed in "+w.PR))
		}
		// A closed task keeps no status:ready or in-progress label.
		return append(s, step{run: x.close}, x.status(""))
	case WriteRelease:
		var s []step
		if strings.TrimSpace(w.Body) != "" {
			s = append(s, x.comment(w.Body)) // first, as for block
		}
		s = append(s, x.status(LabelReady))
		if w.Login != "" {
			s = append(s, x.unassign(w.Login))
		}
		return s
	case WriteUnassign:
		return []step{x.unassign(w.Login)}
	case WriteLabels:
		return []step{{run: x.labels}}
	case WriteAssign:
		return []step{x.assign(w.Login)}
	}
	return nil
}

func (x *run) what() string { return fmt.Sprintf("%s#%d", x.w.Repo, x.w.Issue) }

// marked appends the write's marker; direct (unqueued) writes have none.
func (x *run) marked(body string) string {
	if x.w.ID == "" {
		return body
	}
	return body + "\n\n" + Marker(x.w.ID)
}

// searchSince bounds the look-back for a marker: the object was created
// after the write was queued, give or take clock skew.
func (x *run) searchSince() time.Time {
	if x.w.Enqueued.IsZero() {
		return time.Time{}
	}
	return x.w.Enqueued.Add(-10 * time.Minute)
}

// intent records, durably and before the request, that a marked step's
// request may reach GitHub; a repost (after an attempt never confirmed)
// is remembered so the queue later checks for two copies. It returns
// the context to send with and the flag that says it went out.
func (x *run) intent(recheck bool) (context.Context, *atomic.Bool, error) {
	ctx, sent := withSentFlag(x.ctx)
	if x.o.save == nil {
		return ctx, sent, nil
	}
	x.w.Sent, x.w.SentAt = true, x.o.now()
	if recheck {
		x.w.Reposted = true
	}
	return ctx, sent, x.o.save(x.w)
}

// sendFailed notes a marked request's failure: when GitHub answered
// (refused, rate limited) or the request never left, nothing landed.
func (x *run) sendFailed(err error, sent *atomic.Bool) error {
	if !uncertain(err) || notSent(err) || !sent.Load() {
		x.w.Sent = false
	}
	return err
}

// unsettled is the error that holds a write whose earlier request was
// not found, while that request may still show up (lagging list reads)
// or still be applied (after a timeout or a crash).
func (x *run) unsettled() error {
	if x.o.settle <= 0 {
		return nil
	}
	from := x.w.SentAt
	if from.IsZero() {
		from = x.w.Enqueued
	}
	if until := from.Add(x.o.settle); x.o.now().Before(until) {
		return &Unconfirmed{Until: until}
	}
	return nil
}

func (x *run) comment(body string) step {
	return step{marked: true, run: func(recheck bool) error {
		if recheck && x.w.ID != "" {
			url, found, err := x.findComment()
			if err != nil || found {
				x.commentURL = url
				return err
			}
			if err := x.unsettled(); err != nil {
				return err
			}
		}
		full := x.marked(body)
		ctx, sent, err := x.intent(recheck)
		if err != nil {
			return err
		}
		cm, _, err := x.c.gh.Issues.CreateComment(ctx, x.owner, x.name, x.w.Issue, &gh.IssueComment{Body: &full})
		if err != nil {
			return x.sendFailed(x.c.mapErr(err, x.what()), sent)
		}
		x.commentURL = cm.GetHTMLURL()
		return nil
	}}
}

// findComment looks for this write's marker among the issue's recent comments.
func (x *run) findComment() (string, bool, error) {
	opt := &gh.IssueListCommentsOptions{ListOptions: gh.ListOptions{PerPage: 100}}
	if s := x.searchSince(); !s.IsZero() {
		opt.Since = &s
	}
	for pages := 0; pages < 10; pages++ {
		cms, resp, err := x.c.gh.Issues.ListComments(x.ctx, x.owner, x.name, x.w.Issue, opt)
		if err != nil {
			return "", false, x.c.mapErr(err, x.what())
		}
		for _, cm := range cms {
			if strings.Contains(cm.GetBody(), Marker(x.w.ID)) {
				return cm.GetHTMLURL(), true, nil
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	return "", false, nil
}

func (x *run) create(recheck bool) error {
	var is *gh.Issue
	if recheck && x.w.ID != "" {
		found, err := x.findIssue()
		if err != nil {
			return err
		}
		is = found
		if is == nil {
			if err := x.unsettled(); err != nil {
				return err
			}
		}
	}
	if is == nil {
		spec := x.w.Task
		body, labels := x.marked(spec.Body), spec.labels()
		title := strings.TrimSpace(spec.Title)
		ctx, sent, err := x.intent(recheck)
		if err != nil {
			return err
		}
		is, _, err = x.c.gh.Issues.Create(ctx, x.owner, x.name,
			&gh.IssueRequest{Title: &title, Body: &body, Labels: &labels})
		if err != nil {
			return x.sendFailed(x.c.mapErr(err, x.w.Repo), sent)
		}
	}
	t := toTask(is)
	x.res.Task, x.res.Ref.Issue, x.issueURL = &t, t.Number, t.URL
	return nil
}

// findIssue looks for this write's marker among recently created issues.
func (x *run) findIssue() (*gh.Issue, error) {
	opt := &gh.IssueListByRepoOptions{State: "all", Sort: "created", Direction: "desc",
		Since: x.searchSince(), ListOptions: gh.ListOptions{PerPage: 100}}
	for pages := 0; pages < 5; pages++ {
		list, resp, err := x.c.gh.Issues.ListByRepo(x.ctx, x.owner, x.name, opt)
		if err != nil {
			return nil, x.c.mapErr(err, x.w.Repo)
		}
		for _, is := range list {
			if strings.Contains(is.GetBody(), Marker(x.w.ID)) {
				return is, nil
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	return nil, nil
}

// status sets the one status:* label ("" removes them all). It adds the
// new label before removing the others so the task never shows no
// status, and it touches only status labels, so concurrent edits of
// other labels survive. Labels match as GitHub's do, whatever their case,
// and the repository's own spelling of a label is reused (repoLabel).
func (x *run) status(target string) step {
	return step{run: func(bool) error {
		is, _, err := x.c.gh.Issues.Get(x.ctx, x.owner, x.name, x.w.Issue)
		if err != nil {
			return x.c.mapErr(err, x.what())
		}
		x.issueURL = is.GetHTMLURL()
		var stale []string
		has := target == ""
		// GitHub's label names are case-insensitive: a person's
		// "Status:Ready" is the status label too.
		for _, l := range is.Labels {
			switch name := l.GetName(); {
			case target != "" && strings.EqualFold(name, target):
				has = true
			case hasPrefixFold(name, statusPrefix):
				stale = append(stale, name)
			}
		}
		if !has {
			target = x.c.repoLabel(x.ctx, x.owner, x.name, target)
			if _, _, err := x.c.gh.Issues.AddLabelsToIssue(x.ctx, x.owner, x.name, x.w.Issue, []string{target}); err != nil {
				return x.c.mapErr(err, x.what())
			}
		}
		return x.removeLabels(stale)
	}}
}

// removeLabels tolerates labels already gone (GitHub answers 404).
func (x *run) removeLabels(names []string) error {
	for _, l := range names {
		_, err := x.c.gh.Issues.RemoveLabelForIssue(x.ctx, x.owner, x.name, x.w.Issue, l)
		if err = x.c.mapErr(err, x.what()); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}

func (x *run) labels(bool) error {
	if len(x.w.Add) > 0 {
		if _, _, err := x.c.gh.Issues.AddLabelsToIssue(x.ctx, x.owner, x.name, x.w.Issue, x.w.Add); err != nil {
			return x.c.mapErr(err, x.what())
		}
	}
	return x.removeLabels(x.w.Remove)
}

func (x *run) assign(login string) step {
	return step{run: func(bool) error {
		is, _, err := x.c.gh.Issues.AddAssignees(x.ctx, x.owner, x.name, x.w.Issue, []string{login})
		if err != nil {
			return x.c.mapErr(err, x.what())
		}
		x.issueURL = is.GetHTMLURL()
		return nil
	}}
}

func (x *run) unassign(login string) step {
	return step{run: func(bool) error {
		is, _, err := x.c.gh.Issues.RemoveAssignees(x.ctx, x.owner, x.name, x.w.Issue, []string{login})
		if err != nil {
			return x.c.mapErr(err, x.what())
		}
		x.issueURL = is.GetHTMLURL()
		return nil
	}}
}

func (x *run) close(bool) error {
	state, reason := "closed", "completed"
	is, _, err := x.c.gh.Issues.Edit(x.ctx, x.owner, x.name, x.w.Issue,
		&gh.IssueRequest{State: &state, StateReason: &reason})
	if err != nil {
		return x.c.mapErr(err, x.what())
	}
	x.issueURL = is.GetHTMLURL()
	return nil
}
