package ops

import (
	"context"
	"fmt"
	"strings"

	"github.com/agent-swarm/agent-swarm/github"
	"github.com/agent-swarm/agent-swarm/node"
)

func pIssue() Param {
	return Param{Name: "issue", Kind: Int, Required: true, Positional: true, Help: "the task's issue number"}
}

// Task board operations on the swarm's linked repository (DESIGN §7).
// Every change also reaches the swarm as a notification with a typed
// reference.
var taskOps = []*Op{
	{
		Name: "task_create", CLI: "task create", Summary: "Create a task (a GitHub issue labelled status:ready) in the swarm's linked repository.",
		Params: []Param{pSwarm,
			{Name: "title", Kind: String, Required: true, Positional: true, Help: "the task's title"},
			{Name: "body", Kind: String, Help: "what is to be done"},
			{Name: "phase", Kind: String, Help: "phase label (phase:NAME)"},
			{Name: "complexity", Kind: String, Enum: []string{"simple", "medium", "complex"}, Help: "complexity label"},
			{Name: "parallel", Kind: Bool, Help: "can run in parallel with other tasks (parallel:yes)"},
		},
		Network: true,
		Run: func(ctx context.Context, n *node.Node, a Args) (any, error) {
			return n.TaskCreate(ctx, node.TaskCreateArgs{Swarm: a.Str("swarm"), TaskSpec: github.TaskSpec{
				Title: a.Str("title"), Body: a.Str("body"), Phase: a.Str("phase"), Complexity: a.Str("complexity"), Parallel: a.Bool("parallel")}})
		},
		Text: textOf(textTask),
	},
	{
		Name: "task_list", CLI: "task list", Summary: "List the linked repository's tasks by status (ready, in-progress, blocked, closed, all; default open ones).",
		Params: []Param{pSwarm,
			{Name: "status", Kind: String, Enum: []string{"ready", "in-progress", "blocked", "closed", "all"}, Help: "filter by status"}},
		ReadOnly: true, Idempotent: true,
		Run: func(ctx context.Context, n *node.Node, a Args) (any, error) {
			return n.TaskList(ctx, a.Str("swarm"), a.Str("status"))
		},
		Text: textOf(textTasks),
	},
	{
		Name: "task_claim", CLI: "task claim", Summary: "Claim a task for this agent: a comment naming it, status:in-progress, and the assignment when this agent has a GitHub login.",
		Params:  []Param{pSwarm, pIssue()},
		Network: true,
		Run: func(ctx context.Context, n *node.Node, a Args) (any, error) {
			return n.TaskClaim(ctx, a.Str("swarm"), a.Int("issue"))
		},
		Text: textOf(textTask),
	},
	{
		Name: "task_comment", CLI: "task comment", Summary: "Comment on a task.",
		Params:  []Param{pSwarm, pIssue(), {Name: "body", Kind: String, Required: true, Help: "the comment"}},
		Network: true,
		Run: func(ctx context.Context, n *node.Node, a Args) (any, error) {
			return n.TaskComment(ctx, a.Str("swarm"), a.Int("issue"), a.Str("body"))
		},
		Text: textOf(textTask),
	},
	{
		Name: "task_block", CLI: "task block", Summary: "Mark a task blocked (status:blocked) with the reason as a comment.",
		Params:  []Param{pSwarm, pIssue(), {Name: "reason", Kind: String, Required: true, Help: "why it is blocked"}},
		Network: true,
		Run: func(ctx context.Context, n *node.Node, a Args) (any, error) {
			return n.TaskBlock(ctx, a.Str("swarm"), a.Int("issue"), a.Str("reason"))
		},
		Text: textOf(textTask),
	},
	{
		Name: "task_unblock", CLI: "task unblock", Summary: "Make a blocked task ready again (status:ready).",
		Params:  []Param{pSwarm, pIssue()},
		Network: true,
		Run: func(ctx context.Context, n *node.Node, a Args) (any, error) {
			return n.TaskUnblock(ctx, a.Str("swarm"), a.Int("issue"))
		},
		Text: textOf(textTask),
	},
	{
		Name: "task_close", CLI: "task close", Summary: "Close a task as completed, naming the pull request that did it.",
		Params:  []Param{pSwarm, pIssue(), {Name: "pr", Kind: String, Required: true, Help: "the pull request: #12 or its URL"}},
		Network: true, Destructive: true,
		Run: func(ctx context.Context, n *node.Node, a Args) (any, error) {
			return n.TaskClose(ctx, a.Str("swarm"), a.Int("issue"), a.Str("pr"))
		},
		Text: textOf(textTask),
	},
	{
		Name: "github_link", CLI: "github link", Summary: "Link a GitHub repository to a swarm (master only); every member learns it from the signed log.",
		Params:  []Param{pSwarmReq(), {Name: "repo", Kind: String, Required: true, Help: "owner/name"}},
		Network: true, Idempotent: true,
		Run: func(ctx context.Context, n *node.Node, a Args) (any, error) {
			return n.GitHubLink(a.Str("swarm"), a.Str("repo"))
		},
		Text: textOf(func(s node.SwarmInfo) string { return fmt.Sprintf("linked %s to swarm %q", s.Repo, s.Name) }),
	},
	{
		Name: "github_status", CLI: "github status", Summary: "Show the GitHub side: linked repositories, the sync bot, the write queue and the rate limit left.",
		ReadOnly: true, Idempotent: true,
		Run:  func(ctx context.Context, n *node.Node, a Args) (any, error) { return n.GitHubStatusOf(ctx) },
		Text: textOf(textGitHub),
	},
}

func textTask(r node.TaskResult) string {
	where := fmt.Sprintf("%s#%d", r.Repo, r.Issue)
	if r.Issue == 0 {
		where = r.Repo
	}
	if r.Queued {
		return fmt.Sprintf("%s %s: %s (write %s)", r.Action, where, r.Note, r.WriteID)
	}
	s := fmt.Sprintf("%s %s", r.Action, where)
	if r.URL != "" {
		s += " " + r.URL
	}
	return s + "; the swarm is notified"
}

func textTasks(ts []github.Task) string {
	if len(ts) == 0 {
		return "no tasks"
	}
	var b strings.Builder
	for _, t := range ts {
		fmt.Fprintf(&b, "#%-5d %-12s %s", t.Number, or(t.Status, t.State), t.Title)
		if len(t.Assignees) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(t.Assignees, ", "))
		}
		b.WriteString("\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

func textGitHub(s node.GitHubStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "API %s, token %s", s.APIURL, s.Token)
	if s.Login != "" {
		fmt.Fprintf(&b, ", login %s", s.Login)
	}
	if len(s.Links) == 0 {
		b.WriteString("\nno swarm links a repository (swarm github link --swarm S --repo owner/name)")
	}
	for _, l := range s.Links {
		fmt.Fprintf(&b, "\n%s -> %s: bot %s", l.Swarm, l.Repo, l.Bot)
	}
	if q := s.Queue; q != nil {
		fmt.Fprintf(&b, "\nqueue: %d pending, %d given up; rate limit %d/%d left", q.Pending, q.GivenUp, q.RateRemaining, q.RateLimit)
		if q.RateResetsAt != "" {
			fmt.Fprintf(&b, ", resets %s", textTime(q.RateResetsAt))
		}
		if q.LimitedUntil != "" {
			fmt.Fprintf(&b, "\nwrites held until %s", textTime(q.LimitedUntil))
		}
		if q.LastError != "" {
			fmt.Fprintf(&b, "\nlast error: %s", q.LastError)
		}
	}
	return b.String()
}
