package node

import (
	"context"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/agent-swarm/agent-swarm/store"
)

// noticesOf lists a node's membership notices (forks aside), muted ones too,
// as "event: body".
func noticesOf(t *testing.T, n *Node) []string {
	t.Helper()
	var out []string
	for _, m := range must[[]InboxMessage](t)(n.Inbox(InboxArgs{IncludeMuted: true, Limit: 1000})) {
		if m.Local && m.Type == "system" && m.Event != NoticeFork {
			out = append(out, m.Event+": "+m.Body)
		}
	}
	return out
}

// settle waits until n holds want notices, then a little longer, and
// fails unless it holds exactly those: each event told once.
func settle(t *testing.T, n *Node, want ...string) {
	t.Helper()
	scWait(t, n.Domain()+" holds its notices", func() bool { return len(noticesOf(t, n)) >= len(want) })
	time.Sleep(300 * time.Millisecond) // a duplicate would show by now (sync runs every 300ms)
	got := noticesOf(t, n)
	if len(got) != len(want) {
		t.Fatalf("%s holds %d notices, want %d:\n%s", n.Domain(), len(got), len(want), strings.Join(got, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Fatalf("%s notice %d is %q, want it to start %q", n.Domain(), i, got[i], w)
		}
	}
}

func TestMembershipNotices(t *testing.T) {
	a, b, c, d := scNode(t, "a.test"), scNode(t, "b.test"), scNode(t, "c.test"), scNode(t, "d.test")
	scSwarm(t, a, b)
	settle(t, a, `joined: b.test (key `)
	settle(t, b) // its own join is no news, nor what came before it

	ctx := context.Background()
	for _, n := range []*Node{c, d} {
		inv := must[InviteInfo](t)(a.Invite(InviteArgs{Swarm: "team"}))
		must[SwarmInfo](t)(n.Join(ctx, inv.Token))
	}
	settle(t, a, "joined: b.test", "joined: c.test", "joined: d.test")
	settle(t, b, "joined: c.test", "joined: d.test")
	settle(t, c, "joined: d.test")
	settle(t, d)

	t.Run("kicked: the one kicked and the others; not the master who kicked", func(t *testing.T) {
		must[SwarmInfo](t)(a.Kick("team", "c.test"))
		settle(t, a, "joined: b.test", "joined: c.test", "joined: d.test")
		settle(t, b, "joined: c.test", "joined: d.test", `kicked: c.test (key `)
		settle(t, d, `kicked: c.test (key `)
		settle(t, c, "joined: d.test", `kicked: This node was kicked from swarm "team" by its master a.test`)
		self := lastNotice(t, c)
		if self.Priority != "high" || !self.Local || self.Sender.Identity != "self" {
			t.Fatalf("the kicked node's notice: %+v", self)
		}
	})
	t.Run("master changed: the new master and the others", func(t *testing.T) {
		must[SwarmInfo](t)(a.Transfer("team", "b.test"))
		settle(t, b, "joined: c.test", "joined: d.test", "kicked: c.test", `master_changed: This node is now the master of swarm "team", handed over by a.test`)
		settle(t, d, "kicked: c.test", `master_changed: b.test (key `)
		if !strings.Contains(lastNotice(t, d).Body, "(it was a.test)") {
			t.Fatalf("the notice does not name the old master: %q", lastNotice(t, d).Body)
		}
		settle(t, a, "joined: b.test", "joined: c.test", "joined: d.test") // it handed the role on itself
	})
	t.Run("left: told by the master's record, to the master too", func(t *testing.T) {
		must[SwarmInfo](t)(d.Leave("team"))
		settle(t, b, "joined: c.test", "joined: d.test", "kicked: c.test", "master_changed: This node", `left: d.test (key `)
		settle(t, a, "joined: b.test", "joined: c.test", "joined: d.test", `left: d.test (key `)
		settle(t, d, "kicked: c.test", "master_changed: b.test") // its own leave is no news
	})
	t.Run("notices cost no peer quota", func(t *testing.T) {
		var unread int64
		_ = b.st.View(func(tx *store.Tx) error { return tx.Get(quotaKey(b.swarmID(t, "team"), b.key()), &unread) })
		if unread != 0 {
			t.Fatalf("b's own notices count %d bytes against a quota", unread)
		}
	})
}

func lastNotice(t *testing.T, n *Node) InboxMessage {
	t.Helper()
	ms := must[[]InboxMessage](t)(n.Inbox(InboxArgs{IncludeMuted: true, Limit: 1000}))
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].Local {
			return ms[i]
		}
	}
	t.Fatalf("%s holds no notice", n.Domain())
	return InboxMessage{}
}

