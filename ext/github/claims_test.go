package github

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/agent-swarm/agent-swarm/ext/github/fakegithub"
	"github.com/agent-swarm/agent-swarm/node"
)

// The issue #15 scenarios: three nodes, each with its own token and
// GitHub user, against the fake; a human acting on the repository.

const swarmHookSecret = "hook-secret-15"

type ghAgent struct {
	n     *node.Node
	home  string
	token string
	login string
}

type ghSwarm struct {
	fake  *fakegithub.Server
	front *fakegithub.Front
	a     []*ghAgent // a[0] is the master
	hooks *fakegithub.Hooks
	urls  []string // webhook endpoints of the nodes
}

var testLease = LeaseOptions{Settle: 500 * time.Millisecond, Grace: time.Second, Check: 150 * time.Millisecond}

// openAgent opens a serving node with its own token and short lease times.
func openAgent(t *testing.T, g *ghAgent) {
	t.Helper()
	n, err := node.Open(g.home, node.Options{Serve: true, Log: zerolog.Nop(),
		Ext: map[string]any{Name: Options{Token: g.token, Lease: testLease}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	g.n = n
}

// newGHSwarm makes a.test (master), b.test and c.test, each its own
// GitHub user (agent-a…), in a swarm linked to acme/app; with hooks,
// the fake also delivers webhooks for all activity to every node.
// masterPoll, if set, is the master's poll period (the others poll every
// 150 ms).
func newGHSwarm(t *testing.T, hooks bool, masterPoll time.Duration) *ghSwarm {
	t.Helper()
	t.Setenv("GITHUB_TOKEN", "")
	t.Setenv("GH_TOKEN", "")
	t.Setenv("SWARM_GITHUB_WEBHOOK_SECRET", swarmHookSecret)
	g := &ghSwarm{fake: fakegithub.New(ghToken)}
	t.Cleanup(g.fake.Close)
	g.fake.AddRepo("acme/app")
	var users []fakegithub.User
	for _, name := range []string{"a", "b", "c"} {
		ag := &ghAgent{token: "ghp_" + strings.Repeat(name, 36), login: "agent-" + name}
		// The master's token is a GitHub App's: GET /user is 403 and its
		// writes are by "agent-a[bot]", known only by their markers.
		u := fakegithub.User{Token: ag.token, Login: ag.login, App: name == "a"}
		if u.App {
			u.Login += "[bot]"
		}
		users = append(users, u)
		g.a = append(g.a, ag)
	}
	g.front = g.fake.Front(users...)
	t.Cleanup(g.front.Close)
	for i, ag := range g.a {
		ag.home = scHome(t, string(rune('a'+i))+".test")
		cfg := must[*node.Config](t)(node.LoadConfig(ag.home))
		poll := 150 * time.Millisecond
		if i == 0 && masterPoll > 0 {
			poll = masterPoll
		}
		cfg.Ext = map[string]json.RawMessage{Name: must[[]byte](t)(json.Marshal(Settings{APIURL: g.front.URL,
			Login: ag.login, PollEvery: node.Duration(poll)}))}
		must0(t, node.SaveConfig(ag.home, cfg))
		openAgent(t, ag)
	}
	scSwarm(t, g.a[0].n, g.a[1].n, g.a[2].n)
	must[node.SwarmInfo](t)(ghOf(t, g.a[0].n).Link("team", "acme/app"))
	for _, ag := range g.a {
		scWait(t, ag.n.Domain()+" learns the link", func() bool {
			_, repo, err := ghOf(t, ag.n).swarmRepo("team")
			return err == nil && repo == "acme/app"
		})
	}
	if hooks {
		for _, ag := range g.a {
			srv := httptest.NewServer(ag.n.PeerHandler())
			t.Cleanup(srv.Close)
			g.urls = append(g.urls, srv.URL+webhookPath)
		}
		g.hooks = g.fake.Hooks([]byte(swarmHookSecret), g.urls...)
		t.Cleanup(g.hooks.Close)
	}
	// The master's bot runs and has primed its cursor.
	scWait(t, "the master's bot runs", func() bool {
		st := must[Status](t)(ghOf(t, g.a[0].n).StatusOf(context.Background()))
		return len(st.Links) == 1 && strings.HasPrefix(st.Links[0].Bot, "running")
	})
	time.Sleep(400 * time.Millisecond)
	return g
}

func (g *ghSwarm) comments(t *testing.T, issue int, substr string) int {
	n := 0
	for _, c := range g.fake.Comments("acme/app", issue) {
		if strings.Contains(c.Body, substr) {
			n++
		}
	}
	return n
}

// holders is each open node's view of who holds the issue ("" none).
func (g *ghSwarm) holders(t *testing.T, issue int, agents ...*ghAgent) []string {
	var out []string
	for _, ag := range agents {
		s := must[node.SwarmInfo](t)(ag.n.LiveSwarm("team"))
		ls := must[[]Lease](t)(ghOf(t, ag.n).leasesOn(s.ID, "acme/app", issue))
		h := ""
		if len(ls) > 0 {
			h = ls[0].Holder
		}
		out = append(out, h)
	}
	return out
}

// TestClaimIsExclusive: two agents claim one task at once; exactly one
// holds it, the other is told who; claiming again changes nothing;
// closed tasks cannot be claimed; when the holder's node dies its lease
// lapses, the task is ready again with a comment, and the other agent can
// claim it.
func TestClaimIsExclusive(t *testing.T) {
	g := newGHSwarm(t, false, 0)
	a, b, c := g.a[0], g.a[1], g.a[2]
	ctx := context.Background()
	g.fake.CreateIssue("acme/app", "carol", "Add login page", "", LabelReady)

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, ag := range []*ghAgent{b, c} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = ghOf(t, ag.n).TaskClaim(ctx, ClaimArgs{Swarm: "team", Issue: 1})
		}()
	}
	wg.Wait()
	winner, loser := b, c
	if errs[0] != nil {
		winner, loser = c, b
	}
	lost := errs[0]
	if winner == b {
		lost = errs[1]
	}
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("two simultaneous claims: b %v, c %v; want exactly one to succeed", errs[0], errs[1])
	}
	if !(node.KindOf(lost) == node.Refused) || !strings.Contains(lost.Error(), winner.n.Domain()) {
		t.Fatalf("the losing claim says %v; want a refusal naming %s", lost, winner.n.Domain())
	}
	iss := g.fake.Issues("acme/app")[0]
	if len(iss.Assignees) != 1 || iss.Assignees[0] != winner.login || !contains(iss.Labels, LabelInProgress) || contains(iss.Labels, LabelReady) {
		t.Fatalf("after the race: assignees %v, labels %v; want only %s, in progress", iss.Assignees, iss.Labels, winner.login)
	}
	if n := g.comments(t, 1, "Claimed by"); n != 1 {
		t.Fatalf("%d claim comments after the race, want 1", n)
	}
	scWait(t, "every node names the same holder", func() bool {
		h := g.holders(t, 1, a, b, c)
		return h[0] == winner.n.Domain() && h[1] == h[0] && h[2] == h[0]
	})

	// Claiming again: the holder changes nothing; the other is told who.
	r := must[TaskResult](t)(ghOf(t, winner.n).TaskClaim(ctx, ClaimArgs{Swarm: "team", Issue: 1}))
	if !strings.Contains(r.Note, "already yours") {
		t.Fatalf("a second claim by the holder: %+v", r)
	}
	if _, err := ghOf(t, loser.n).TaskClaim(ctx, ClaimArgs{Swarm: "team", Issue: 1}); !(node.KindOf(err) == node.Refused) || !strings.Contains(err.Error(), "held by "+winner.n.Domain()) {
		t.Fatalf("claiming a held task: %v", err)
	}
	if _, err := ghOf(t, loser.n).TaskClaim(ctx, ClaimArgs{Swarm: "team", Issue: 1, Steal: true}); !(node.KindOf(err) == node.Refused) || !strings.Contains(err.Error(), "master") {
		t.Fatalf("a member stealing a task: %v", err)
	}
	if n := g.comments(t, 1, "Claimed by"); n != 1 {
		t.Fatalf("%d claim comments after claiming again, want 1", n)
	}

	// A closed task is nobody's to claim.
	g.fake.CreateIssue("acme/app", "carol", "Old task", "", LabelReady)
	g.fake.SetState("acme/app", 2, "carol", "closed")
	if _, err := ghOf(t, b.n).TaskClaim(ctx, ClaimArgs{Swarm: "team", Issue: 2}); !node.IsUser(err) || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("claiming a closed task: %v", err)
	}

	// The holder's node dies: its lease lapses, the task is ready again.
	must0(t, winner.n.Close())
	scWait(t, "the lease lapses", func() bool {
		iss := g.fake.Issues("acme/app")[0]
		return contains(iss.Labels, LabelReady) && !contains(iss.Assignees, winner.login) && g.comments(t, 1, "lapsed") == 1
	})
	if iss := g.fake.Issues("acme/app")[0]; contains(iss.Labels, LabelInProgress) {
		t.Fatalf("a lapsed task keeps %v", iss.Labels)
	}
	scWait(t, "the others forget the lease", func() bool {
		h := g.holders(t, 1, a, loser)
		return h[0] == "" && h[1] == ""
	})
	waitNote(t, loser.n, "lapsed", leaseLapsed)
	if _, err := ghOf(t, loser.n).TaskClaim(ctx, ClaimArgs{Swarm: "team", Issue: 1}); err != nil {
		t.Fatalf("claim after the lapse: %v; issue %+v; events %+v", err, g.fake.Issues("acme/app")[0], g.fake.Events("acme/app"))
	}
	if iss := g.fake.Issues("acme/app")[0]; len(iss.Assignees) != 1 || iss.Assignees[0] != loser.login {
		t.Fatalf("the task claimed after the lapse is assigned to %v", iss.Assignees)
	}

	// The master takes it over; then the holder of record releases it.
	must[TaskResult](t)(ghOf(t, a.n).TaskClaim(ctx, ClaimArgs{Swarm: "team", Issue: 1, Steal: true}))
	scWait(t, "the steal is heard", func() bool { return g.holders(t, 1, loser)[0] == a.n.Domain() })
	must[TaskResult](t)(ghOf(t, a.n).TaskRelease(ctx, "team", 1))
	if iss := g.fake.Issues("acme/app")[0]; !contains(iss.Labels, LabelReady) || len(iss.Assignees) != 0 {
		t.Fatalf("after the master took the task over and released it: labels %v, assignees %v", iss.Labels, iss.Assignees)
	}
	scWait(t, "the release is heard", func() bool { return g.holders(t, 1, loser)[0] == "" })
	if _, err := ghOf(t, loser.n).TaskRelease(ctx, "team", 1); !node.IsUser(err) {
		t.Fatalf("releasing a task nobody holds: %v", err)
	}
}

