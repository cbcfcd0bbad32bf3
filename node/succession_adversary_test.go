package node

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/node/membership"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/google/uuid"
)

// The adversarial suite, succession (issue #19): a member with its own
// key hand-builds succession records and support statements. None moves
// the master role; the honest nodes keep one statement per member per
// head.

// signStatement signs a statement with key under kid (kid may lie).
func signStatement(t *testing.T, key ed25519.PrivateKey, kid string, st *membership.State, cand string) wire.Signed {
	t.Helper()
	return must[wire.Signed](t)(wire.SignJSON(wire.PurposeSupport, kid, key,
		wire.Support{V: wire.Version, Swarm: st.ID, Head: st.Head, Candidate: cand, Time: time.Now().UnixMilli()}))
}

// attackerMsg is a system message from the attacker at st's head.
func attackerMsg(t *testing.T, m *attacker, st *membership.State, event string) wire.Message {
	now := time.Now()
	return wire.Message{V: wire.Version, ID: must[uuid.UUID](t)(uuid.NewV7()).String(), Swarm: st.ID, From: m.domain, To: wire.ToAll,
		Type: wire.TypeSystem, Event: event, Created: now.UnixMilli(), Expires: now.Add(time.Hour).UnixMilli(), Seq: 1, Head: st.Head}
}

func TestAdversaryForgedSuccession(t *testing.T) {
	v, b, c, d := scNode(t, "v.test"), scNode(t, "b.test"), scNode(t, "c.test"), scNode(t, "d.test")
	scSwarm(t, v, b, c, d)
	m := newAttacker(t, "m.test")
	m.serve(t)
	tok := must[InviteInfo](t)(v.Invite(InviteArgs{Swarm: "team"})).Token
	if code, body := rawDo(t, v, "POST", "/swarm/v1/join", joinReq(t, tok, m.member(), m.key, m.keyString())); code != 200 {
		t.Fatalf("the attacker's join was refused (%d %s); the test needs it in", code, body)
	}
	for _, n := range []*Node{b, c} {
		scWait(t, n.Domain()+" sees the attacker join", func() bool { return stateOf(t, n, "team").IsMember("m.test") })
	}
	st := stateOf(t, b, "team")
	if st.Quorum() != 3 {
		t.Fatalf("quorum of b, c, d, m: %d", st.Quorum())
	}
	// One real statement for the attacker: c, say, believed the master
	// silent. With the attacker's own that is two of the three needed.
	mm, _ := st.Member(m.keyString())
	if err := c.support(st, mm); err != nil {
		t.Fatal(err)
	}
	scWait(t, "b holds c's statement", func() bool { h, err := b.statement(st.ID, c.key()); return err == nil && h.Head == st.Head })
	cReal := must[*heldStatement](t)(b.statement(st.ID, c.key())).Signed
	own := signStatement(t, m.key, m.keyString(), st, m.keyString())
	sybil := newAttacker(t, "s.test")

	rec := func(cand string, sup ...wire.Signed) wire.Record {
		return wire.Record{V: wire.Version, Swarm: st.ID, Index: st.Head.Index + 1, Prev: st.Head.Hash, Type: wire.RecSuccession,
			Time: time.Now().UnixMilli(), Agent: cand, Support: sup}
	}
	cases := []struct {
		name string
		rec  wire.Record
		why  string
	}{
		{"its own statement only", rec("m.test", own), "majority"},
		{"under the quorum with a real statement", rec("m.test", own, cReal), "majority"},
		{"a real statement twice", rec("m.test", own, cReal, cReal), "twice"},
		{"statements forged under members' keys", rec("m.test", own, cReal, signStatement(t, m.key, b.key(), st, m.keyString())), "bad signature"},
		{"statements of keys that are no members", rec("m.test", own, cReal, signStatement(t, sybil.key, sybil.keyString(), st, m.keyString())), "not a member"},
		{"the master's statement forged", rec("m.test", own, cReal, signStatement(t, m.key, v.key(), st, m.keyString())), "master's own statement"},
		{"a record for another candidate", rec("d.test", own, cReal, signStatement(t, m.key, d.key(), st, d.key())), "signed by its candidate"},
	}
	for _, tc := range cases {
		sg := must[wire.Signed](t)(wire.SignJSON(wire.PurposeRecord, m.keyString(), m.key, tc.rec))
		msg := attackerMsg(t, m, st, wire.EventLog)
		msg.Records = []wire.Signed{sg}
		accepted(t, b, handEnv(t, m.key, st.ID, msg)) // the envelope is a member's; its record is checked after
		time.Sleep(100 * time.Millisecond)
		if got := stateOf(t, b, "team"); got.Master != "v.test" || got.Head != st.Head {
			t.Fatalf("%s: b follows master %s at head %d", tc.name, got.Master, got.Head.Index)
		}
		if _, err := st.Clone().ApplyAll([]wire.Signed{sg}); err == nil || !strings.Contains(err.Error(), tc.why) {
			t.Fatalf("%s: %v, want it refused for %q", tc.name, err, tc.why)
		}
	}

	// Statements over P2P: another member's statement in the attacker's
	// message is not kept, and a second candidate at one head is refused.
	forged := attackerMsg(t, m, st, wire.EventSupport)
	fs := signStatement(t, m.key, d.key(), st, m.keyString())
	forged.Support = &fs
	accepted(t, b, handEnv(t, m.key, st.ID, forged))
	first := attackerMsg(t, m, st, wire.EventSupport)
	first.Support = &own
	accepted(t, b, handEnv(t, m.key, st.ID, first))
	second := attackerMsg(t, m, st, wire.EventSupport)
	second.Seq = 2
	other := signStatement(t, m.key, m.keyString(), st, d.key())
	second.Support = &other
	accepted(t, b, handEnv(t, m.key, st.ID, second))
	time.Sleep(100 * time.Millisecond)
	if h, err := b.statement(st.ID, d.key()); err == nil {
		t.Fatalf("b kept a statement under d's key that d never signed: %+v", h)
	}
	if h, err := b.statement(st.ID, m.keyString()); err != nil || h.Candidate != m.keyString() {
		t.Fatalf("b's statement of the attacker: %+v %v; want its first, for itself", h, err)
	}
	si := must[[]SuccessionInfo](t)(b.Succession("team"))
	if len(si[0].Statements) != 2 || si[0].Quorum != 3 {
		t.Fatalf("statements gathered: %+v; want c's and the attacker's of 3", si[0])
	}
	for _, s := range si[0].Statements {
		if s.Candidate != "m.test" || strings.Contains(s.From, "d.test") {
			t.Fatalf("statement shown: %+v", s)
		}
	}
}