func (n *Node) swarmID(t *testing.T, ref string) string {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	s, err := n.resolve(ref)
	if err != nil {
		t.Fatal(err)
	}
	return s.state.ID
}

// A record gives one notice: pulled again in a catch-up, applied twice,
// pushed to a node that was away and caught up on its return, or told
// again after a restart.
func TestMembershipNoticesOnce(t *testing.T) {
	a, b := scNode(t, "a.test"), scNode(t, "b.test")
	cHome := scHome(t, "c.test")
	c := scOpen(t, cHome)
	scSwarm(t, a, b, c)
	settle(t, c)
	c.Close()

	// While c is away: d joins and is kicked, b becomes master.
	d := scNode(t, "d.test")
	must[SwarmInfo](t)(d.Join(context.Background(), must[InviteInfo](t)(a.Invite(InviteArgs{Swarm: "team"})).Token))
	must[SwarmInfo](t)(a.Kick("team", "d.test"))
	must[SwarmInfo](t)(a.Transfer("team", "b.test"))

	c2 := scOpen(t, cHome)
	want := []string{"joined: d.test", "kicked: d.test", "master_changed: b.test"}
	settle(t, c2, want...)

	// The same records again, by every road.
	id := c2.swarmID(t, "team")
	c2.mu.Lock()
	recs := c2.swarms[id].state.Records
	c2.mu.Unlock()
	if _, err := c2.applyRecords(id, recs); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.pull(context.Background(), id, b.key(), true); err != nil {
		t.Fatal(err)
	}
	c2.noticeLog(id)
	settle(t, c2, want...)

	// Told through index 2 (c's own join) and nothing since, as a crash
	// between the log's commit and its notices' would leave it: the
	// notices come at the next start, once. Rewound with the notices
	// there, nothing is told twice.
	rewind := func(drop bool) {
		if drop {
			var ids []string
			for _, m := range must[[]InboxMessage](t)(c2.Inbox(InboxArgs{IncludeMuted: true})) {
				ids = append(ids, m.ID)
			}
			must[int](t)(c2.Delete(DeleteArgs{IDs: ids}))
		}
		c2.Close()
		st := must[*store.Store](t)(store.Open(filepath.Join(cHome, DataDir), store.Options{}, c2.log))
		if err := st.Update(func(tx *store.Tx) error { return tx.Put(noticeKey(id), uint64(2)) }); err != nil {
			t.Fatal(err)
		}
		st.Close()
		c2 = scOpen(t, cHome)
	}
	rewind(false)
	settle(t, c2, want...)
	rewind(true)
	settle(t, c2, want...)
	c2.Close()
	settle(t, scOpen(t, cHome), want...)
}

