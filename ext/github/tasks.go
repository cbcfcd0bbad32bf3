package github

import (
	"context"
	"errors"
	"fmt"
	"strings"

	gh "github.com/google/go-github/v62/github"
)

// Task board labels (DESIGN §7).
const (
	LabelReady      = "status:ready"
	LabelInProgress = "status:in-progress"
	LabelBlocked    = "status:blocked"
	LabelParallel   = "parallel:yes"
	statusPrefix    = "status:"
	phasePrefix     = "phase:"
	complexPrefix   = "complexity:"
)

// Ref actions: what the node tells the swarm happened on GitHub.
const (
	ActionCreated         = "created"
	ActionClaimed         = "claimed"
	ActionCompleted       = "completed"
	ActionBlocked         = "blocked"
	ActionUnblocked       = "unblocked"
	ActionAssigned        = "assigned"
	ActionCommented       = "commented"
	ActionLabeled         = "labeled"
	ActionMention         = "mention"
	ActionReviewRequested = "review_requested"
	ActionReleased        = "released"
)

// maxListed caps ListTasks: a task board beyond this is not read whole.
const maxListed = 500

// TaskSpec describes a new task.
type TaskSpec struct {
	Title      string `json:"title"`
	Body       string `json:"body,omitempty"`
	Phase      string `json:"phase,omitempty"`
	Complexity string `json:"complexity,omitempty"` // simple, medium, complex or ""
	Parallel   bool   `json:"parallel,omitempty"`
}

// Task is an issue seen as a task.
type Task struct {
	Number    int      `json:"number"`
	Title     string   `json:"title"`
	URL       string   `json:"url"`
	State     string   `json:"state"`  // open or closed
	Status    string   `json:"status"` // ready, in-progress, blocked, closed or ""
	Labels    []string `json:"labels"`
	Assignees []string `json:"assignees"`
}

// Ref is a typed reference to a change on GitHub, sent to the swarm as a
// P2P notification.
type Ref struct {
	Repo   string `json:"repo"`
	Issue  int    `json:"issue"`
	URL    string `json:"url,omitempty"`
	Action string `json:"action"`
}

// Ref makes the notification reference for a change to task t.
func (t Task) Ref(repo, action string) Ref {
	return Ref{Repo: repo, Issue: t.Number, URL: t.URL, Action: action}
}

func (s TaskSpec) validate() error {
	if strings.TrimSpace(s.Title) == "" {
		return errors.New("github: task title is empty")
	}
	switch s.Complexity {
	case "", "simple", "medium", "complex":
	default:
		return fmt.Errorf("github: complexity %q: want simple, medium or complex", s.Complexity)
	}
	// GitHub label names are at most 50 characters; commas would break the
	// comma-separated labels filter of the list API.
	if p := s.Phase; p != "" && (strings.TrimSpace(p) != p || strings.Contains(p, ",") || len(phasePrefix+p) > 50) {
		return fmt.Errorf("github: phase %q: want a short name without commas or surrounding spaces", p)
	}
	return nil
}

func (s TaskSpec) labels() []string {
	l := []string{LabelReady}
	if s.Phase != "" {
		l = append(l, phasePrefix+s.Phase)
	}
	if s.Complexity != "" {
		l = append(l, complexPrefix+s.Complexity)
	}
	if s.Parallel {
		l = append(l, LabelParallel)
	}
	return l
}

// CreateTask opens an issue labelled status:ready.
func (c *Client) CreateTask(ctx context.Context, repo string, spec TaskSpec) (Task, error) {
	res, err := c.Apply(ctx, Write{Kind: WriteCreate, Repo: repo, Task: &spec})
	if err != nil {
		return Task{}, err
	}
	return *res.Task, nil
}

// ClaimTask comments "Claimed by <agent>", moves the task to in-progress and
// assigns login when given.
func (c *Client) ClaimTask(ctx context.Context, repo string, number int, agent, login string) (Ref, error) {
	return c.ref(c.Apply(ctx, Write{Kind: WriteClaim, Repo: repo, Issue: number, Agent: agent, Login: login}))
}

// Comment posts a comment.
func (c *Client) Comment(ctx context.Context, repo string, number int, body string) (Ref, error) {
	return c.ref(c.Apply(ctx, Write{Kind: WriteComment, Repo: repo, Issue: number, Body: body}))
}

// BlockTask moves the task to blocked and comments the reason.
func (c *Client) BlockTask(ctx context.Context, repo string, number int, reason string) (Ref, error) {
	return c.ref(c.Apply(ctx, Write{Kind: WriteBlock, Repo: repo, Issue: number, Body: reason}))
}

