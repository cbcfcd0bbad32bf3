package github

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/google/uuid"
)

// layer is the GitHub client and its durable write queue, made on
// first use (a node that never touches GitHub needs no token). Calls use
// the token of the command they run for when it brought one (the ctx of
// an operation, CallerToken), else the node's own. A node with no
// token of its own (a daemon started without one) still serves callers
// that bring theirs; own says which it is (the sync bot needs one).
type layer struct {
	client  *Client
	own     bool
	queue   *Queue
	mu      sync.Mutex
	waiters map[string]chan ghOutcome
}

type ghOutcome struct {
	res Result
	err error
}

// githubLayer returns the layer, making it (and starting its queue) once.
func (e *Ext) githubLayer(ctx context.Context) (*layer, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	caller := CallerToken(ctx)
	if e.layer != nil {
		if !e.layer.own && caller == "" {
			return nil, node.Userf("%v", ErrNoToken)
		}
		return e.layer, nil
	}
	api, err := ResolveAPI(e.set.APIURL, os.Getenv)
	if err != nil {
		return nil, node.Userf("%v", err)
	}
	tok := e.opt.Token
	if tok == "" {
		tok, err = TokenSource{Host: api.Host}.Own(ctx)
	}
	if errors.Is(err, ErrNoToken) && caller == "" {
		return nil, node.Userf("%v", err)
	}
	if err != nil && !errors.Is(err, ErrNoToken) {
		return nil, err
	}
	var c *Client
	if tok != "" {
		c, err = NewClient(tok, api.URL, nil)
	} else {
		c, err = NewCallerClient(api.URL, nil)
	}
	if err != nil {
		return nil, node.Userf("github: %v", err)
	}
	l := &layer{client: c, own: tok != "", waiters: map[string]chan ghOutcome{}}
	l.queue = NewQueue(e.n.Store(), c, e.log, QueueOptions{
		OnDone: func(w Write, r Result, err error) { e.writeDone(l, w, r, err) },
	})
	e.n.Go(func(context.Context) { _ = l.queue.Run(e.ctx) })
	e.layer = l
	return l, nil
}

// swarmRepo finds the repository linked to a swarm.
func (e *Ext) swarmRepo(ref string) (name, repo string, err error) {
	s, err := e.n.LiveSwarm(ref)
	if err != nil {
		return "", "", err
	}
	if s.Repo == "" {
		return "", "", node.Userf("swarm %q has no linked repository: the master links one with `swarm github link --swarm %s --repo owner/name`", s.Name, s.Name)
	}
	return s.Name, s.Repo, nil
}

// TaskResult is what a task change did.
type TaskResult struct {
	Swarm   string `json:"swarm"`
	Repo    string `json:"repo"`
	Issue   int    `json:"issue,omitempty"`
	URL     string `json:"url,omitempty"`
	Action  string `json:"action"`
	Task    *Task  `json:"task,omitempty"`
	Queued  bool   `json:"queued,omitempty"` // not done yet: the durable queue finishes it
	WriteID string `json:"write_id,omitempty"`
	Note    string `json:"note,omitempty"`
}

// How long a task operation waits for GitHub before it answers "queued".
const taskWait = 20 * time.Second

// taskWrite queues w and waits for it; the swarm is notified when it is
// done, by whoever finishes it (this call, or the daemon after a restart).
func (e *Ext) taskWrite(ctx context.Context, swarmRef string, w Write, action, text string) (TaskResult, error) {
	return e.write(ctx, swarmRef, w, action, text, true)
}

// quietWrite is taskWrite for a change the swarm was told of otherwise
// (a claim's lease, a lapse): no notification of its own.
func (e *Ext) quietWrite(ctx context.Context, swarmRef string, w Write) (TaskResult, error) {
	return e.write(ctx, swarmRef, w, w.action(), "", false)
}

