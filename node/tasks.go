package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/agent-swarm/agent-swarm/github"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/google/uuid"
)

// GitHubSettings are the node's GitHub choices (config.json "github").
// The token is never here: it comes from GITHUB_TOKEN, GH_TOKEN or
// `gh auth token`.
type GitHubSettings struct {
	APIURL string `json:"api_url,omitempty"` // GitHub Enterprise: https://HOST/api/v3/
	Login  string `json:"login,omitempty"`   // this agent's GitHub login (claims assign it)
	// Sync: "auto" (default) runs the bot on the node that is master of
	// a linked swarm, so members are not notified twice; "on", "off".
	Sync      string   `json:"sync,omitempty"`
	PollEvery Duration `json:"poll_every,omitempty"` // default 60s
	// WebhookSecretEnv names the environment variable holding the
	// webhook secret; default SWARM_GITHUB_WEBHOOK_SECRET. Unset: no
	// webhook endpoint, polling only.
	WebhookSecretEnv string `json:"webhook_secret_env,omitempty"`
}

func (n *Node) ghSettings() GitHubSettings {
	if n.cfg.GitHub == nil {
		return GitHubSettings{}
	}
	return *n.cfg.GitHub
}

// ghLayer is the GitHub client and its durable write queue, made on
// first use (a node that never touches GitHub needs no token). Calls use
// the token of the command they run for when it brought one (the ctx of
// an operation, github.WithToken), else the node's own. A node with no
// token of its own (a daemon started without one) still serves callers
// that bring theirs; own says which it is (the sync bot needs one).
type ghLayer struct {
	client  *github.Client
	own     bool
	queue   *github.Queue
	mu      sync.Mutex
	waiters map[string]chan ghOutcome
}

type ghOutcome struct {
	res github.Result
	err error
}

// githubLayer returns the layer, making it (and starting its queue) once.
func (n *Node) githubLayer(ctx context.Context) (*ghLayer, error) {
	n.ghMu.Lock()
	defer n.ghMu.Unlock()
	caller := github.CallerToken(ctx)
	if n.gh != nil {
		if !n.gh.own && caller == "" {
			return nil, Userf("%v", github.ErrNoToken)
		}
		return n.gh, nil
	}
	tok, err := github.TokenSource{}.Own(ctx)
	if errors.Is(err, github.ErrNoToken) && caller == "" {
		return nil, Userf("%v", err)
	}
	if err != nil && !errors.Is(err, github.ErrNoToken) {
		return nil, err
	}
	var c *github.Client
	if tok != "" {
		c, err = github.NewClient(tok, n.ghSettings().APIURL, nil)
	} else {
		c, err = github.NewCallerClient(n.ghSettings().APIURL, nil)
	}
	if err != nil {
		return nil, Userf("github: %v", err)
	}
	l := &ghLayer{client: c, own: tok != "", waiters: map[string]chan ghOutcome{}}
	l.queue = github.NewQueue(n.st, c, n.log, github.QueueOptions{
		OnDone: func(w github.Write, r github.Result, err error) { n.writeDone(l, w, r, err) },
	})
	n.loop(func() { _ = l.queue.Run(n.ctx) })
	n.gh = l
	return l, nil
}

// swarmRepo finds the repository linked to a swarm.
func (n *Node) swarmRepo(ref string) (name, repo string, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	s, err := n.live(ref)
	if err != nil {
		return "", "", err
	}
	if s.state.Settings.Repo == "" {
		return "", "", Userf("swarm %q has no linked repository: the master links one with `swarm github link --swarm %s --repo owner/name`", s.state.Settings.Name, s.state.Settings.Name)
	}
	return s.state.Settings.Name, s.state.Settings.Repo, nil
}

// TaskResult is what a task change did.
type TaskResult struct {
	Swarm   string       `json:"swarm"`
	Repo    string       `json:"repo"`
	Issue   int          `json:"issue,omitempty"`
	URL     string       `json:"url,omitempty"`
	Action  string       `json:"action"`
	Task    *github.Task `json:"task,omitempty"`
	Queued  bool         `json:"queued,omitempty"` // not done yet: the durable queue finishes it
	WriteID string       `json:"write_id,omitempty"`
	Note    string       `json:"note,omitempty"`
}

// How long a task operation waits for GitHub before it answers "queued".
const taskWait = 20 * time.Second

