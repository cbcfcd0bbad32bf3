package node

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/node/identity"
	"github.com/agent-swarm/agent-swarm/node/transport"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

// scHome makes a home for domain on a free loopback port with fast timings.
func scHome(t *testing.T, domain string) string {
	t.Helper()
	return scHomeTB(t, t, domain)
}

func scHomeTB(t testing.TB, _ *testing.T, domain string) string {
	port, err := transport.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if _, err := Init(home, InitOptions{Domain: domain, Listen: fmt.Sprintf("127.0.0.1:%d", port)}); err != nil {
		t.Fatal(err)
	}
	cfg, _ := LoadConfig(home)
	cfg.RetryMin, cfg.RetryMax = Duration(20*time.Millisecond), Duration(200*time.Millisecond)
	cfg.Heartbeat, cfg.SyncEvery = Duration(200*time.Millisecond), Duration(300*time.Millisecond)
	cfg.JoinRate, cfg.JoinBurst = 100, 100
	if err := SaveConfig(home, cfg); err != nil {
		t.Fatal(err)
	}
	return home
}

// scOpen opens a serving node on home; Close runs at cleanup (a second
// Close is harmless, which the tests rely on).
func scOpen(t *testing.T, home string) *Node {
	t.Helper()
	n, err := Open(home, Options{Serve: true, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return n
}

func scNode(t *testing.T, domain string) *Node { return scOpen(t, scHome(t, domain)) }

func scWait(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// scSwarm makes a swarm "team" on master and joins the others.
func scSwarm(t *testing.T, master *Node, others ...*Node) {
	t.Helper()
	must[SwarmInfo](t)(master.Create(CreateArgs{Name: "team"}))
	for _, o := range others {
		inv := must[InviteInfo](t)(master.Invite(InviteArgs{Swarm: "team"}))
		must[SwarmInfo](t)(o.Join(context.Background(), inv.Token))
	}
	for _, n := range append(others, master) {
		scWait(t, n.Domain()+" sees every member", func() bool {
			return len(must[[]MemberInfo](t)(n.Members("team"))) == len(others)+1
		})
	}
}

// bodies returns the bodies of peers' messages in the inbox (including
// muted; the node's own notices aside) and fails on a duplicate.
func bodies(t *testing.T, n *Node) map[string]InboxMessage {
	t.Helper()
	out := map[string]InboxMessage{}
	for _, m := range fromPeers(must[[]InboxMessage](t)(n.Inbox(InboxArgs{IncludeMuted: true, Limit: 1000}))) {
		if _, dup := out[m.Body]; dup {
			t.Fatalf("%s holds %q twice", n.Domain(), m.Body)
		}
		out[m.Body] = m
	}
	return out
}

// fromPeers leaves out the node's own notices (a member joined, say).
func fromPeers(ms []InboxMessage) []InboxMessage {
	out := []InboxMessage{}
	for _, m := range ms {
		if !m.Local {
			out = append(out, m)
		}
	}
	return out
}

func has(t *testing.T, n *Node, body string) bool { _, ok := bodies(t, n)[body]; return ok }

func TestBroadcastAndDirectReachEachOnce(t *testing.T) {
	a, b, c := scNode(t, "a.test"), scNode(t, "b.test"), scNode(t, "c.test")
	scSwarm(t, a, b, c)
	ctx := context.Background()
	r1 := must[SendResult](t)(a.Send(ctx, SendArgs{Swarm: "team", Body: "all 1", Wait: 10 * time.Second}))
	r2 := must[SendResult](t)(a.Send(ctx, SendArgs{Swarm: "team", Body: "all 2", Wait: 10 * time.Second}))
	must[SendResult](t)(a.Send(ctx, SendArgs{Swarm: "team", To: "c.test", Body: "for c", Wait: 10 * time.Second}))
	for _, d := range append(r1.Deliveries, r2.Deliveries...) {
		if d.Status != Delivered {
			t.Fatalf("delivery to %s: %s %s", d.Peer, d.Status, d.Reason)
		}
	}
	bb, cb := bodies(t, b), bodies(t, c)
	if len(bb) != 2 || len(cb) != 3 || !has(t, c, "for c") || has(t, b, "for c") {
		t.Fatalf("b holds %d, c holds %d; the direct message must reach only c", len(bb), len(cb))
	}
	if cb["all 1"].Seq != 1 || cb["all 2"].Seq != 2 || cb["for c"].Seq != 1 || !cb["for c"].Direct {
		t.Fatalf("sequence numbers per stream: %+v", cb)
	}
	if len(fromPeers(must[[]InboxMessage](t)(a.Inbox(InboxArgs{})))) != 0 {
		t.Fatal("the sender's own broadcast came back to it")
	}
}

func TestOfflinePeerReceivesWhenBack(t *testing.T) {
	a := scNode(t, "a.test")
	bHome := scHome(t, "b.test")
	b := scOpen(t, bHome)
	scSwarm(t, a, b)
	b.Close()
	res := must[SendResult](t)(a.Send(context.Background(), SendArgs{Swarm: "team", Body: "while you were out"}))
	time.Sleep(300 * time.Millisecond) // let a few attempts fail
	if ds := must[[]Delivery](t)(a.Deliveries(res.ID)); ds[0].Status != Pending {
		t.Fatalf("delivery to an offline peer is %s, want pending", ds[0].Status)
	}
	b2 := scOpen(t, bHome)
	scWait(t, "b receives after coming back", func() bool { return has(t, b2, "while you were out") })
	scWait(t, "a records the delivery", func() bool { return must[[]Delivery](t)(a.Deliveries(res.ID))[0].Status == Delivered })
	time.Sleep(300 * time.Millisecond)
	if n := len(bodies(t, b2)); n != 1 {
		t.Fatalf("b holds %d messages, want exactly 1", n)
	}
}

func TestRestartedSenderDeliversQueuedOutbox(t *testing.T) {
	aHome, bHome := scHome(t, "a.test"), scHome(t, "b.test")
	a, b := scOpen(t, aHome), scOpen(t, bHome)
	scSwarm(t, a, b)
	b.Close()
	for i := 0; i < 20; i++ {
		must[SendResult](t)(a.Send(context.Background(), SendArgs{Swarm: "team", Body: fmt.Sprint("queued ", i)}))
	}
	a.Close() // the queue is only on disk now
	b2 := scOpen(t, bHome)
	a2 := scOpen(t, aHome)
	scWait(t, "all 20 arrive", func() bool { return len(bodies(t, b2)) == 20 })
	scWait(t, "a's outbox drains", func() bool { return must[Status](t)(a2.Status()).Outbox == 0 })
	msgs := must[[]InboxMessage](t)(b2.Inbox(InboxArgs{Limit: 1000}))
	for i, m := range msgs {
		if m.Seq != uint64(i+1) {
			t.Fatalf("message %d has seq %d: the outbox must drain in order", i, m.Seq)
		}
	}
}

// post sends raw envelopes to a node over HTTP/3, as any peer could.
func post(t *testing.T, to *Node, envs ...wire.Signed) []wire.Result {
	t.Helper()
	c := transport.NewClient(transport.ClientOptions{})
	defer c.Close()
	body, _ := json.Marshal(wire.Batch{Envelopes: envs})
	code, reply, err := c.Do(context.Background(), transport.Peer{Addr: to.Addr(), Pin: to.pin}, "POST", "/swarm/v1/messages", body, nil, 1<<20)
	if err != nil || code != 200 {
		t.Fatalf("post: %d %v %s", code, err, reply)
	}
	br, err := wire.DecodeBatchReply(reply, len(envs))
	if err != nil {
		t.Fatal(err)
	}
	return br.Results
}

// envelopeFrom builds a valid envelope from n to the swarm "team".
func envelopeFrom(t *testing.T, n *Node, body string) wire.Signed {
	t.Helper()
	n.mu.Lock()
	s, err := n.resolve("team")
	if err != nil {
		n.mu.Unlock()
		t.Fatal(err)
	}
	env, _, err := n.envelope(s.state, sendSpec{To: wire.ToAll, Type: wire.TypeMessage, Body: body})
	n.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestReceiverRejectsWhatItMust(t *testing.T) {
	a, b := scNode(t, "a.test"), scNode(t, "b.test")
	scSwarm(t, a, b)
	outsider := scNode(t, "x.test")
	must[SwarmInfo](t)(outsider.Create(CreateArgs{Name: "team"})) // same name, another swarm

	good := envelopeFrom(t, a, "good")
	forged := envelopeFrom(t, a, "forged")
	forged.Sig[0] ^= 0xff
	tampered := envelopeFrom(t, a, "tampered")
	tampered.Payload = []byte(strings.Replace(string(tampered.Payload), "tampered", "tampereD", 1))
	// An outsider signs a message claiming to be a member, naming its own key.
	teamID := must[[]SwarmInfo](t)(a.List())[0].ID
	now := time.Now()
	claim := wire.Message{V: 1, ID: uuid.Must(uuid.NewV7()).String(), Swarm: teamID, From: "a.test", To: wire.ToAll, Type: wire.TypeMessage,
		Created: now.UnixMilli(), Expires: now.Add(time.Hour).UnixMilli(), Seq: 1, Body: "impostor"}
	impostor := must[wire.Signed](t)(wire.SignJSON(wire.PurposeEnvelope, wire.KeyHint(teamID, outsider.id.KeyString()), outsider.id.Key, claim))
	// A member signs with its own key but claims to be another member.
	claim.ID, claim.Body = uuid.Must(uuid.NewV7()).String(), "spoofed from"
	spoof := must[wire.Signed](t)(wire.SignJSON(wire.PurposeEnvelope, wire.KeyHint(teamID, b.id.KeyString()), b.id.Key, claim))
	// Expired and future messages signed by a real member.
	old := claim
	old.ID, old.From, old.Body, old.Created, old.Expires = uuid.Must(uuid.NewV7()).String(), "a.test", "expired", now.Add(-2*time.Hour).UnixMilli(), now.Add(-time.Hour).UnixMilli()
	expired := must[wire.Signed](t)(wire.SignJSON(wire.PurposeEnvelope, wire.KeyHint(teamID, a.id.KeyString()), a.id.Key, old))
	fut := old
	fut.ID, fut.Body, fut.Created, fut.Expires = uuid.Must(uuid.NewV7()).String(), "future", now.Add(time.Hour).UnixMilli(), now.Add(2*time.Hour).UnixMilli()
	future := must[wire.Signed](t)(wire.SignJSON(wire.PurposeEnvelope, wire.KeyHint(teamID, a.id.KeyString()), a.id.Key, fut))
	// Signed for another purpose: a record signature replayed as an envelope.
	wrongPurpose := wire.Sign(wire.PurposeRecord, good.KID, a.id.Key, good.Payload)

	res := post(t, b, good, forged, tampered, impostor, spoof, expired, future, wrongPurpose, good)
	want := []struct{ status, reason string }{
		{wire.Accepted, ""},
		{wire.Rejected, "bad signature"},
		{wire.Rejected, "bad signature"},
		{wire.Rejected, "unknown signing key"},
		{wire.Rejected, "does not match the signing key"},
		{wire.Rejected, "expired"},
		{wire.Rejected, "future"},
		{wire.Rejected, "bad signature"},
		{wire.Duplicate, ""},
	}
	for i, w := range want {
		if res[i].Status != w.status || !strings.Contains(res[i].Reason, w.reason) {
			t.Errorf("envelope %d: got %s %q, want %s %q", i, res[i].Status, res[i].Reason, w.status, w.reason)
		}
	}
	// A replay in a later batch is a duplicate too, and nothing else was stored.
	if r := post(t, b, good); r[0].Status != wire.Duplicate {
		t.Errorf("replay in a new batch: %s", r[0].Status)
	}
	if got := bodies(t, b); len(got) != 1 || !has(t, b, "good") {
		t.Fatalf("b stored %v, want only the good message", got)
	}
	if pub := identity.EncodeKey(b.id.Public()); pub == "" {
		t.Fatal("unreachable")
	}
}

func TestKickedMemberIsOut(t *testing.T) {
	a, b, c := scNode(t, "a.test"), scNode(t, "b.test"), scNode(t, "c.test")
	must[SwarmInfo](t)(a.Create(CreateArgs{Name: "team"}))
	reusable := must[InviteInfo](t)(a.Invite(InviteArgs{Swarm: "team", Uses: 5}))
	must[SwarmInfo](t)(b.Join(context.Background(), reusable.Token))
	must[SwarmInfo](t)(c.Join(context.Background(), reusable.Token))
	scWait(t, "b sees c", func() bool { return len(must[[]MemberInfo](t)(b.Members("team"))) == 3 })

	queued := envelopeFrom(t, c, "sent before the kick, delivered after")
	must[SwarmInfo](t)(a.Kick("team", "c.test"))
	scWait(t, "c learns it was kicked", func() bool {
		l := must[[]SwarmInfo](t)(c.List())
		return l[0].Left && l[0].Reason == wire.ReasonKick
	})
	scWait(t, "b sees c gone", func() bool { return len(must[[]MemberInfo](t)(b.Members("team"))) == 2 })
	if _, err := c.Send(context.Background(), SendArgs{Swarm: "team", Body: "still here?"}); !IsUser(err) || !strings.Contains(err.Error(), "kicked") {
		t.Fatalf("a kicked node's send: %v", err)
	}
	if r := post(t, b, queued); r[0].Status != wire.Rejected || !strings.Contains(r[0].Reason, "not a member") {
		t.Fatalf("b accepted a kicked member's message: %+v", r[0])
	}
	if has(t, b, "sent before the kick, delivered after") {
		t.Fatal("stored a kicked member's message")
	}
	// Its old token (uses left) no longer admits it; a new invite does.
	if _, err := c.Join(context.Background(), reusable.Token); err == nil || !strings.Contains(err.Error(), "kicked") {
		t.Fatalf("rejoin with an old token: %v", err)
	}
	fresh := must[InviteInfo](t)(a.Invite(InviteArgs{Swarm: "team"}))
	must[SwarmInfo](t)(c.Join(context.Background(), fresh.Token))
	scWait(t, "b sees c back", func() bool { return len(must[[]MemberInfo](t)(b.Members("team"))) == 3 })
}

func TestBadTokensChangeNothing(t *testing.T) {
	a, b, c := scNode(t, "a.test"), scNode(t, "b.test"), scNode(t, "c.test")
	must[SwarmInfo](t)(a.Create(CreateArgs{Name: "team"}))
	ctx := context.Background()
	once := must[InviteInfo](t)(a.Invite(InviteArgs{Swarm: "team", Uses: 1}))
	must[SwarmInfo](t)(b.Join(ctx, once.Token))
	short := must[InviteInfo](t)(a.Invite(InviteArgs{Swarm: "team", TTL: 50 * time.Millisecond}))
	revoked := must[InviteInfo](t)(a.Invite(InviteArgs{Swarm: "team"}))
	must[InviteInfo](t)(a.InviteRevoke(revoked.ID))
	forged := must[InviteInfo](t)(a.Invite(InviteArgs{Swarm: "team"})).Token
	forged = forged[:len(forged)-3] + flip(forged[len(forged)-3:])
	other := must[InviteInfo](t)(a.Invite(InviteArgs{Swarm: "team", Invitee: "someone.test"}))
	time.Sleep(100 * time.Millisecond)
	for _, tc := range []struct{ name, token, want string }{
		{"over-used", once.Token, "used up"},
		{"expired", short.Token, "expired"},
		{"revoked", revoked.Token, "revoked"},
		{"forged", forged, "signature"},
		{"for another agent", other.Token, "someone.test"},
		{"garbage", "swarm1.not-base64!.x", "corrupted"},
		{"not a token", "hello", "not an invite token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Join(ctx, tc.token)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("join: %v, want an error about %q", err, tc.want)
			}
		})
	}
	if l := must[[]SwarmInfo](t)(c.List()); len(l) != 0 {
		t.Fatalf("c is in %d swarms after only failed joins", len(l))
	}
	if ms := must[[]MemberInfo](t)(a.Members("team")); len(ms) != 2 {
		t.Fatalf("the swarm has %d members, want 2", len(ms))
	}
}

func flip(s string) string {
	b := []byte(s)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

func TestLeaveAndTransfer(t *testing.T) {
	a, b, c := scNode(t, "a.test"), scNode(t, "b.test"), scNode(t, "c.test")
	scSwarm(t, a, b, c)
	if _, err := a.Leave("team"); !IsUser(err) || !strings.Contains(err.Error(), "transfer") {
		t.Fatalf("master leave with members: %v", err)
	}
	must[SwarmInfo](t)(c.Leave("team"))
	for _, n := range []*Node{a, b} {
		scWait(t, n.Domain()+" sees c gone", func() bool { return len(must[[]MemberInfo](t)(n.Members("team"))) == 2 })
	}
	must[SwarmInfo](t)(a.Transfer("team", "b.test"))
	scWait(t, "b is master", func() bool { return must[[]SwarmInfo](t)(b.List())[0].IsMaster })
	if _, err := a.Kick("team", "b.test"); !IsUser(err) {
		t.Fatalf("the old master could still kick: %v", err)
	}
	must[SwarmInfo](t)(a.Leave("team"))
	scWait(t, "b alone", func() bool { return len(must[[]MemberInfo](t)(b.Members("team"))) == 1 })
	must[SwarmInfo](t)(b.Leave("team")) // the last member may leave
}

func TestOfflineMemberConvergesWithoutMaster(t *testing.T) {
	a, b := scNode(t, "a.test"), scNode(t, "b.test")
	cHome := scHome(t, "c.test")
	c := scOpen(t, cHome)
	d := scNode(t, "d.test")
	scSwarm(t, a, b, c, d)
	c.Close()
	must[SwarmInfo](t)(a.Kick("team", "d.test"))
	must[SwarmInfo](t)(a.Transfer("team", "b.test"))
	scWait(t, "b is master", func() bool { return must[[]SwarmInfo](t)(b.List())[0].IsMaster })
	a.Close() // the old master is gone too
	c2 := scOpen(t, cHome)
	scWait(t, "c converges through b", func() bool {
		ms := must[[]MemberInfo](t)(c2.Members("team"))
		master := ""
		for _, m := range ms {
			if m.Master {
				master = m.Domain
			}
		}
		return len(ms) == 3 && master == "b.test"
	})
	// And c then talks to b, the new master, with the master away.
	must[SendResult](t)(c2.Send(context.Background(), SendArgs{Swarm: "team", To: "b.test", Body: "hi new master", Wait: 10 * time.Second}))
	scWait(t, "b receives", func() bool { return has(t, b, "hi new master") })
}

func TestMuteHidesButKeeps(t *testing.T) {
	a, b := scNode(t, "a.test"), scNode(t, "b.test")
	scSwarm(t, a, b)
	must[MuteInfo](t)(b.Mute(MuteArgs{Swarm: "team"}))
	must[SendResult](t)(a.Send(context.Background(), SendArgs{Swarm: "team", Body: "shh", Wait: 10 * time.Second}))
	if n := len(must[[]InboxMessage](t)(b.Inbox(InboxArgs{}))); n != 0 {
		t.Fatalf("muted swarm shows %d messages", n)
	}
	if !has(t, b, "shh") {
		t.Fatal("a muted message must still be stored")
	}
	must[MuteInfo](t)(b.Unmute(MuteArgs{Swarm: "team"}))
	if n := len(must[[]InboxMessage](t)(b.Inbox(InboxArgs{}))); n != 1 {
		t.Fatalf("after unmute %d shown, want 1", n)
	}
	must[MuteInfo](t)(b.Mute(MuteArgs{Agent: "a.test", For: 2 * time.Second}))
	if n := len(must[[]InboxMessage](t)(b.Inbox(InboxArgs{}))); n != 0 {
		t.Fatal("a muted agent's message is shown")
	}
	scWait(t, "a timed mute lapses", func() bool { return len(must[[]InboxMessage](t)(b.Inbox(InboxArgs{}))) == 1 })
}

func TestPingAndPresence(t *testing.T) {
	a, b := scNode(t, "a.test"), scNode(t, "b.test")
	scSwarm(t, a, b)
	must[Presence](t)(b.SetPresence("busy", "reviewing PR 12"))
	p := must[PingResult](t)(a.Ping(context.Background(), "b.test"))
	if p.RTTms <= 0 || p.State != "busy" || p.Status != "reviewing PR 12" {
		t.Fatalf("ping = %+v", p)
	}
	scWait(t, "b's presence reaches a's member list", func() bool {
		for _, m := range must[[]MemberInfo](t)(a.Members("team")) {
			if m.Domain == "b.test" {
				return m.State == "busy"
			}
		}
		return false
	})
	if _, err := a.Ping(context.Background(), "stranger.test"); !IsUser(err) {
		t.Fatalf("ping of a stranger: %v", err)
	}
}

func TestClosedNodeSaysSo(t *testing.T) {
	n := scNode(t, "a.test")
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := n.Status(); err == nil {
		t.Fatal("Status on a closed node succeeded")
	}
	if _, err := n.Create(CreateArgs{Name: "late"}); err == nil {
		t.Fatal("Create on a closed node succeeded")
	}
}

// TestBurstArrivesOnceInOrder: a burst of sends, some waiting for acks
// while the sender is mid-batch, all arrive exactly once and in order.
// (A sender once dropped a message queued while it was reading a batch.)
func TestBurstArrivesOnceInOrder(t *testing.T) {
	a, b := scNode(t, "a.test"), scNode(t, "b.test")
	scSwarm(t, a, b)
	ctx := context.Background()
	const n = 400
	for i := 0; i < n; i++ {
		wait := time.Duration(0)
		if i%3 == 0 {
			wait = 10 * time.Second
		}
		r := must[SendResult](t)(a.Send(ctx, SendArgs{Swarm: "team", To: "b.test", Body: fmt.Sprint("burst ", i), Wait: wait}))
		if wait > 0 && r.Deliveries[0].Status != Delivered {
			t.Fatalf("message %d: %s after waiting", i, r.Deliveries[0].Status)
		}
	}
	scWait(t, "all arrive", func() bool { return len(bodies(t, b)) == n })
	msgs := fromPeers(must[[]InboxMessage](t)(b.Inbox(InboxArgs{Limit: 1000})))
	for i, m := range msgs {
		if m.Seq != uint64(i+1) {
			t.Fatalf("message %d has seq %d", i, m.Seq)
		}
	}
	scWait(t, "the outbox drains", func() bool { return must[Status](t)(a.Status()).Outbox == 0 })
}

// TestMasterOfflineMembersKeepMessaging: the master holds only the
// membership; with it down, members message each other directly, and the
// master gets what was sent to all once it is back. Nothing is lost or
// doubled.
func TestMasterOfflineMembersKeepMessaging(t *testing.T) {
	aHome := scHome(t, "a.test")
	a := scOpen(t, aHome)
	b, c := scNode(t, "b.test"), scNode(t, "c.test")
	scSwarm(t, a, b, c)
	must0(t, a.Close())
	ctx := context.Background()
	for i := range 20 {
		r := must[SendResult](t)(b.Send(ctx, SendArgs{Swarm: "team", To: "c.test", Body: fmt.Sprintf("b to c %d", i), Wait: 5 * time.Second}))
		if r.Deliveries[0].Status != Delivered {
			t.Fatalf("b to c with the master down: %+v", r.Deliveries)
		}
		must[SendResult](t)(c.Send(ctx, SendArgs{Swarm: "team", Body: fmt.Sprintf("c to all %d", i)}))
	}
	scWait(t, "b has c's 20 broadcasts", func() bool { return len(bodies(t, b)) == 20 })
	a = scOpen(t, aHome)
	scWait(t, "the master gets c's broadcasts when back", func() bool { return len(bodies(t, a)) == 20 })
	if n := len(bodies(t, c)); n != 20 {
		t.Fatalf("c holds %d messages, want b's 20", n)
	}
}

// TestInboxPrunesOldReadMessages: read messages older than inbox_keep go
// (with their read marks and arrival entries); unread ones stay whatever
// their age, and waiting for new messages still works afterwards.
func TestInboxPrunesOldReadMessages(t *testing.T) {
	now := time.Now()
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	a := scNode(t, "a.test")
	bHome := scHome(t, "b.test")
	b, err := Open(bHome, Options{Serve: true, Log: zerolog.Nop(), Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	scSwarm(t, a, b)
	ctx := context.Background()
	for i := range 3 {
		must[SendResult](t)(a.Send(ctx, SendArgs{Swarm: "team", Body: fmt.Sprintf("m%d", i), Wait: 5 * time.Second}))
	}
	ms := bodies(t, b)
	must[int](t)(b.Read([]string{ms["m0"].ID, ms["m1"].ID}, false, ""))
	if n := must[int](t)(b.pruneInbox(24 * time.Hour)); n != 0 {
		t.Fatalf("pruned %d messages read just now", n)
	}
	clock.Store(now.Add(25 * time.Hour).UnixNano())
	if n := must[int](t)(b.pruneInbox(24 * time.Hour)); n != 2 {
		t.Fatalf("pruned %d, want the 2 read a day ago", n)
	}
	left := bodies(t, b)
	if len(left) != 1 || left["m2"].ID == "" {
		t.Fatalf("after pruning: %v", left)
	}
	clock.Store(time.Now().UnixNano())
	got := make(chan []InboxMessage, 1)
	go func() { ms, _ := b.Wait(ctx, "team", 10*time.Second, ""); got <- ms }()
	time.Sleep(100 * time.Millisecond)
	must[SendResult](t)(a.Send(ctx, SendArgs{Swarm: "team", Body: "after prune", Wait: 5 * time.Second}))
	if ms := <-got; len(ms) != 1 || ms[0].Body != "after prune" {
		t.Fatalf("wait after pruning: %+v", ms)
	}
}
