package github

import (
	"context"
	"fmt"
	"strings"
	"time"

	gh "github.com/google/go-github/v62/github"

	"github.com/agent-swarm/agent-swarm/node"
)

// ClaimArgs are task claim's.
type ClaimArgs struct {
	Swarm string
	Issue int
	Steal bool // the master takes the task from its holder
}

// TaskClaim claims a task for this agent, for this agent only (lease.go):
// a closed task, or one another agent holds, is refused with who holds
// it; claiming a task this agent holds again changes nothing.
func (e *Ext) TaskClaim(ctx context.Context, a ClaimArgs) (TaskResult, error) {
	_, repo, err := e.swarmRepo(a.Swarm)
	if err != nil {
		return TaskResult{}, err
	}
	s, _ := e.n.LiveSwarm(a.Swarm)
	if a.Steal && !s.IsMaster {
		return TaskResult{}, node.Refusedf("only the swarm's master (%s) can take a task from its holder (--steal)", s.Master)
	}
	l, err := e.githubLayer(ctx)
	if err != nil {
		return TaskResult{}, err
	}
	t, err := l.client.GetTask(ctx, repo, a.Issue)
	if err != nil {
		return TaskResult{}, ghUserError(err)
	}
	where := fmt.Sprintf("%s#%d", repo, a.Issue)
	if t.State == "closed" {
		return TaskResult{}, node.Userf("%s is closed: a closed task cannot be claimed (reopen it on GitHub first)", where)
	}
	out := TaskResult{Swarm: s.Name, Repo: repo, Issue: a.Issue, URL: t.URL, Action: ActionClaimed, Task: &t}
	e.claimMu.Lock()
	defer e.claimMu.Unlock()
	held, err := e.leasesOn(s.ID, repo, a.Issue)
	if err != nil {
		return TaskResult{}, err
	}
	login := e.set.Login
	switch {
	case len(held) > 0 && held[0].Key == e.n.Key():
		out.Note = "already yours: nothing changed"
		return out, nil
	case len(held) > 0 && !a.Steal:
		return TaskResult{}, node.Refusedf("%s is held by %s (claimed %s): ask them to release it (swarm task release), or the master can take it over (--steal)",
			where, held[0].Holder, held[0].At.UTC().Format(time.RFC3339))
	}
	others := without(t.Assignees, login)
	if len(held) == 0 && !a.Steal && t.Status == "in-progress" && len(others) > 0 {
		return TaskResult{}, node.Refusedf("%s is in progress, assigned to %s", where, strings.Join(others, ", "))
	}
	mine, err := e.takeLease(ctx, s, repo, a.Issue, a.Steal)
	if err != nil {
		return TaskResult{}, err
	}
	if a.Steal {
		// The task changes hands: the old holders are unassigned first.
		for _, h := range held {
			if h.Login != "" && !strings.EqualFold(h.Login, login) {
				_, _ = e.quietWrite(ctx, s.ID, Write{Kind: WriteUnassign, Issue: a.Issue, Login: h.Login})
			}
		}
	}
	if len(held) == 0 && t.Status == "in-progress" && login != "" && containsFold(t.Assignees, login) {
		out.Note = "already yours on GitHub: the swarm's lease is renewed, nothing written"
		return out, nil
	}
	return e.claimOnGitHub(ctx, l, s, mine, out)
}

// takeLease announces this agent's lease, waits for competing ones and
// says who holds the issue when it is not this agent.
func (e *Ext) takeLease(ctx context.Context, s node.SwarmInfo, repo string, issue int, steal bool) (Lease, error) {
	me, action := e.n.Domain(), leaseClaim
	if steal {
		action = leaseSteal
	}
	text := fmt.Sprintf("%s %s#%d: claimed by %s (held while %s is online)", ActionClaimed, repo, issue, me, me)
	m, err := e.announce(ctx, s.ID, repo, issue, action, e.set.Login, text, e.opt.Lease.TTL)
	if err != nil {
		return Lease{}, err
	}
	mine := Lease{Swarm: s.ID, Repo: repo, Issue: issue, Key: e.n.Key(), Holder: me, Login: e.set.Login,
		At: time.UnixMilli(m.Created), Expires: time.UnixMilli(m.Expires), Steal: steal}
	e.leases.mu.Lock()
	err = e.putLease(mine)
	if err == nil && steal {
		err = e.endLeases(s.ID, repo, issue, mine.At, mine.Key)
	}
	e.leases.mu.Unlock()
	if err != nil {
		return Lease{}, err
	}
	select { // competing claims made at the same time arrive meanwhile
	case <-time.After(e.opt.Lease.Settle):
	case <-ctx.Done():
	}
	held, err := e.leasesOn(s.ID, repo, issue)
	if err != nil {
		return Lease{}, err
	}
	if len(held) > 0 && held[0].Key != mine.Key {
		e.letGo(s, mine, fmt.Sprintf("%s backs off %s#%d: %s claimed it first", me, repo, issue, held[0].Holder))
		return Lease{}, node.Refusedf("%s#%d was claimed first by %s: it is theirs", repo, issue, held[0].Holder)
	}
	return mine, nil
}

