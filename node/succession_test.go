package node

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/node/membership"
	"github.com/rs/zerolog"
)

// Master succession (issue #19) with real nodes on 127.0.0.1.

// masterOf is the master a node follows in "team".
func masterOf(t *testing.T, n *Node) string { return stateOf(t, n, "team").Master }

// noticeOf returns the first local notice of event in n's inbox.
func noticeOf(t *testing.T, n *Node, event string) (InboxMessage, bool) {
	t.Helper()
	for _, m := range must[[]InboxMessage](t)(n.Inbox(InboxArgs{IncludeMuted: true, Limit: 1000})) {
		if m.Local && m.Event == event {
			return m, true
		}
	}
	return InboxMessage{}, false
}

func sendAll(t *testing.T, n *Node, body string) {
	t.Helper()
	must[SendResult](t)(n.Send(context.Background(), SendArgs{Swarm: "team", Body: body}))
}

// The master is killed for good: after the (shortened) delay the deputy
// takes over with a quorum, invites and kicks work again, and messages
// never stop flowing. The master comes back: it is a member, and a record
// it signed before it learnt of the succession is refused everywhere as a
// fork.
func TestSuccessionMasterKilled(t *testing.T) {
	a, b, c, d := scNode(t, "a.test"), scNode(t, "b.test"), scNode(t, "c.test"), scNode(t, "d.test")
	scSwarm(t, a, b, c, d)
	info := must[DeputiesInfo](t)(a.SetDeputies("team", 2*time.Second, []string{"c.test"}))
	if info.Warning == "" || len(info.Deputies) != 1 || info.Deputies[0] != "c.test" {
		t.Fatalf("deputies set: %+v; want c.test and a warning for a delay under an hour", info)
	}
	for _, n := range []*Node{b, c, d} {
		scWait(t, n.Domain()+" learns the deputies", func() bool { return len(stateOf(t, n, "team").Deputies()) == 1 })
	}
	if m := memberNamed(t, b, "team", "c.test"); m.Deputy != 1 {
		t.Fatalf("members must show the deputy: %+v", m)
	}
	aHome := a.Home()
	head := stateOf(t, b, "team").Head
	a.Close() // killed for good

	gone := must[SendResult](t)(b.Send(context.Background(), SendArgs{Swarm: "team", Body: "while the master is gone"}))
	scWait(t, "c and d get b's message at once", func() bool {
		return has(t, c, "while the master is gone") && has(t, d, "while the master is gone")
	})
	for _, n := range []*Node{b, c, d} {
		scWait(t, n.Domain()+" follows c as master", func() bool { return masterOf(t, n) == "c.test" })
	}
	st := stateOf(t, b, "team")
	if st.Head.Index != head.Index+1 || !st.IsMember("a.test") {
		t.Fatalf("succession at head %d (want %d); a still a member: %v", st.Head.Index, head.Index+1, st.IsMember("a.test"))
	}
	scWait(t, "the new master's user is told, high priority", func() bool {
		nt, ok := noticeOf(t, c, NoticeSuccession)
		return ok && nt.Priority == "high" && strings.Contains(nt.Body, "now the master")
	})
	scWait(t, "d's user is told", func() bool { _, ok := noticeOf(t, d, NoticeSuccession); return ok })
	si := must[[]SuccessionInfo](t)(b.Succession("team"))
	if len(si) != 1 || si[0].Last == nil || si[0].Last.Master != "c.test" || si[0].Last.From != "a.test" || si[0].Last.Votes < 2 {
		t.Fatalf("succession state: %+v", si)
	}
	if s := must[Status](t)(d.Status()); len(s.Succession) != 1 || s.Succession[0].Master != "c.test" {
		t.Fatalf("status must show the succession state: %+v", s.Succession)
	}

	// Messages flow on; invites and kicks work again, from the new master.
	sendAll(t, d, "after the succession")
	scWait(t, "b and c get d's message", func() bool { return has(t, b, "after the succession") && has(t, c, "after the succession") })
	e := scNode(t, "e.test")
	must[SwarmInfo](t)(e.Join(context.Background(), must[InviteInfo](t)(c.Invite(InviteArgs{Swarm: "team"})).Token))
	must[SwarmInfo](t)(c.Kick("team", "d.test"))
	scWait(t, "b sees e join and d kicked", func() bool {
		st := stateOf(t, b, "team")
		return st.IsMember("e.test") && !st.IsMember("d.test")
	})

	// The old master comes back as a one-shot command that still thinks
	// it is master, and kicks b before it has heard of the succession.
	off, err := Open(aHome, Options{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := off.Kick("team", "b.test"); err != nil {
		t.Fatalf("the old master, unaware, could not sign its kick: %v", err)
	}
	scWait(t, "b holds proof of the old master's fork", func() bool { return len(must[Status](t)(b.Status()).Forks) > 0 })
	off.Close()
	if !stateOf(t, b, "team").IsMember("b.test") || !stateOf(t, c, "team").IsMember("b.test") {
		t.Fatal("the old master's stale kick was followed")
	}
	proofs := must[[]membership.Fork](t)(b.Forks("team"))
	if proofs[0].Signer != stateOf(t, b, "team").Members["a.test"].Key || !strings.Contains(proofs[0].Reason, "replaced") {
		t.Fatalf("fork proof: %+v", proofs[0])
	}

	// The old master's daemon returns: it follows the succession and is a
	// member; its stale kick is gone from its own chain.
	a2 := scOpen(t, aHome)
	scWait(t, "a follows c's chain", func() bool {
		return masterOf(t, a2) == "c.test" && stateOf(t, a2, "team").Head == stateOf(t, c, "team").Head
	})
	if st := stateOf(t, a2, "team"); !st.IsMember("b.test") || !st.IsMember("e.test") || st.IsMember("d.test") {
		t.Fatalf("a's chain after it came back: %v", st.Sorted())
	}
	scWait(t, "the old master's user is told", func() bool {
		nt, ok := noticeOf(t, a2, NoticeSuccession)
		return ok && strings.Contains(nt.Body, "no longer the master") && nt.Priority == "high"
	})
	scWait(t, "a gets what b sent while it was away", func() bool { return has(t, a2, "while the master is gone") })
	sendAll(t, a2, "the old master is a member")
	scWait(t, "b and c take a's messages", func() bool {
		return has(t, b, "the old master is a member") && has(t, c, "the old master is a member")
	})
	if ds := must[[]Delivery](t)(b.Deliveries(gone.ID)); len(ds) != 3 || ds[0].Status != Delivered || ds[1].Status != Delivered || ds[2].Status != Delivered {
		t.Fatalf("b's message while the master was gone: %+v", ds)
	}
	if _, err := a2.Invite(InviteArgs{Swarm: "team"}); err == nil || !strings.Contains(err.Error(), "only the master") {
		t.Fatalf("the old master could still invite: %v", err)
	}
}

// Deputies: the op checks what the master names.
func TestSetDeputiesChecks(t *testing.T) {
	a, b, c := scNode(t, "a.test"), scNode(t, "b.test"), scNode(t, "c.test")
	scSwarm(t, a, b, c)
	for _, tc := range []struct {
		name   string
		n      *Node
		after  time.Duration
		agents []string
		want   string
	}{
		{"a member cannot", b, 0, []string{"c.test"}, "only the master"},
		{"under a second", a, 500 * time.Millisecond, []string{"b.test"}, "at least 1s"},
		{"the master itself", a, 0, []string{"a.test"}, "its own deputy"},
		{"twice", a, 0, []string{"b.test", "b.test"}, "twice"},
		{"a stranger", a, 0, []string{"z.test"}, "not a member"},
	} {
		if _, err := tc.n.SetDeputies("team", tc.after, tc.agents); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.want)
		}
	}
	head := stateOf(t, a, "team").Head
	got := must[DeputiesInfo](t)(a.SetDeputies("team", 0, []string{"c.test", fpOf(b)}))
	if got.Warning != "" || got.After != "72h0m0s" || strings.Join(got.Deputies, ",") != "c.test,b.test" {
		t.Fatalf("default delay, no warning, deputies by name and fingerprint: %+v", got)
	}
	st := stateOf(t, a, "team")
	if st.Head.Index != head.Index+1 || st.Settings.Deputies[0] != c.key() || st.Settings.After != 0 {
		t.Fatalf("settings record: %+v", st.Settings)
	}
	// Naming deputies keeps the other settings.
	if st.Settings.Name != "team" {
		t.Fatal("the settings record lost the swarm's name")
	}
}