// Mutes hide notices as they hide messages: a swarm's mute hides its
// notices, an agent's mute the notices about it. What concerns this node
// itself is never hidden.
func TestMembershipNoticesMuted(t *testing.T) {
	a, b, c := scNode(t, "a.test"), scNode(t, "b.test"), scNode(t, "c.test")
	scSwarm(t, a, b)
	must[MuteInfo](t)(b.Mute(MuteArgs{Swarm: "team"}))
	must[SwarmInfo](t)(c.Join(context.Background(), must[InviteInfo](t)(a.Invite(InviteArgs{Swarm: "team"})).Token))
	settle(t, b, "joined: c.test")
	shown := func(n *Node) []string {
		var out []string
		for _, m := range must[[]InboxMessage](t)(n.Inbox(InboxArgs{})) {
			out = append(out, m.Event)
		}
		sort.Strings(out)
		return out
	}
	if got := shown(b); len(got) != 0 {
		t.Fatalf("a muted swarm's notices show: %v", got)
	}
	must[MuteInfo](t)(b.Unmute(MuteArgs{Swarm: "team"}))
	must[MuteInfo](t)(b.Mute(MuteArgs{Agent: "c.test"}))
	if got := shown(b); len(got) != 0 {
		t.Fatalf("a notice about a muted agent shows: %v", got)
	}
	must[MuteInfo](t)(b.Unmute(MuteArgs{Agent: "c.test"}))
	if got := shown(b); len(got) != 1 {
		t.Fatalf("unmuted, the notice is back: %v", got)
	}

	must[MuteInfo](t)(c.Mute(MuteArgs{Swarm: "team"}))
	must[SwarmInfo](t)(a.Kick("team", "c.test"))
	settle(t, c, "kicked: This node was kicked")
	if got := shown(c); len(got) != 1 || got[0] != NoticeKicked {
		t.Fatalf("a node's own kick must show whatever the mutes: %v", got)
	}
}

// A node that left is no member: not in its own member list, not counted.
func TestLeftNodeIsNoMember(t *testing.T) {
	a, b := scNode(t, "a.test"), scNode(t, "b.test")
	scSwarm(t, a, b)
	must[SwarmInfo](t)(b.Leave("team"))
	for _, m := range must[[]MemberInfo](t)(b.Members("team")) {
		if m.Self || m.Domain == "b.test" {
			t.Fatalf("b left but lists itself: %+v", m)
		}
	}
	l := must[[]SwarmInfo](t)(b.List())
	if len(l) != 1 || !l[0].Left || l[0].Members != 1 || l[0].IsMaster {
		t.Fatalf("b's list after leaving: %+v", l)
	}
	// The last member, the master, dissolves the swarm by leaving.
	scWait(t, "a sees b gone", func() bool { return len(must[[]MemberInfo](t)(a.Members("team"))) == 1 })
	must[SwarmInfo](t)(a.Leave("team"))
	if ms := must[[]MemberInfo](t)(a.Members("team")); len(ms) != 0 {
		t.Fatalf("a dissolved the swarm but lists %+v", ms)
	}
	if l := must[[]SwarmInfo](t)(a.List()); l[0].IsMaster || l[0].Members != 0 || l[0].Reason != "dissolved" {
		t.Fatalf("a's list after dissolving: %+v", l)
	}
}

// A notice's ID is derived from its record, and a peer may give its own
// message any UUID: a peer message holding that ID first does not
// silence the notice.
func TestMembershipNoticeNotShadowedByPeerID(t *testing.T) {
	a, b := scNode(t, "a.test"), scNode(t, "b.test")
	scSwarm(t, a, b)
	settle(t, a, "joined: b.test")
	id := lastNotice(t, a).ID
	must[int](t)(a.Delete(DeleteArgs{IDs: []string{id}}))
	swarmID := a.swarmID(t, "team")

	// b's message under the notice's ID is in a's inbox, and the notice
	// pass runs again over b's join.
	a.recvMu.Lock()
	arrival := a.arrival + 1
	err := a.st.Update(func(tx *store.Tx) error {
		now := a.now()
		m := wire.Message{V: wire.Version, ID: id, Swarm: swarmID, From: "b.test", To: wire.ToAll, Type: wire.TypeMessage,
			Created: now.UnixMilli(), Expires: now.Add(time.Hour).UnixMilli(), Body: "first"}
		if err := a.putInbox(tx, InboxItem{Msg: m, Received: now.UnixMilli(), Arrival: arrival, Key: b.key()}); err != nil {
			return err
		}
		return tx.Put(noticeKey(swarmID), uint64(0))
	})
	if err == nil {
		a.arrival = arrival
	}
	a.recvMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	a.noticeLog(swarmID)
	settle(t, a, "joined: b.test")
}