// claimOnGitHub writes the claim and reads the issue back: if GitHub
// shows another agent assigned first, or did not assign this agent's
// login, this agent backs off.
func (e *Ext) claimOnGitHub(ctx context.Context, l *layer, s node.SwarmInfo, mine Lease, out TaskResult) (TaskResult, error) {
	me, login, where := e.n.Domain(), e.set.Login, fmt.Sprintf("%s#%d", mine.Repo, mine.Issue)
	res, err := e.quietWrite(ctx, s.ID, Write{Kind: WriteClaim, Issue: mine.Issue, Agent: me, Login: login})
	if err != nil {
		e.letGo(s, mine, fmt.Sprintf("%s gives up its claim on %s: GitHub refused it", me, where))
		return TaskResult{}, err
	}
	if res.Queued || login == "" {
		out.Queued, out.Note, out.WriteID = res.Queued, res.Note, res.WriteID
		return out, nil
	}
	t, err := l.client.GetTask(ctx, mine.Repo, mine.Issue)
	if err != nil {
		return out, nil // written; the read-back can wait for the next look
	}
	out.Task = &t
	if !containsFold(t.Assignees, login) {
		e.letGo(s, mine, fmt.Sprintf("%s gives up its claim on %s: GitHub did not assign %s", me, where, login))
		_, _ = e.quietWrite(ctx, s.ID, Write{Kind: WriteRelease, Issue: mine.Issue, Body: "Claim withdrawn: GitHub did not assign " + login + "."})
		return TaskResult{}, node.Refusedf("%s not claimed: GitHub did not assign %s (does that login have access to the repository? see `login` in the github config)", where, login)
	}
	if first := l.client.firstAssigned(ctx, mine.Repo, mine.Issue, t.Assignees); first != "" && !strings.EqualFold(first, login) && !mine.Steal {
		e.letGo(s, mine, fmt.Sprintf("%s backs off %s: %s was assigned first", me, where, first))
		_, _ = e.quietWrite(ctx, s.ID, Write{Kind: WriteUnassign, Issue: mine.Issue, Login: login})
		return TaskResult{}, node.Refusedf("%s was claimed first by GitHub user %s: it is theirs", where, first)
	}
	return out, nil
}

// letGo releases a lease this agent took, telling the swarm why.
func (e *Ext) letGo(s node.SwarmInfo, mine Lease, why string) {
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	if _, err := e.announce(ctx, s.ID, mine.Repo, mine.Issue, leaseRelease, mine.Login, why, 0); err != nil {
		e.log.Warn().Err(err).Msg("lease release not announced")
	}
	e.leases.mu.Lock()
	_ = e.dropLease(mine)
	e.leases.mu.Unlock()
}

// TaskRelease gives a claimed task back: the lease ends and the task is
// ready again. The holder releases its own; the master anyone's.
func (e *Ext) TaskRelease(ctx context.Context, swarm string, issue int) (TaskResult, error) {
	_, repo, err := e.swarmRepo(swarm)
	if err != nil {
		return TaskResult{}, err
	}
	s, _ := e.n.LiveSwarm(swarm)
	held, err := e.leasesOn(s.ID, repo, issue)
	if err != nil {
		return TaskResult{}, err
	}
	where := fmt.Sprintf("%s#%d", repo, issue)
	var holder *Lease
	for i := range held {
		if held[i].Key == e.n.Key() {
			holder = &held[i]
		}
	}
	switch {
	case holder == nil && len(held) == 0:
		return TaskResult{}, node.Userf("no agent holds %s: there is nothing to release", where)
	case holder == nil && !s.IsMaster:
		return TaskResult{}, node.Refusedf("%s is held by %s, not by this agent: only its holder or the master can release it", where, held[0].Holder)
	case holder == nil:
		holder = &held[0]
	}
	me := e.n.Domain()
	text := fmt.Sprintf("%s %s#%d: released by %s; the task is ready again", ActionReleased, repo, issue, me)
	if _, err := e.announce(ctx, s.ID, repo, issue, leaseRelease, holder.Login, text, 0); err != nil {
		return TaskResult{}, err
	}
	e.leases.mu.Lock()
	if s.IsMaster {
		err = e.endLeases(s.ID, repo, issue, time.Now(), "")
	} else {
		err = e.dropLease(*holder)
	}
	e.leases.mu.Unlock()
	if err != nil {
		return TaskResult{}, err
	}
	body := "Released by " + me + "."
	if holder.Key != e.n.Key() { // by key: a namesake is not this agent
		body = fmt.Sprintf("The claim of %s was released by %s.", holder.Holder, me)
	}
	res, err := e.quietWrite(ctx, s.ID, Write{Kind: WriteRelease, Issue: issue, Login: holder.Login, Body: body})
	res.Action = ActionReleased
	return res, err
}

// firstAssigned is, of the issue's current assignees, the one whose
// assignment GitHub recorded first (the repository's issue events, newest
// first, three pages at most); "" when it cannot tell.
func (c *Client) firstAssigned(ctx context.Context, repo string, issue int, assignees []string) string {
	o, n, err := ParseRepo(repo)
	if err != nil || len(assignees) < 2 {
		return ""
	}
	at := map[string]int64{} // login -> ID of its latest assignment
	opt := &gh.ListOptions{PerPage: 100}
	for page := 0; page < 3; page++ {
		evs, resp, err := c.gh.Issues.ListRepositoryEvents(ctx, o, n, opt)
		if err != nil {
			return ""
		}
		for _, ev := range evs {
			login := strings.ToLower(ev.GetAssignee().GetLogin())
			if ev.GetIssue().GetNumber() == issue && ev.GetEvent() == "assigned" && at[login] == 0 {
				at[login] = ev.GetID()
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	first, firstID := "", int64(0)
	for _, a := range assignees {
		if id := at[strings.ToLower(a)]; id != 0 && (firstID == 0 || id < firstID) {
			first, firstID = a, id
		}
	}
	return first
}

func without(list []string, s string) []string {
	var out []string
	for _, x := range list {
		if s == "" || !strings.EqualFold(x, s) {
			out = append(out, x)
		}
	}
	return out
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