// taskWrite queues w and waits for it; the swarm is notified when it is
// done, by whoever finishes it (this call, or the daemon after a restart).
func (n *Node) taskWrite(ctx context.Context, swarmRef string, w github.Write, action, text string) (TaskResult, error) {
	name, repo, err := n.swarmRepo(swarmRef)
	if err != nil {
		return TaskResult{}, err
	}
	l, err := n.githubLayer(ctx)
	if err != nil {
		return TaskResult{}, err
	}
	w.Repo = repo
	// Checked here as well as in Enqueue: here a refusal is the caller's
	// mistake, there it could also be a store fault.
	if err := w.Validate(); err != nil {
		return TaskResult{}, Userf("%v", err)
	}
	waiter := uuid.NewString()
	w.Meta = map[string]string{"swarm": name, "action": action, "text": text, "waiter": waiter, "login": w.Login}
	ch := make(chan ghOutcome, 1)
	l.mu.Lock()
	l.waiters[waiter] = ch
	l.mu.Unlock()
	defer func() { l.mu.Lock(); delete(l.waiters, waiter); l.mu.Unlock() }()
	id, err := l.queue.EnqueueFor(ctx, w) // valid by now: an error is the store's
	if err != nil {
		return TaskResult{}, err
	}
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

// ghUserError turns GitHub's refusals into errors the caller can act on.
func ghUserError(err error) error {
	var ve *github.ValidationError
	switch {
	case errors.Is(err, github.ErrNotFound):
		return NotFoundf("github: %v", err)
	case errors.Is(err, github.ErrUnauthorized), errors.Is(err, github.ErrForbidden):
		return Refusedf("github: %v", err)
	case errors.As(err, &ve):
		return Userf("github: %v", err)
	}
	return err
}

// writeDone runs when the queue finishes a write: it wakes the waiting
// call and notifies the swarm with a typed reference.
func (n *Node) writeDone(l *ghLayer, w github.Write, r github.Result, err error) {
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
	if _, err := n.Send(n.ctx, SendArgs{Swarm: w.Meta["swarm"], Type: wire.TypeNotification, Body: clipText(body, 2000), Refs: []wire.Ref{ref}}); err != nil {
		n.log.Warn().Err(err).Str("write", w.ID).Msg("task notification not sent")
	}
}

func clipText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && (s[max]&0xC0) == 0x80 {
		max--
	}
	return s[:max] + "…"
}

// TaskCreateArgs describe a new task.
type TaskCreateArgs struct {
	Swarm string
	github.TaskSpec
}

// TaskCreate opens an issue labelled status:ready (and phase, complexity,
// parallel as given).
func (n *Node) TaskCreate(ctx context.Context, a TaskCreateArgs) (TaskResult, error) {
	spec := a.TaskSpec
	return n.taskWrite(ctx, a.Swarm, github.Write{Kind: github.WriteCreate, Task: &spec}, "created", spec.Title)
}

// TaskList lists a linked repository's tasks by status.
func (n *Node) TaskList(ctx context.Context, swarm, status string) ([]github.Task, error) {
	_, repo, err := n.swarmRepo(swarm)
	if err != nil {
		return nil, err
	}
	l, err := n.githubLayer(ctx)
	if err != nil {
		return nil, err
	}
	ts, err := l.client.ListTasks(ctx, repo, status)
	if err != nil {
		return nil, ghUserError(err)
	}
	return ts, nil
}

// TaskClaim claims a task for this agent: a comment naming it,
// status:in-progress, and the assignment when this agent has a login.
func (n *Node) TaskClaim(ctx context.Context, swarm string, issue int) (TaskResult, error) {
	login := n.ghSettings().Login
	return n.taskWrite(ctx, swarm, github.Write{Kind: github.WriteClaim, Issue: issue, Agent: n.cfg.Domain, Login: login}, "claimed", "claimed by "+n.cfg.Domain)
}

// TaskComment comments on a task.
func (n *Node) TaskComment(ctx context.Context, swarm string, issue int, body string) (TaskResult, error) {
	if strings.TrimSpace(body) == "" {
		return TaskResult{}, Userf("the comment is empty")
	}
	return n.taskWrite(ctx, swarm, github.Write{Kind: github.WriteComment, Issue: issue, Body: body}, "commented", body)
}