// Statements are kept one per member per head, and a member never signs
// for two candidates at one head, even across a restart.
func TestSupportOnePerHead(t *testing.T) {
	a, b := scNode(t, "a.test"), scNode(t, "b.test")
	cHome := scHome(t, "c.test")
	c := scOpen(t, cHome)
	scSwarm(t, a, b, c)
	st := stateOf(t, c, "team")
	bm, _ := st.Member(b.key())
	cm, _ := st.Member(c.key())
	if err := c.support(st, bm); err != nil {
		t.Fatal(err)
	}
	if err := c.support(st, cm); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c = scOpen(t, cHome)
	if err := c.support(st, cm); err != nil {
		t.Fatal(err)
	}
	own, err := c.statement(st.ID, c.key())
	if err != nil || own.Candidate != b.key() {
		t.Fatalf("c's statement at one head changed candidate: %+v %v", own, err)
	}
	scWait(t, "b keeps c's statement", func() bool {
		h, err := b.statement(st.ID, c.key())
		return err == nil && h.Head == st.Head
	})
	if m := memberNamed(t, b, "team", "c.test"); m.Supports != "b.test" {
		t.Fatalf("members must show whom c supports: %+v", m)
	}
	// A and the master are heard: no succession, whatever the statements.
	time.Sleep(500 * time.Millisecond)
	if masterOf(t, b) != "a.test" {
		t.Fatal("a minority statement moved the master role")
	}
}