// A succession record at an index the node holds makes it replay the log
// to that index, verifying every record again: a member's failed one
// costs that once a minute, not once a message.
func TestAdversarySupersedeReplayBounded(t *testing.T) {
	v, b := scNode(t, "v.test"), scNode(t, "b.test")
	scSwarm(t, v, b)
	m := newAttacker(t, "m.test")
	m.serve(t)
	tok := must[InviteInfo](t)(v.Invite(InviteArgs{Swarm: "team"})).Token
	if code, body := rawDo(t, v, "POST", "/swarm/v1/join", joinReq(t, tok, m.member(), m.key, m.keyString())); code != 200 {
		t.Fatalf("the attacker's join was refused (%d %s)", code, body)
	}
	scWait(t, "b sees the attacker join", func() bool { return stateOf(t, b, "team").IsMember("m.test") })
	st := stateOf(t, b, "team")
	// A succession at index 1 (held: b's log is longer), with only the
	// attacker's own statement: refused after a replay.
	base := must[*membership.State](t)(membership.Replay(st.Records[:1]))
	own := signStatement(t, m.key, m.keyString(), base, m.keyString())
	rec := wire.Record{V: wire.Version, Swarm: st.ID, Index: 1, Prev: base.Head.Hash, Type: wire.RecSuccession,
		Time: time.Now().UnixMilli(), Agent: "m.test", Support: []wire.Signed{own}}
	sg := must[wire.Signed](t)(wire.SignJSON(wire.PurposeRecord, m.keyString(), m.key, rec))
	failedAt := func() (time.Time, bool) {
		b.mu.Lock()
		defer b.mu.Unlock()
		at, ok := b.supersedeFailed[st.ID+"/"+m.keyString()]
		return at, ok
	}
	push := func(seq uint64) {
		msg := attackerMsg(t, m, st, wire.EventLog)
		msg.Seq, msg.Records = seq, []wire.Signed{sg}
		accepted(t, b, handEnv(t, m.key, st.ID, msg))
	}
	push(1)
	scWait(t, "b refused the attacker's succession", func() bool { _, ok := failedAt(); return ok })
	first, _ := failedAt()
	for i := uint64(2); i < 6; i++ {
		push(i)
	}
	time.Sleep(200 * time.Millisecond)
	if again, _ := failedAt(); !again.Equal(first) {
		t.Fatalf("the attacker's succession was checked again within the minute (%v, then %v)", first, again)
	}
	if got := stateOf(t, b, "team"); got.Master != "v.test" || got.Head != st.Head {
		t.Fatalf("b follows master %s at head %d", got.Master, got.Head.Index)
	}
}