func (e *Ext) write(ctx context.Context, swarmRef string, w Write, action, text string, notify bool) (TaskResult, error) {
	name, repo, err := e.swarmRepo(swarmRef)
	if err != nil {
		return TaskResult{}, err
	}
	l, err := e.githubLayer(ctx)
	if err != nil {
		return TaskResult{}, err
	}
	w.Repo = repo
	// Checked here as well as in Enqueue: here a refusal is the caller's
	// mistake, there it could also be a store fault.
	if err := w.Validate(); err != nil {
		return TaskResult{}, node.Userf("%v", err)
	}
	waiter := uuid.NewString()
	w.Meta = map[string]string{"swarm": name, "action": action, "text": text, "waiter": waiter, "login": w.Login}
	if !notify {
		delete(w.Meta, "swarm")
	}
	ch := make(chan ghOutcome, 1)
	l.mu.Lock()
	l.waiters[waiter] = ch
	l.mu.Unlock()
	defer func() { l.mu.Lock(); delete(l.waiters, waiter); l.mu.Unlock() }()
	id, err := l.queue.EnqueueFor(ctx, w) // valid by now: an error is the store's
	if err != nil {
		return TaskResult{}, err
	}
	e.ownWrites.Store(id, true)
	out := TaskResult{Swarm: name, Repo: repo, Issue: w.Issue, Action: action, WriteID: id}
	t := time.NewTimer(taskWait)
	defer t.Stop()
	select {
	case o := <-ch:
		if o.err != nil {
			return out, ghUserError(o.err)
		}
		out.URL, out.Task = o.res.Ref.URL, o.res.Task
		if o.res.Task != nil {
			out.Issue, out.URL = o.res.Task.Number, o.res.Task.URL
		}
		return out, nil
	case <-t.C:
	case <-ctx.Done():
	}
	st := l.queue.Status()
	out.Queued = true
	out.Note = "queued durably; GitHub has not confirmed it yet"
	if !st.LimitedUntil.IsZero() {
		out.Note = "queued durably: GitHub's rate limit holds writes until " + st.LimitedUntil.UTC().Format(time.RFC3339)
	}
	out.Note += "; the swarm is notified when it is done"
	return out, nil
}

// ghUserError turns GitHub's refusals into errors the caller can act on
// (UserError, errors.go).
func ghUserError(err error) error { return UserError(err) }

// writeDone runs when the queue finishes a write: it wakes the waiting
// call and notifies the swarm with a typed reference.
func (e *Ext) writeDone(l *layer, w Write, r Result, err error) {
	l.mu.Lock()
	ch := l.waiters[w.Meta["waiter"]]
	l.mu.Unlock()
	if ch != nil {
		ch <- ghOutcome{r, err}
	}
	if err != nil || w.Meta["swarm"] == "" {
		return
	}
	number, url := w.Issue, r.Ref.URL
	if r.Task != nil {
		number, url = r.Task.Number, r.Task.URL
	}
	ref := wire.Ref{Kind: "issue", Repo: w.Repo, Number: number, URL: url, Action: w.Meta["action"], Login: w.Meta["login"]}
	body := fmt.Sprintf("%s %s#%d: %s", w.Meta["action"], w.Repo, number, w.Meta["text"])
	refs := append([]wire.Ref{ref}, e.writerRef(w.Repo)...)
	if _, err := e.n.Send(e.ctx, node.SendArgs{Swarm: w.Meta["swarm"], Type: wire.TypeNotification, Body: clipText(body, 2000), Refs: refs}); err != nil {
		e.log.Warn().Err(err).Str("write", w.ID).Msg("task notification not sent")
	}
}

// TaskCreateArgs describe a new task.
type TaskCreateArgs struct {
	Swarm string
	TaskSpec
}

// TaskCreate opens an issue labelled status:ready (and phase, complexity,
// parallel as given).
func (e *Ext) TaskCreate(ctx context.Context, a TaskCreateArgs) (TaskResult, error) {
	spec := a.TaskSpec
	if spec.Phase != "" {
		phase, err := e.phase(ctx, a.Swarm, spec.Phase)
		if err != nil {
			return TaskResult{}, err
		}
		spec.Phase = phase
	}
	return e.taskWrite(ctx, a.Swarm, Write{Kind: WriteCreate, Task: &spec}, "created", spec.Title)
}

// TaskList lists a linked repository's tasks by status.
func (e *Ext) TaskList(ctx context.Context, swarm, status string) ([]Task, error) {
	_, repo, err := e.swarmRepo(swarm)
	if err != nil {
		return nil, err
	}
	l, err := e.githubLayer(ctx)
	if err != nil {
		return nil, err
	}
	ts, err := l.client.ListTasks(ctx, repo, status)
	if err != nil {
		return nil, ghUserError(err)
	}
	return ts, nil
}

