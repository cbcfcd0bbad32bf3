package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/node/identity"
	"github.com/agent-swarm/agent-swarm/node/membership"
	"github.com/agent-swarm/agent-swarm/node/transport"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/google/uuid"
	"github.com/quic-go/quic-go/http3"
	"github.com/rs/zerolog"
)

// The adversarial suite: an attacker with its own keys, hand-built
// envelopes, records and join requests, and a fake peer server that logs
// what reaches it, against real nodes on 127.0.0.1 (issue #11, DESIGN §2).
// Each test asserts that nothing was stored or misdelivered, and that the
// user was told where the design says so.

// attacker is an agent written into the test: a key of its own and,
// where it needs one, a fake peer server that answers every batch
// "accepted" and logs the swarms of what it was sent.
type attacker struct {
	domain string
	key    ed25519.PrivateKey
	addr   string
	pin    string

	mu   sync.Mutex
	got  map[string][]string // swarm ID -> message IDs that reached it
	seen int
}

func newAttacker(t *testing.T, domain string) *attacker {
	t.Helper()
	id := must[*identity.Identity](t)(identity.Generate(domain))
	return &attacker{domain: domain, key: id.Key, got: map[string][]string{}}
}

func (a *attacker) keyString() string { return identity.EncodeKey(a.key.Public().(ed25519.PublicKey)) }

func (a *attacker) fingerprint() string { return fingerprintOf(a.keyString()) }

func (a *attacker) member() wire.Member {
	return wire.Member{Domain: a.domain, Key: a.keyString(), Addr: a.addr, Pin: a.pin}
}

// serve starts the fake peer: HTTP/3 with a self-signed certificate that
// the membership log pins, like a real standalone node.
func (a *attacker) serve(t *testing.T) {
	t.Helper()
	cp, kp, err := transport.SelfSigned(a.domain, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(cp, kp)
	if err != nil {
		t.Fatal(err)
	}
	a.pin = must[string](t)(transport.PinOf(cert))
	mux := http.NewServeMux()
	mux.HandleFunc("POST /swarm/v1/messages", func(w http.ResponseWriter, r *http.Request) {
		var b wire.Batch
		_ = json.NewDecoder(r.Body).Decode(&b)
		res := make([]wire.Result, len(b.Envelopes))
		a.mu.Lock()
		for i, e := range b.Envelopes {
			sw, _, _ := wire.SplitKeyHint(e.KID)
			var m wire.Message
			_ = json.Unmarshal(e.Payload, &m)
			a.got[sw] = append(a.got[sw], m.ID)
			a.seen++
			res[i] = wire.Result{ID: m.ID, Status: wire.Accepted}
		}
		a.mu.Unlock()
		writeJSON(w, 200, wire.BatchReply{Results: res})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { writeErr(w, 404, "no") })
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http3.Server{Handler: mux, TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})}
	go srv.Serve(udp)
	t.Cleanup(func() { srv.Close(); udp.Close() })
	a.addr = udp.LocalAddr().String()
}

func (a *attacker) received(swarmID string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.got[swarmID]...)
}