// countNotes counts n's notifications whose body holds substr.
func countNotes(t *testing.T, n *node.Node, substr string) int { return len(notes(t, n, substr)) }

// expectOnce waits until each of want has a notification holding substr,
// then, after the bot and webhooks had time to repeat it, checks that each
// has exactly one, and that the others have none.
func (g *ghSwarm) expectOnce(t *testing.T, substr string, want []*ghAgent) {
	t.Helper()
	for _, ag := range want {
		scWait(t, ag.n.Domain()+" hears of "+substr, func() bool { return countNotes(t, ag.n, substr) > 0 })
	}
	time.Sleep(900 * time.Millisecond) // several polls and deliveries
	for _, ag := range g.a {
		wantN := 0
		for _, w := range want {
			if w == ag {
				wantN = 1
			}
		}
		if got := countNotes(t, ag.n, substr); got != wantN {
			t.Fatalf("%s has %d notifications of %q, want %d", ag.n.Domain(), got, substr, wantN)
		}
	}
}

// TestOneNotificationPerEvent: with webhooks and polling both on, every
// swarm action and every human action gives each member exactly one
// notification, the master's own agent included, also across a master
// transfer and back.
func TestOneNotificationPerEvent(t *testing.T) {
	// a polls once an hour: as master it hears of activity by webhook
	// only, so what happens while webhooks are down is what a new master
	// must catch up on.
	g := newGHSwarm(t, true, time.Hour)
	a, b, c := g.a[0], g.a[1], g.a[2]
	ctx := context.Background()
	all := []*ghAgent{a, b, c}

	// Swarm actions: the members other than the actor hear each once.
	must[TaskResult](t)(ghOf(t, b.n).TaskCreate(ctx, TaskCreateArgs{Swarm: "team", TaskSpec: TaskSpec{Title: "Task one-b"}}))
	g.expectOnce(t, "Task one-b", []*ghAgent{a, c})
	must[TaskResult](t)(ghOf(t, c.n).TaskClaim(ctx, ClaimArgs{Swarm: "team", Issue: 1}))
	g.expectOnce(t, "claimed by c.test", []*ghAgent{a, b})
	must[TaskResult](t)(ghOf(t, c.n).TaskComment(ctx, "team", 1, "progress note c1"))
	g.expectOnce(t, "progress note c1", []*ghAgent{a, b})
	must[TaskResult](t)(ghOf(t, a.n).TaskBlock(ctx, "team", 1, "waiting on a1"))
	g.expectOnce(t, "waiting on a1", []*ghAgent{b, c})

	// A human's actions: everyone hears each once, the master too.
	human := func(round string) {
		t.Helper()
		n := g.fake.CreateIssue("acme/app", "carol", "Human issue "+round, "")
		g.expectOnce(t, "Human issue "+round, all)
		g.fake.AddComment("acme/app", n, "carol", "@agent-b please look "+round)
		g.expectOnce(t, "please look "+round, all)
		g.fake.AddLabel("acme/app", n, "carol", "bug-"+round)
		g.expectOnce(t, "labeled bug-"+round, all)
		g.fake.SetState("acme/app", n, "carol", "closed")
		g.expectOnce(t, fmt.Sprintf("acme/app#%d: carol closed", n), all)
	}
	human("r1")

	// The master role moves to b, and back to a; between, each hears
	// every event once, nothing lost, nothing replayed.
	// Webhooks are down when the last comment before each transfer is
	// made: a never sees it; b may or may not have polled it.
	g.hooks.SetURLs()
	g.fake.AddComment("acme/app", 1, "dave", "just before the transfer t1")
	must[node.SwarmInfo](t)(a.n.Transfer("team", "b.test"))
	time.Sleep(200 * time.Millisecond) // the fake's webhook has dropped it
	g.hooks.SetURLs(g.urls...)
	scWait(t, "b runs the bot", func() bool {
		st := must[Status](t)(ghOf(t, b.n).StatusOf(ctx))
		return strings.HasPrefix(st.Links[0].Bot, "running")
	})
	g.expectOnce(t, "just before the transfer t1", all)
	human("r2")
	g.hooks.SetURLs()
	g.fake.AddComment("acme/app", 1, "dave", "just before the transfer t2")
	must[node.SwarmInfo](t)(b.n.Transfer("team", "a.test"))
	time.Sleep(200 * time.Millisecond)
	g.hooks.SetURLs(g.urls...)
	scWait(t, "a runs the bot again", func() bool {
		st := must[Status](t)(ghOf(t, a.n).StatusOf(ctx))
		return strings.HasPrefix(st.Links[0].Bot, "running")
	})
	g.expectOnce(t, "just before the transfer t2", all)
	human("r3")
	for _, s := range []string{`carol opened on the issue titled "Human issue r1"`, "please look r1",
		`carol opened on the issue titled "Human issue r2"`, "please look r2", "labeled bug-r2", "transfer t1"} {
		for _, ag := range all {
			if n := countNotes(t, ag.n, s); n != 1 {
				t.Fatalf("after the transfers %s has %d notifications of %q, want 1", ag.n.Domain(), n, s)
			}
		}
	}
	if _, failed := g.hooks.Counts(); failed != 0 {
		t.Fatalf("%d webhook deliveries failed", failed)
	}
}