// TaskComment comments on a task.
func (e *Ext) TaskComment(ctx context.Context, swarm string, issue int, body string) (TaskResult, error) {
	if strings.TrimSpace(body) == "" {
		return TaskResult{}, node.Userf("the comment is empty")
	}
	return e.taskWrite(ctx, swarm, Write{Kind: WriteComment, Issue: issue, Body: body}, "commented", body)
}

// TaskBlock marks a task blocked, with the reason as a comment.
func (e *Ext) TaskBlock(ctx context.Context, swarm string, issue int, reason string) (TaskResult, error) {
	if strings.TrimSpace(reason) == "" {
		return TaskResult{}, node.Userf("say why the task is blocked (--reason)")
	}
	return e.taskWrite(ctx, swarm, Write{Kind: WriteBlock, Issue: issue, Body: reason}, "blocked", reason)
}

// TaskUnblock makes a blocked task ready again.
func (e *Ext) TaskUnblock(ctx context.Context, swarm string, issue int) (TaskResult, error) {
	return e.taskWrite(ctx, swarm, Write{Kind: WriteUnblock, Issue: issue}, "unblocked", "ready again")
}

// TaskClose closes a task with a reference to the pull request.
func (e *Ext) TaskClose(ctx context.Context, swarm string, issue int, pr string) (TaskResult, error) {
	if strings.TrimSpace(pr) == "" {
		return TaskResult{}, node.Userf("name the pull request that completes the task (--pr #12 or a URL)")
	}
	res, err := e.taskWrite(ctx, swarm, Write{Kind: WriteClose, Issue: issue, PR: pr}, "completed", "completed in "+pr)
	if err == nil {
		if s, serr := e.n.LiveSwarm(swarm); serr == nil {
			e.leases.mu.Lock()
			_ = e.endLeases(s.ID, res.Repo, issue, time.Now(), "")
			e.leases.mu.Unlock()
		}
	}
	return res, err
}

// DurableResult is a durable send's result: the send's fields (empty: no
// P2P message is sent itself) and the comment made.
type DurableResult struct {
	node.SendResult
	// Durable: the message went to GitHub as an issue comment; the swarm
	// gets a notification with its link once GitHub has it.
	Durable *TaskResult `json:"durable,omitempty"`
}

// SendDurable posts the message as a comment on issue and sends the P2P
// notification with its link.
func (e *Ext) SendDurable(ctx context.Context, a node.SendArgs, issue int) (DurableResult, error) {
	if strings.TrimSpace(a.Body) == "" {
		return DurableResult{}, node.Userf("the message is empty")
	}
	if issue <= 0 {
		return DurableResult{}, node.Userf("a durable message needs the issue it is posted on (--issue N)")
	}
	if a.To != "" || a.Thread != "" || a.ReplyTo != "" {
		return DurableResult{}, node.Userf("a durable message is a comment for the whole swarm: --to, --thread and --reply-to do not apply")
	}
	body := fmt.Sprintf("%s\n\n— %s, via agent-swarm", a.Body, e.n.Domain())
	tr, err := e.taskWrite(ctx, a.Swarm, Write{Kind: WriteComment, Issue: issue, Body: body}, "commented", a.Body)
	if err != nil {
		return DurableResult{}, err
	}
	return DurableResult{SendResult: node.SendResult{Swarm: tr.Swarm}, Durable: &tr}, nil
}

// Link links a repository to a swarm: a settings record in the signed
// membership log, so every member knows it. Master only.
func (e *Ext) Link(ref, repo string) (node.SwarmInfo, error) {
	if _, _, err := ParseRepo(repo); err != nil {
		return node.SwarmInfo{}, node.Userf("%v", err)
	}
	if s, err := e.n.LiveSwarm(ref); err == nil && !strings.EqualFold(s.Repo, repo) {
		// A new link starts from the repository as it stands: what was
		// read of it before (an earlier link) is not read again.
		e.forgetRepo(repo)
	}
	return e.n.LinkRepo(ref, repo)
}

// Status is `swarm github status`.
type Status struct {
	Token  string        `json:"token"` // "found" or the reason it is not: never the token
	APIURL string        `json:"api_url"`
	Login  string        `json:"login,omitempty"`
	Links  []LinkStatus  `json:"links"`
	Queue  *QueueSummary `json:"queue,omitempty"`
}