// joinReq hand-builds a join request for a token, signed by key under kid.
func joinReq(t *testing.T, token string, m wire.Member, key ed25519.PrivateKey, kid string) []byte {
	t.Helper()
	inv, _, err := wire.ParseToken(token, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req := wire.JoinRequest{V: wire.Version, Swarm: inv.Swarm, Invite: inv.ID, Member: m, Time: time.Now().UnixMilli()}
	sreq := must[wire.Signed](t)(wire.SignJSON(wire.PurposeJoin, kid, key, req))
	b, _ := json.Marshal(wire.Join{Token: token, Request: sreq})
	return b
}

// rawDo sends one request to a node's peer API and returns status and body.
func rawDo(t *testing.T, to *Node, method, path string, body []byte) (int, string) {
	t.Helper()
	c := transport.NewClient(transport.ClientOptions{})
	defer c.Close()
	code, reply, err := c.Do(context.Background(), transport.Peer{Addr: to.Addr(), Pin: to.pin}, method, path, body, nil, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return code, string(reply)
}

// handEnv signs a message payload as-is under key in swarmID.
func handEnv(t *testing.T, key ed25519.PrivateKey, swarmID string, m wire.Message) wire.Signed {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return wire.Sign(wire.PurposeEnvelope, wire.KeyHint(swarmID, identity.EncodeKey(key.Public().(ed25519.PublicKey))), key, b)
}

// stateOf returns a copy of a node's state of a swarm.
func stateOf(t *testing.T, n *Node, ref string) *membership.State {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	s, err := n.resolve(ref)
	if err != nil {
		t.Fatal(err)
	}
	return s.state.Clone()
}

// msgFrom is a valid message payload from n in a swarm, to be edited.
func msgFrom(t *testing.T, n *Node, ref, body string) wire.Message {
	t.Helper()
	st := stateOf(t, n, ref)
	now := time.Now()
	return wire.Message{V: wire.Version, ID: must[uuid.UUID](t)(uuid.NewV7()).String(), Swarm: st.ID, From: n.Domain(), To: wire.ToAll,
		Type: wire.TypeMessage, Created: now.UnixMilli(), Expires: now.Add(time.Hour).UnixMilli(), Seq: 1, Head: st.Head, Body: body}
}

func memberNamed(t *testing.T, n *Node, ref, name string) MemberInfo {
	t.Helper()
	for _, m := range must[[]MemberInfo](t)(n.Members(ref)) {
		if m.Domain == name {
			return m
		}
	}
	t.Fatalf("%s: no member %s in %s", n.Domain(), name, ref)
	return MemberInfo{}
}

func fpOf(n *Node) string { return identity.Fingerprint(n.id.Public()) }

// Class 1 and 2: an invite holder in one swarm takes the name of a member
// of another swarm the victim is in. The two are two agents: the victim's
// messages for the real one go to the real one, never to the impostor; the
// faces tell them apart by key and flag the shared name; a mute by name
// is refused as ambiguous; kicking the impostor changes nothing for the
// real one.
func TestAdversaryCrossSwarmNameCollision(t *testing.T) {
	v, b := scNode(t, "v.test"), scNode(t, "b.test")
	scSwarm(t, v, b) // "team": v (master) and the real b.test
	must[SwarmInfo](t)(v.Create(CreateArgs{Name: "other"}))
	team, other := stateOf(t, v, "team").ID, stateOf(t, v, "other").ID

	imp := newAttacker(t, "b.test")
	imp.serve(t)
	tok := must[InviteInfo](t)(v.Invite(InviteArgs{Swarm: "other"})).Token
	if code, body := rawDo(t, v, "POST", "/swarm/v1/join", joinReq(t, tok, imp.member(), imp.key, imp.keyString())); code != 200 {
		t.Fatalf("the impostor's join into the other swarm was refused (%d %s); the test needs it in", code, body)
	}

	direct := must[SendResult](t)(v.Send(context.Background(), SendArgs{Swarm: "team", To: "b.test", Body: "for the real b", Wait: 10 * time.Second}))
	bcast := must[SendResult](t)(v.Send(context.Background(), SendArgs{Swarm: "team", Body: "to team", Wait: 10 * time.Second}))
	for _, r := range []SendResult{direct, bcast} {
		for _, d := range r.Deliveries {
			if d.Status != Delivered || d.Fingerprint != fpOf(b) {
				t.Errorf("delivery of %s: %+v, want delivered to the real b (%s)", r.ID, d, fpOf(b))
			}
		}
	}
	scWait(t, "the real b has both", func() bool { return has(t, b, "for the real b") && has(t, b, "to team") })
	if got := imp.received(team); len(got) > 0 {
		t.Fatalf("the impostor received %d messages of the victim's other swarm: %v", len(got), got)
	}

	// The faces: the same name, two keys, each flagged.
	real, fake := memberNamed(t, v, "team", "b.test"), memberNamed(t, v, "other", "b.test")
	if real.Fingerprint != fpOf(b) || fake.Fingerprint != imp.fingerprint() || !real.Clash || !fake.Clash {
		t.Fatalf("members: team b.test %+v, other b.test %+v; want the two keys, both flagged", real, fake)
	}
	if real.Identity != "claimed" || real.SwarmID != team || fake.SwarmID != other {
		t.Fatalf("members must say claimed and the swarm ID: %+v %+v", real, fake)
	}
	must[SendResult](t)(b.Send(context.Background(), SendArgs{Swarm: "team", Body: "from the real b", Wait: 10 * time.Second}))
	scWait(t, "v has b's message", func() bool { return has(t, v, "from the real b") })
	im := bodies(t, v)["from the real b"]
	if im.Sender.Fingerprint != fpOf(b) || !im.Sender.Clash || im.SwarmID != team || !strings.Contains(Frame(im), fpOf(b)) || !strings.Contains(Frame(im), "WARNING") {
		t.Fatalf("the inbox and the frame must name the key and flag the shared name: %+v\n%s", im.Sender, Frame(im))
	}

	// A mute by the shared name is refused; by fingerprint it takes that key only.
	if _, err := v.Mute(MuteArgs{Agent: "b.test"}); err == nil || !IsUser(err) || !strings.Contains(err.Error(), "different keys") {
		t.Fatalf("mute by an ambiguous name: %v", err)
	}
	// (A wake rule for a sender binds the key as a mute does: ext/wake's
	// TestWakeRuleSenderBindsKey.)
	must[MuteInfo](t)(v.Mute(MuteArgs{Agent: imp.fingerprint()}))
	if v.IsMuted(team, b.key()) || !v.IsMuted(other, imp.keyString()) {
		t.Fatal("the mute of the impostor's key must not mute the real b")
	}
	if _, err := v.Send(context.Background(), SendArgs{Swarm: "other", To: fpOf(b), Body: "x"}); err == nil {
		t.Fatal("a fingerprint that is not a member of the swarm must be refused")
	}

	// Kicked, the impostor leaves no trace in the real b's deliveries.
	must[SwarmInfo](t)(v.Kick("other", imp.fingerprint()))
	after := must[SendResult](t)(v.Send(context.Background(), SendArgs{Swarm: "team", To: "b.test", Body: "after the kick", Wait: 10 * time.Second}))
	if after.Deliveries[0].Status != Delivered || after.Deliveries[0].Fingerprint != fpOf(b) {
		t.Fatalf("after the kick: %+v", after.Deliveries)
	}
	scWait(t, "the real b has it", func() bool { return has(t, b, "after the kick") })
	if got := imp.received(team); len(got) > 0 {
		t.Fatalf("the impostor received messages of the other swarm: %v", got)
	}
	if memberNamed(t, v, "team", "b.test").Clash {
		t.Fatal("with the impostor gone the name is no longer shared")
	}
}

// Class 3: a member who learned another member's message ID posts its own
// envelope under that ID first. The real message is still accepted and
// stored: a message's identity is (swarm, sender key, ID).
func TestAdversaryMessageIDSquatting(t *testing.T) {
	a, b, c := scNode(t, "a.test"), scNode(t, "b.test"), scNode(t, "c.test")
	scSwarm(t, a, b, c)
	real := envelopeFrom(t, a, "the real message")
	var rm wire.Message
	_ = json.Unmarshal(real.Payload, &rm)

	squat := msgFrom(t, b, "team", "squatted")
	squat.ID = rm.ID
	if r := post(t, c, handEnv(t, b.id.Key, squat.Swarm, squat)); r[0].Status != wire.Accepted {
		t.Fatalf("the squatter's own message: %+v", r[0])
	}
	if r := post(t, c, real); r[0].Status != wire.Accepted {
		t.Fatalf("the real message after a squat of its ID: %+v, want accepted", r[0])
	}
	if r := post(t, c, real); r[0].Status != wire.Duplicate {
		t.Fatalf("a true replay of the real message: %+v, want duplicate", r[0])
	}
	got := bodies(t, c)
	if got["the real message"].Sender.Fingerprint != fpOf(a) || got["squatted"].Sender.Fingerprint != fpOf(b) {
		t.Fatalf("each message must keep its own sender: %+v", got)
	}
	// Both carry the ID; marking it read marks both, and nothing else.
	if n := must[int](t)(c.Read([]string{rm.ID}, false, "")); n != 1 {
		t.Fatalf("read marked %d IDs", n)
	}
	for _, m := range must[[]InboxMessage](t)(c.Inbox(InboxArgs{Unread: true})) {
		if m.ID == rm.ID {
			t.Fatalf("still unread after read: %+v", m)
		}
	}
}

// Class 4: a member offline during a transfer is handed a record the
// former master signs at the transfer's index. When it comes back and
// talks to the others it holds proof of the fork, tells its user (status,
// an inbox notice) and follows neither side's later records blindly; a
// former master's record past its term is kept as proof too.
func TestAdversaryFormerMasterFork(t *testing.T) {
	a, b, c, d := scNode(t, "a.test"), scNode(t, "b.test"), scNode(t, "c.test"), scNode(t, "d.test")
	scSwarm(t, a, b, c, d)
	cHome := c.Home()
	c.Close()
	before := stateOf(t, a, "team")
	must[SwarmInfo](t)(a.Transfer("team", "b.test"))
	scWait(t, "d sees b as master", func() bool { return stateOf(t, d, "team").Master == "b.test" })

	// The former master signs another record at the transfer's index.
	forged := wire.Record{V: wire.Version, Swarm: before.ID, Index: before.Head.Index + 1, Prev: before.Head.Hash,
		Type: wire.RecSettings, Time: time.Now().UnixMilli(), Settings: &wire.Settings{Name: "hijacked"}}
	fsg := must[wire.Signed](t)(wire.SignJSON(wire.PurposeRecord, a.key(), a.id.Key, forged))

	// c, still behind, takes it: nothing tells it yet that it is forged.
	off, err := Open(cHome, Options{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := off.applyRecords(before.ID, []wire.Signed{fsg}); err != nil {
		t.Fatalf("the lagging member cannot tell the forged record yet: %v", err)
	}
	off.Close()

	c = scOpen(t, cHome)
	scWait(t, "c holds proof of the fork", func() bool { return len(must[Status](t)(c.Status()).Forks) > 0 })
	proofs := must[[]membership.Fork](t)(c.Forks(before.ID))
	if len(proofs) == 0 || proofs[0].Signer != a.key() || proofs[0].Index != before.Head.Index+1 {
		t.Fatalf("fork proofs: %+v", proofs)
	}
	pub, _ := identity.DecodeKey(a.key())
	if proofs[0].Held.Verify(wire.PurposeRecord, pub) != nil || proofs[0].Other.Verify(wire.PurposeRecord, pub) != nil {
		t.Fatal("a proof is two records that both verify under the signer's key")
	}
	scWait(t, "c's user is told in the inbox", func() bool {
		for _, m := range must[[]InboxMessage](t)(c.Inbox(InboxArgs{})) {
			if m.Local && m.Event == "fork" && strings.Contains(m.Body, "forked") {
				return true
			}
		}
		return false
	})
	if list := must[[]SwarmInfo](t)(c.List()); list[0].Fork == "" {
		t.Fatalf("list must show the fork: %+v", list)
	}

	// The former master signs past its term and pushes it to d.
	st := stateOf(t, a, before.ID)
	late := wire.Record{V: wire.Version, Swarm: st.ID, Index: st.Head.Index + 1, Prev: st.Head.Hash,
		Type: wire.RecSettings, Time: time.Now().UnixMilli(), Settings: &wire.Settings{Name: "late"}}
	lsg := must[wire.Signed](t)(wire.SignJSON(wire.PurposeRecord, a.key(), a.id.Key, late))
	a.mu.Lock()
	env, _, err := a.envelope(a.swarms[st.ID].state, sendSpec{To: wire.ToAll, Type: wire.TypeSystem, Event: wire.EventLog, Records: []wire.Signed{lsg}})
	a.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	post(t, d, env)
	scWait(t, "d holds proof of the former master's record", func() bool { return len(must[Status](t)(d.Status()).Forks) > 0 })
	if name := stateOf(t, d, st.ID).Settings.Name; name != "team" {
		t.Fatalf("d followed a former master's record: name %q", name)
	}
}

// Class 5: a kicked agent cannot come back with an invite issued before the
// kick: not with its key, not in another spelling of its key, not under
// its name with a fresh key. A fresh invite readmits it.
func TestAdversaryKickedCannotRejoin(t *testing.T) {
	a, b := scNode(t, "a.test"), scNode(t, "b.test")
	scSwarm(t, a, b)
	old := must[InviteInfo](t)(a.Invite(InviteArgs{Swarm: "team", Uses: 5})).Token
	must[SwarmInfo](t)(a.Kick("team", "b.test"))
	scWait(t, "b knows it was kicked", func() bool { return must[[]SwarmInfo](t)(b.List())[0].Left })

	fresh := newAttacker(t, "b.test")
	fresh.addr = b.Addr()
	bm := b.self()
	odd := bm
	odd.Key = respell(t, bm.Key)
	cases := []struct {
		name string
		body []byte
		want string
	}{
		{"same key, pre-kick invite", joinReq(t, old, bm, b.id.Key, bm.Key), "kicked"},
		{"same name, fresh key, pre-kick invite", joinReq(t, old, fresh.member(), fresh.key, fresh.keyString()), "kicked"},
		{"same key spelled otherwise", joinReq(t, old, odd, b.id.Key, odd.Key), "canonical"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := rawDo(t, a, "POST", "/swarm/v1/join", tc.body)
			if code == 200 || !strings.Contains(body, tc.want) {
				t.Fatalf("got %d %s, want a refusal saying %q", code, body, tc.want)
			}
			if n := len(stateOf(t, a, "team").Members); n != 1 {
				t.Fatalf("the swarm has %d members", n)
			}
		})
	}
	tok := must[InviteInfo](t)(a.Invite(InviteArgs{Swarm: "team"})).Token
	must[SwarmInfo](t)(b.Join(context.Background(), tok))
}

// respell writes a key in a non-canonical base64url spelling: the last
// character carries two spare bits, which a lax decoder ignores.
func respell(t *testing.T, key string) string {
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alpha, key[len(key)-1])
	odd := key[:len(key)-1] + string(alpha[i|1])
	if b, err := base64.RawURLEncoding.DecodeString(odd); err != nil || base64.RawURLEncoding.EncodeToString(b) != key {
		t.Fatalf("respell: %q does not decode to the same key", odd)
	}
	return odd
}

// Class 6, the rest of the same class, each on live nodes.
func TestAdversaryReplaysAndOrdering(t *testing.T) {
	a, b, c := scNode(t, "a.test"), scNode(t, "b.test"), scNode(t, "c.test")
	scSwarm(t, a, b, c)
	swarmID := stateOf(t, a, "team").ID

	t.Run("a replayed leave notice does not end a membership that began after it", func(t *testing.T) {
		b.mu.Lock()
		leave, _, err := b.envelope(b.swarms[swarmID].state, sendSpec{To: wire.ToAll, Type: wire.TypeSystem, Event: wire.EventLeave})
		b.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		must[SwarmInfo](t)(b.Leave("team"))
		scWait(t, "a records the leave", func() bool { return len(stateOf(t, a, "team").Members) == 2 })
		must[SwarmInfo](t)(b.Join(context.Background(), must[InviteInfo](t)(a.Invite(InviteArgs{Swarm: "team"})).Token))
		scWait(t, "c sees b again", func() bool { return stateOf(t, c, "team").IsMember("b.test") })
		// c has seen this notice's ID; to a node that had not, the replay
		// is new. Either way b stays in.
		post(t, c, leave)
		post(t, a, leave)
		time.Sleep(300 * time.Millisecond)
		if !stateOf(t, a, "team").IsMember("b.test") || memberNamed(t, c, "team", "b.test").Leaving {
			t.Fatal("a replayed leave ended b's new membership")
		}
		must[SendResult](t)(b.Send(context.Background(), SendArgs{Swarm: "team", Body: "still here", Wait: 10 * time.Second}))
		scWait(t, "c takes b's messages", func() bool { return has(t, c, "still here") })
	})

	t.Run("a signed presence cannot be replayed within its window", func(t *testing.T) {
		p := wire.Presence{V: wire.Version, From: "b.test", To: "c.test", State: "busy", Time: time.Now().UnixMilli(), Nonce: uuid.NewString()}
		sg := must[wire.Signed](t)(wire.SignJSON(wire.PurposePresence, b.key(), b.id.Key, p))
		body, _ := json.Marshal(sg)
		if code, msg := rawDo(t, c, "POST", "/swarm/v1/ping", body); code != 200 {
			t.Fatalf("first presence: %d %s", code, msg)
		}
		if code, msg := rawDo(t, c, "POST", "/swarm/v1/ping", body); code != 403 || !strings.Contains(msg, "replayed") {
			t.Fatalf("replayed presence: %d %s, want 403 replayed", code, msg)
		}
	})

	t.Run("the inbox is in arrival order whatever ID a sender picks", func(t *testing.T) {
		m := msgFrom(t, b, "team", "picked a huge id")
		m.ID, m.Seq = "ffffffff-ffff-7fff-bfff-ffffffffffff", 900
		post(t, c, handEnv(t, b.id.Key, swarmID, m))
		post(t, c, envelopeFrom(t, a, "arrived last"))
		in := must[[]InboxMessage](t)(c.Inbox(InboxArgs{}))
		if last := in[len(in)-1]; last.Body != "arrived last" {
			t.Fatalf("newest is %q, want the one that arrived last", last.Body)
		}
	})

	t.Run("a backdated created time is shown as the sender's claim, beside the arrival", func(t *testing.T) {
		m := msgFrom(t, b, "team", "from the past")
		m.Created, m.Seq = time.Now().Add(-72*time.Hour).UnixMilli(), 901
		post(t, c, handEnv(t, b.id.Key, swarmID, m))
		got := bodies(t, c)["from the past"]
		recv := must[time.Time](t)(time.Parse(time.RFC3339Nano, got.Received))
		if time.Since(recv) > time.Minute || got.Created == got.Received {
			t.Fatalf("received %s created %s: want arrival now, the claim beside it", got.Received, got.Created)
		}
	})

	t.Run("gaps are per sender stream and truthful", func(t *testing.T) {
		seq := func(n uint64, body string) wire.Signed {
			m := msgFrom(t, a, "team", body)
			m.Seq = n
			return handEnv(t, a.id.Key, swarmID, m)
		}
		post(t, b, seq(1000, "g1000"))
		post(t, b, seq(1003, "g1003"))
		got := bodies(t, b)
		if got["g1000"].Gap != 0 || got["g1003"].Gap != 2 {
			t.Fatalf("gaps %d, %d; want 0 then 2", got["g1000"].Gap, got["g1003"].Gap)
		}
	})

	t.Run("a send refused after validation takes no sequence number", func(t *testing.T) {
		r1 := must[SendResult](t)(a.Send(context.Background(), SendArgs{Swarm: "team", Body: "one"}))
		if _, err := a.Send(context.Background(), SendArgs{Swarm: "team", Body: "bad \x07 bell"}); err == nil {
			t.Fatal("a control character must be refused")
		}
		r2 := must[SendResult](t)(a.Send(context.Background(), SendArgs{Swarm: "team", Body: "two"}))
		if r2.Seq != r1.Seq+1 {
			t.Fatalf("seq %d then %d: the refused send left a gap", r1.Seq, r2.Seq)
		}
	})

	t.Run("keys that differ only in case are refused", func(t *testing.T) {
		m := msgFrom(t, a, "team", "lower")
		b1, _ := json.Marshal(m)
		raw := strings.Replace(string(b1), `"body":"lower"`, `"body":"lower","BODY":"upper"`, 1)
		env := wire.Sign(wire.PurposeEnvelope, wire.KeyHint(swarmID, a.key()), a.id.Key, []byte(raw))
		if r := post(t, c, env); r[0].Status != wire.Rejected || !strings.Contains(r[0].Reason, "lower-case") {
			t.Fatalf("got %+v", r[0])
		}
		if has(t, c, "lower") || has(t, c, "upper") {
			t.Fatal("stored a message with case-folded duplicate keys")
		}
	})
}

// A member that rejoined is taken back by a node that has not seen the
// re-add yet: an unknown or removed key makes the node catch up first.
func TestAdversaryRejoinedMemberNotRefusedForGood(t *testing.T) {
	a, b, c := scNode(t, "a.test"), scNode(t, "b.test"), scNode(t, "c.test")
	scSwarm(t, a, b, c)
	must[SwarmInfo](t)(a.Kick("team", "b.test"))
	scWait(t, "b knows it was kicked", func() bool { return must[[]SwarmInfo](t)(b.List())[0].Left })
	scWait(t, "c saw the kick", func() bool { return !stateOf(t, c, "team").IsMember("b.test") })
	cHome := c.Home()
	c.Close()
	must[SwarmInfo](t)(b.Join(context.Background(), must[InviteInfo](t)(a.Invite(InviteArgs{Swarm: "team"})).Token))
	scWait(t, "b is back", func() bool { return stateOf(t, a, "team").IsMember("b.test") })

	// c, not serving (no sync loop), still thinks b is kicked.
	off, err := Open(cHome, Options{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	if stateOf(t, off, "team").IsMember("b.test") {
		t.Fatal("c should not have seen the re-add yet")
	}
	res := off.receive(context.Background(), []wire.Signed{envelopeFrom(t, b, "back again")}, "127.0.0.1")
	if res[0].Status != wire.Accepted {
		t.Fatalf("a rejoined member's message: %+v, want accepted after catching up", res[0])
	}
}

// issueName makes a CA-issued certificate for a DNS name.
func (ca *testCA) issueName(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// Domain verification (DESIGN §2): a name is verified when its own HTTPS
// site, under a WebPKI certificate, names the member's key. The master
// checks a joiner that claims such a name; an impostor claiming it with
// another key is refused, and a name that cannot be checked stays claimed.
func TestDomainVerification(t *testing.T) {
	const name = "b.swarm-verify.dev"
	ca := newTestCA(t)
	// The real owner of the name: its node, and its site (Angie's part,
	// played here by an HTTP/3 server with a CA-issued certificate that
	// serves the node's agent card).
	bHome := scHome(t, name)
	b := scOpen(t, bHome)
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	site := &http3.Server{Handler: b.PeerHandler(), TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{ca.issueName(t, name)}, MinVersion: tls.VersionTLS13})}
	go site.Serve(udp)
	t.Cleanup(func() { site.Close(); udp.Close() })
	resolve := func(hp string) string {
		if hp == name+":443" {
			return udp.LocalAddr().String()
		}
		return hp
	}

	aHome := scHome(t, "a.test")
	a, err := Open(aHome, Options{Serve: true, Log: zerolog.Nop(), Client: transport.ClientOptions{RootCAs: ca.pool, Resolve: resolve}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	c := scNode(t, "c.test")
	scSwarm(t, a, b, c)
	if m := memberNamed(t, a, "team", name); m.Identity != "verified" {
		t.Fatalf("%s: %+v, want verified", name, m)
	}
	if m := memberNamed(t, a, "team", "c.test"); m.Identity != "claimed" {
		t.Fatalf("c.test: %+v, want claimed", m)
	}
	must[SendResult](t)(b.Send(context.Background(), SendArgs{Swarm: "team", Body: "from the owner", Wait: 10 * time.Second}))
	scWait(t, "a has it", func() bool { return has(t, a, "from the owner") })
	if s := bodies(t, a)["from the owner"].Sender; s.Identity != "verified" || !strings.Contains(Frame(bodies(t, a)["from the owner"]), "verified by its own HTTPS site") {
		t.Fatalf("sender %+v", s)
	}

	// An impostor claims the verified name with its own key.
	must[SwarmInfo](t)(a.Create(CreateArgs{Name: "second"}))
	imp := newAttacker(t, name)
	imp.serve(t)
	tok := must[InviteInfo](t)(a.Invite(InviteArgs{Swarm: "second"})).Token
	code, body := rawDo(t, a, "POST", "/swarm/v1/join", joinReq(t, tok, imp.member(), imp.key, imp.keyString()))
	if code == 200 || !strings.Contains(body, "held by another key") {
		t.Fatalf("impostor of a verified name: %d %s, want refused", code, body)
	}
	if len(stateOf(t, a, "second").Members) != 1 {
		t.Fatal("the impostor got in")
	}
}
