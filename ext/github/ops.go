package github

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/ops"
)

// The task board's operations on the swarm's linked repository (DESIGN
// §7), `github link` and `github status`, and the durable part of send.
// Every task change also reaches the swarm as a notification with a typed
// reference.

func pIssue() ops.Param {
	return ops.Param{Name: "issue", Kind: ops.Int, Required: true, Positional: true, Help: "the task's issue number"}
}

func pSwarmReq() ops.Param {
	p := ops.SwarmParam()
	p.Required, p.Help = true, "swarm name or ID"
	return p
}

// ext is the node's GitHub layer; a node opened without it (it is
// registered whenever this package is in the binary) is a programming
// error.
func ext(n *node.Node) (*Ext, error) {
	e := Of(n)
	if e == nil {
		return nil, fmt.Errorf("the node has no %s extension", Name)
	}
	return e, nil
}

// onExt adapts a method of the extension to an operation's Run.
func onExt(f func(ctx context.Context, e *Ext, a ops.Args) (any, error)) func(context.Context, *node.Node, ops.Args) (any, error) {
	return func(ctx context.Context, n *node.Node, a ops.Args) (any, error) {
		e, err := ext(n)
		if err != nil {
			return nil, err
		}
		return f(ctx, e, a)
	}
}

func registerOps() {
	pSwarm := ops.SwarmParam()
	ops.Register(
		&ops.Op{
			Name: "task_create", CLI: "task create", Summary: "Create a task (a GitHub issue labelled status:ready) in the swarm's linked repository.",
			Params: []ops.Param{pSwarm,
				{Name: "title", Kind: ops.String, Required: true, Positional: true, Help: "the task's title"},
				{Name: "body", Kind: ops.String, Help: "what is to be done"},
				{Name: "phase", Kind: ops.String, Help: "phase label (phase:NAME)"},
				{Name: "complexity", Kind: ops.String, Enum: []string{"simple", "medium", "complex"}, Help: "complexity label"},
				{Name: "parallel", Kind: ops.Bool, Help: "can run in parallel with other tasks (parallel:yes)"},
			},
			Network: true,
			Run: onExt(func(ctx context.Context, e *Ext, a ops.Args) (any, error) {
				return e.TaskCreate(ctx, TaskCreateArgs{Swarm: a.Str("swarm"), TaskSpec: TaskSpec{
					Title: a.Str("title"), Body: a.Str("body"), Phase: a.Str("phase"), Complexity: a.Str("complexity"), Parallel: a.Bool("parallel")}})
			}),
			Text: ops.TextOf(textTask),
		},
		&ops.Op{
			Name: "task_list", CLI: "task list", Summary: "List the linked repository's tasks by status (ready, in-progress, blocked, closed, all; default open ones).",
			Params: []ops.Param{pSwarm,
				{Name: "status", Kind: ops.String, Enum: []string{"ready", "in-progress", "blocked", "closed", "all"}, Help: "filter by status"}},
			ReadOnly: true, Idempotent: true,
			Run: onExt(func(ctx context.Context, e *Ext, a ops.Args) (any, error) {
				return e.TaskList(ctx, a.Str("swarm"), a.Str("status"))
			}),
			Text: ops.TextOf(textTasks),
		},
		&ops.Op{
			Name: "task_claim", CLI: "task claim", Summary: "Claim a task for this agent only: a lease announced to the swarm, then a comment naming it, status:in-progress and the assignment when this agent has a GitHub login. A task another agent holds, or a closed one, is refused with who holds it; claiming a task you hold changes nothing.",
			Params: []ops.Param{pSwarm, pIssue(),
				{Name: "steal", Kind: ops.Bool, Help: "master only: take the task over from the agent holding it"}},
			Network: true,
			Run: onExt(func(ctx context.Context, e *Ext, a ops.Args) (any, error) {
				return e.TaskClaim(ctx, ClaimArgs{Swarm: a.Str("swarm"), Issue: a.Int("issue"), Steal: a.Bool("steal")})
			}),
			Text: ops.TextOf(textTask),
		},
		&ops.Op{
			Name: "task_release", CLI: "task release", Summary: "Give a claimed task back: the lease ends and the task is ready again (status:ready, unassigned, a comment). Its holder releases it, or the master.",
			Params:  []ops.Param{pSwarm, pIssue()},
			Network: true,
			Run: onExt(func(ctx context.Context, e *Ext, a ops.Args) (any, error) {
				return e.TaskRelease(ctx, a.Str("swarm"), a.Int("issue"))
			}),
			Text: ops.TextOf(textTask),
		},
		&ops.Op{
			Name: "task_comment", CLI: "task comment", Summary: "Comment on a task.",
			Params:  []ops.Param{pSwarm, pIssue(), {Name: "body", Kind: ops.String, Required: true, Help: "the comment"}},
			Network: true,
			Run: onExt(func(ctx context.Context, e *Ext, a ops.Args) (any, error) {
				return e.TaskComment(ctx, a.Str("swarm"), a.Int("issue"), a.Str("body"))
			}),
			Text: ops.TextOf(textTask),
		},
		&ops.Op{
			Name: "task_block", CLI: "task block", Summary: "Mark a task blocked (status:blocked) with the reason as a comment.",
			Params:  []ops.Param{pSwarm, pIssue(), {Name: "reason", Kind: ops.String, Required: true, Help: "why it is blocked"}},
			Network: true,
			Run: onExt(func(ctx context.Context, e *Ext, a ops.Args) (any, error) {
				return e.TaskBlock(ctx, a.Str("swarm"), a.Int("issue"), a.Str("reason"))
			}),
			Text: ops.TextOf(textTask),
		},
		&ops.Op{
			Name: "task_unblock", CLI: "task unblock", Summary: "Make a blocked task ready again (status:ready).",
			Params:  []ops.Param{pSwarm, pIssue()},
			Network: true,
			Run: onExt(func(ctx context.Context, e *Ext, a ops.Args) (any, error) {
				return e.TaskUnblock(ctx, a.Str("swarm"), a.Int("issue"))
			}),
			Text: ops.TextOf(textTask),
		},
		&ops.Op{
			Name: "task_close", CLI: "task close", Summary: "Close a task as completed, naming the pull request that did it.",
			Params:  []ops.Param{pSwarm, pIssue(), {Name: "pr", Kind: ops.String, Required: true, Help: "the pull request: #12 or its URL"}},
			Network: true, Destructive: true,
			Run: onExt(func(ctx context.Context, e *Ext, a ops.Args) (any, error) {
				return e.TaskClose(ctx, a.Str("swarm"), a.Int("issue"), a.Str("pr"))
			}),
			Text: ops.TextOf(textTask),
		},
		&ops.Op{
			Name: "github_link", CLI: "github link", Summary: "Link a GitHub repository to a swarm (master only); every member learns it from the signed log.",
			Params:  []ops.Param{pSwarmReq(), {Name: "repo", Kind: ops.String, Required: true, Help: "owner/name"}},
			Network: true, Idempotent: true,
			Run: onExt(func(ctx context.Context, e *Ext, a ops.Args) (any, error) {
				return e.Link(a.Str("swarm"), a.Str("repo"))
			}),
			Text: ops.TextOf(func(s node.SwarmInfo) string { return fmt.Sprintf("linked %s to swarm %q", s.Repo, s.Name) }),
		},
		&ops.Op{
			Name: "github_status", CLI: "github status", Summary: "Show the GitHub side: linked repositories, the sync bot, the write queue and the rate limit left.",
			ReadOnly: true, Idempotent: true,
			Run:  onExt(func(ctx context.Context, e *Ext, a ops.Args) (any, error) { return e.StatusOf(ctx) }),
			Text: ops.TextOf(textStatus),
		},
	)
	// `send --durable --issue N`: the message becomes a comment on the
	// linked repository's issue, and the swarm a notification with its
	// link.
	ops.Extend("send", ops.Hook{
		Params: []ops.Param{
			{Name: "durable", Kind: ops.Bool, Help: "post it as a comment on the linked repository's issue (with issue) and notify the swarm with the link"},
			{Name: "issue", Kind: ops.Int, Help: "the issue a durable message is posted on"},
		},
		Run: onExt(func(ctx context.Context, e *Ext, a ops.Args) (any, error) {
			if !a.Bool("durable") {
				return nil, node.Userf("--issue goes with --durable")
			}
			return e.SendDurable(ctx, ops.SendArgsOf(a), a.Int("issue"))
		}),
		Text: textDurable,
	})
}