// LinkStatus is one linked swarm and its bot.
type LinkStatus struct {
	Swarm string `json:"swarm"`
	Repo  string `json:"repo"`
	Bot   string `json:"bot"` // running (poll every …), or why not
}

// QueueSummary is the write queue and the rate limit left.
type QueueSummary struct {
	Pending        int    `json:"pending"`
	GivenUp        int    `json:"given_up"`
	LimitedUntil   string `json:"limited_until,omitempty"`
	LastError      string `json:"last_error,omitempty"`
	RateRemaining  int    `json:"rate_remaining"`
	RateLimit      int    `json:"rate_limit"`
	RateResetsAt   string `json:"rate_resets_at,omitempty"`
	RateLastSeenAt string `json:"rate_seen_at,omitempty"`
	// Failed: the last writes given up, newest first, and why.
	Failed []FailedWrite `json:"failed,omitempty"`
}

// FailedWrite is a write the queue gave up.
type FailedWrite struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Repo     string `json:"repo"`
	Issue    int    `json:"issue,omitempty"`
	Error    string `json:"error"`
	FailedAt string `json:"failed_at,omitempty"`
}

// StatusOf reports links, bots, queue and rate limit.
func (e *Ext) StatusOf(ctx context.Context) (Status, error) {
	st := Status{APIURL: e.set.APIURL, Login: e.set.Login, Links: []LinkStatus{}}
	if api, err := ResolveAPI(e.set.APIURL, os.Getenv); err == nil {
		st.APIURL = api.Display()
	}
	for _, s := range e.n.Swarms() {
		if s.Left || s.Repo == "" {
			continue
		}
		st.Links = append(st.Links, LinkStatus{Swarm: s.Name, Repo: s.Repo, Bot: e.botState(s)})
	}
	l, err := e.githubLayer(ctx)
	if err != nil {
		st.Token = "missing: " + err.Error()
		return st, nil
	}
	st.Token = "found"
	if CallerToken(ctx) != "" {
		st.Token = "found (this command's)"
	}
	q := l.queue.Status()
	qs := &QueueSummary{Pending: q.Pending, GivenUp: q.Dead, LastError: q.LastError,
		RateRemaining: q.Rate.Remaining, RateLimit: q.Rate.Limit}
	if !q.LimitedUntil.IsZero() {
		qs.LimitedUntil = q.LimitedUntil.UTC().Format(time.RFC3339)
	}
	if !q.Rate.Reset.IsZero() {
		qs.RateResetsAt = q.Rate.Reset.UTC().Format(time.RFC3339)
	}
	if !q.Rate.Seen.IsZero() {
		qs.RateLastSeenAt = q.Rate.Seen.UTC().Format(time.RFC3339)
	}
	for _, w := range q.Failed {
		f := FailedWrite{ID: w.ID, Kind: w.Kind, Repo: w.Repo, Issue: w.Issue, Error: w.LastError}
		if !w.FailedAt.IsZero() {
			f.FailedAt = w.FailedAt.UTC().Format(time.RFC3339)
		}
		qs.Failed = append(qs.Failed, f)
	}
	st.Queue = qs
	return st, nil
}

// phase checks a task's phase against the swarm's set: the phases of the
// config ("github": {"phases": [...]}) and the repository's own phase:*
// labels, matched whatever their case; the repository's spelling is
// kept. A phase outside the set is refused, naming the set.
func (e *Ext) phase(ctx context.Context, swarm, phase string) (string, error) {
	_, repo, err := e.swarmRepo(swarm)
	if err != nil {
		return "", err
	}
	l, err := e.githubLayer(ctx)
	if err != nil {
		return "", err
	}
	set := append([]string(nil), e.set.Phases...)
	set = append(set, l.client.phaseLabels(ctx, repo)...)
	for _, p := range set {
		if strings.EqualFold(p, phase) {
			return p, nil
		}
	}
	if len(set) == 0 {
		return "", node.Userf("phase %q: the repository has no phase:* labels and the config names no phases (\"github\": {\"phases\": [...]}): define the set first", phase)
	}
	return "", node.Userf("phase %q is not one of the swarm's phases: %s", phase, strings.Join(set, ", "))
}