// UnblockTask moves the task back to ready.
func (c *Client) UnblockTask(ctx context.Context, repo string, number int) (Ref, error) {
	return c.ref(c.Apply(ctx, Write{Kind: WriteUnblock, Repo: repo, Issue: number}))
}

// CloseTask comments "Completed in <pr>" (when pr is given) and closes.
func (c *Client) CloseTask(ctx context.Context, repo string, number int, pr string) (Ref, error) {
	return c.ref(c.Apply(ctx, Write{Kind: WriteClose, Repo: repo, Issue: number, PR: pr}))
}

func (c *Client) ref(r Result, err error) (Ref, error) { return r.Ref, err }

// GetTask reads one task.
func (c *Client) GetTask(ctx context.Context, repo string, number int) (Task, error) {
	o, n, err := ParseRepo(repo)
	if err != nil {
		return Task{}, err
	}
	is, _, err := c.gh.Issues.Get(ctx, o, n, number)
	if err != nil {
		return Task{}, c.mapErr(err, fmt.Sprintf("%s#%d", repo, number))
	}
	return toTask(is), nil
}

// ListTasks lists tasks by status: "" (open), ready, in-progress, blocked,
// closed or all. Pull requests are left out. At most 500 are returned.
func (c *Client) ListTasks(ctx context.Context, repo, status string) ([]Task, error) {
	o, n, err := ParseRepo(repo)
	if err != nil {
		return nil, err
	}
	opt, err := listOptions(status)
	if err != nil {
		return nil, err
	}
	var out []Task
	for len(out) < maxListed {
		page, resp, err := c.gh.Issues.ListByRepo(ctx, o, n, opt)
		if err != nil {
			return nil, c.mapErr(err, repo)
		}
		for _, is := range page {
			if !is.IsPullRequest() && len(out) < maxListed {
				out = append(out, toTask(is))
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	return out, nil
}

func listOptions(status string) (*gh.IssueListByRepoOptions, error) {
	opt := &gh.IssueListByRepoOptions{State: "open", Sort: "created", Direction: "asc",
		ListOptions: gh.ListOptions{PerPage: 100}}
	switch status {
	case "", "open":
	case "ready", "in-progress", "blocked":
		opt.Labels = []string{statusPrefix + status}
	case "closed", "all":
		opt.State = status
	default:
		return nil, fmt.Errorf("github: task status %q: want ready, in-progress, blocked, closed, all or empty", status)
	}
	return opt, nil
}

func toTask(is *gh.Issue) Task {
	t := Task{Number: is.GetNumber(), Title: is.GetTitle(), URL: is.GetHTMLURL(), State: is.GetState(),
		Labels: []string{}, Assignees: []string{}}
	for _, l := range is.Labels {
		t.Labels = append(t.Labels, l.GetName())
		// GitHub's labels are case-insensitive: Status:Ready is status:ready.
		if name := l.GetName(); hasPrefixFold(name, statusPrefix) && t.Status == "" {
			t.Status = strings.ToLower(name[len(statusPrefix):])
		}
	}
	for _, a := range is.Assignees {
		t.Assignees = append(t.Assignees, a.GetLogin())
	}
	if t.State == "closed" {
		t.Status = "closed"
	}
	return t
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// repoLabel is the repository's own spelling of label (GitHub matches
// label names whatever their case, and adding "status:ready" where
// "Status:Ready" exists would apply that one anyway, or make a second on
// a server that does not fold), or label itself when the repository has
// none such or cannot be asked.
func (c *Client) repoLabel(ctx context.Context, owner, name, label string) string {
	opt := &gh.ListOptions{PerPage: 100}
	for pages := 0; pages < 5; pages++ {
		ls, resp, err := c.gh.Issues.ListLabels(ctx, owner, name, opt)
		if err != nil {
			return label
		}
		for _, l := range ls {
			if strings.EqualFold(l.GetName(), label) {
				return l.GetName()
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	return label
}

// phaseLabels are the names after "phase:" of the repository's phase
// labels (none when it cannot be asked).
func (c *Client) phaseLabels(ctx context.Context, repo string) []string {
	o, n, err := ParseRepo(repo)
	if err != nil {
		return nil
	}
	var out []string
	opt := &gh.ListOptions{PerPage: 100}
	for pages := 0; pages < 5; pages++ {
		ls, resp, err := c.gh.Issues.ListLabels(ctx, o, n, opt)
		if err != nil {
			return out
		}
		for _, l := range ls {
			if name := l.GetName(); hasPrefixFold(name, phasePrefix) {
				out = append(out, name[len(phasePrefix):])
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	return out
}