// textDurable renders a durable send's result; a plain send's is the
// core's to render.
func textDurable(out json.RawMessage) (string, bool) {
	var r DurableResult
	if json.Unmarshal(out, &r) != nil || r.Durable == nil {
		return "", false
	}
	return textTask(*r.Durable), true
}

func textTask(r TaskResult) string {
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
	if r.Note != "" {
		return s + ": " + r.Note
	}
	return s + "; the swarm is notified"
}

func textTasks(ts []Task) string {
	if len(ts) == 0 {
		return "no tasks"
	}
	var b strings.Builder
	for _, t := range ts {
		status := t.Status
		if status == "" {
			status = t.State
		}
		fmt.Fprintf(&b, "#%-5d %-12s %s", t.Number, status, t.Title)
		if len(t.Assignees) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(t.Assignees, ", "))
		}
		b.WriteString("\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

func textStatus(s Status) string {
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
			fmt.Fprintf(&b, ", resets %s", ops.TextTime(q.RateResetsAt))
		}
		if q.LimitedUntil != "" {
			fmt.Fprintf(&b, "\nwrites held until %s", ops.TextTime(q.LimitedUntil))
		}
		if q.LastError != "" {
			fmt.Fprintf(&b, "\nlast error: %s", q.LastError)
		}
		for _, f := range q.Failed {
			fmt.Fprintf(&b, "\nfailed: %s %s#%d: %s", f.Kind, f.Repo, f.Issue, f.Error)
			if f.FailedAt != "" {
				fmt.Fprintf(&b, " (%s)", ops.TextTime(f.FailedAt))
			}
		}
	}
	return b.String()
}