// TaskBlock marks a task blocked, with the reason as a comment.
func (n *Node) TaskBlock(ctx context.Context, swarm string, issue int, reason string) (TaskResult, error) {
	if strings.TrimSpace(reason) == "" {
		return TaskResult{}, Userf("say why the task is blocked (--reason)")
	}
	return n.taskWrite(ctx, swarm, github.Write{Kind: github.WriteBlock, Issue: issue, Body: reason}, "blocked", reason)
}

// TaskUnblock makes a blocked task ready again.
func (n *Node) TaskUnblock(ctx context.Context, swarm string, issue int) (TaskResult, error) {
	return n.taskWrite(ctx, swarm, github.Write{Kind: github.WriteUnblock, Issue: issue}, "unblocked", "ready again")
}

// TaskClose closes a task with a reference to the pull request.
func (n *Node) TaskClose(ctx context.Context, swarm string, issue int, pr string) (TaskResult, error) {
	if strings.TrimSpace(pr) == "" {
		return TaskResult{}, Userf("name the pull request that completes the task (--pr #12 or a URL)")
	}
	return n.taskWrite(ctx, swarm, github.Write{Kind: github.WriteClose, Issue: issue, PR: pr}, "completed", "completed in "+pr)
}

// SendDurable posts the message as a comment on issue and sends the P2P
// notification with its link.
func (n *Node) SendDurable(ctx context.Context, a SendArgs, issue int) (SendResult, error) {
	if strings.TrimSpace(a.Body) == "" {
		return SendResult{}, Userf("the message is empty")
	}
	if issue <= 0 {
		return SendResult{}, Userf("a durable message needs the issue it is posted on (--issue N)")
	}
	if a.To != "" || a.Thread != "" || a.ReplyTo != "" {
		return SendResult{}, Userf("a durable message is a comment for the whole swarm: --to, --thread and --reply-to do not apply")
	}
	body := fmt.Sprintf("%s\n\n— %s, via agent-swarm", a.Body, n.cfg.Domain)
	tr, err := n.taskWrite(ctx, a.Swarm, github.Write{Kind: github.WriteComment, Issue: issue, Body: body}, "commented", a.Body)
	if err != nil {
		return SendResult{}, err
	}
	return SendResult{Swarm: tr.Swarm, Durable: &tr}, nil
}

// GitHubLink links a repository to a swarm: a settings record in the
// signed membership log, so every member knows it. Master only.
func (n *Node) GitHubLink(ref, repo string) (SwarmInfo, error) {
	if _, _, err := github.ParseRepo(repo); err != nil {
		return SwarmInfo{}, Userf("%v", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	s, err := n.live(ref)
	if err != nil {
		return SwarmInfo{}, err
	}
	set := s.state.Settings
	set.Repo = repo
	if err := n.appendRecord(s, wire.Record{Type: wire.RecSettings, Settings: &set}, nil); err != nil {
		return SwarmInfo{}, err
	}
	n.kickBots()
	return n.info(s), nil
}

// GitHubStatus is `swarm github status`.
type GitHubStatus struct {
	Token  string        `json:"token"` // "found" or the reason it is not: never the token
	APIURL string        `json:"api_url"`
	Login  string        `json:"login,omitempty"`
	Links  []GitHubLink  `json:"links"`
	Queue  *QueueSummary `json:"queue,omitempty"`
}

// GitHubLink is one linked swarm and its bot.
type GitHubLink struct {
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
}

// GitHubStatusOf reports links, bots, queue and rate limit.
func (n *Node) GitHubStatusOf(ctx context.Context) (GitHubStatus, error) {
	st := GitHubStatus{APIURL: n.ghSettings().APIURL, Login: n.ghSettings().Login, Links: []GitHubLink{}}
	if st.APIURL == "" {
		st.APIURL = "https://api.github.com/"
	}
	n.mu.Lock()
	for _, s := range n.swarms {
		if s.local.Left || s.state.Settings.Repo == "" {
			continue
		}
		st.Links = append(st.Links, GitHubLink{Swarm: s.state.Settings.Name, Repo: s.state.Settings.Repo, Bot: n.botState(s)})
	}
	n.mu.Unlock()
	l, err := n.githubLayer(ctx)
	if err != nil {
		st.Token = "missing: " + err.Error()
		return st, nil
	}
	st.Token = "found"
	if github.CallerToken(ctx) != "" {
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
	st.Queue = qs
	return st, nil
}
