package membership_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"

	"github.com/agent-swarm/agent-swarm/node/identity"
	"github.com/agent-swarm/agent-swarm/node/membership"
	"github.com/agent-swarm/agent-swarm/node/wire"
)

type agent struct {
	domain string
	priv   ed25519.PrivateKey
	key    string
}

func newAgent(domain string, seed byte) agent {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
	return agent{domain, priv, identity.EncodeKey(priv.Public().(ed25519.PublicKey))}
}

func (a agent) member() *wire.Member {
	return &wire.Member{Domain: a.domain, Key: a.key, Addr: "127.0.0.1:7443"}
}

var (
	alice = newAgent("alice.test", 1)
	bob   = newAgent("bob.test", 2)
	carol = newAgent("carol.test", 3)
)

func sign(t testing.TB, by agent, r wire.Record) wire.Signed {
	t.Helper()
	r.V = 1
	s, err := wire.SignJSON(wire.PurposeRecord, by.key, by.priv, r)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// chain builds a log record by record, each extending the last.
type chain struct {
	t    testing.TB
	st   *membership.State
	recs []wire.Signed
}

func genesis(t testing.TB) *chain {
	g := sign(t, alice, wire.Record{Type: wire.RecCreate, Time: 1, Member: alice.member(), Settings: &wire.Settings{Name: "team"}, Nonce: "n"})
	st, err := membership.New(g)
	if err != nil {
		t.Fatal(err)
	}
	return &chain{t: t, st: st, recs: []wire.Signed{g}}
}

// next signs r as by, extending the head.
func (c *chain) next(by agent, r wire.Record) wire.Signed {
	r.Swarm, r.Index, r.Prev, r.Time = c.st.ID, c.st.Head.Index+1, c.st.Head.Hash, 2
	return sign(c.t, by, r)
}

func (c *chain) apply(s wire.Signed) error {
	err := c.st.Apply(s)
	if err == nil {
		c.recs = append(c.recs, s)
	}
	return err
}

func (c *chain) must(by agent, r wire.Record) {
	c.t.Helper()
	if err := c.apply(c.next(by, r)); err != nil {
		c.t.Fatal(err)
	}
}

func TestRules(t *testing.T) {
	add := func(a agent, at uint64) wire.Record {
		return wire.Record{Type: wire.RecAdd, Member: a.member(), Invite: "01a210cc-e7e9-7190-aed8-0edc1875a521", InviteAt: at}
	}
	tests := []struct {
		name  string
		setup func(c *chain)
		by    agent
		rec   wire.Record
		want  string // "" = accepted
	}{
		{"master adds a member", nil, alice, add(bob, 0), ""},
		{"a member cannot append", func(c *chain) { c.must(alice, add(bob, 0)) }, bob, add(carol, 1), "not signed by the master"},
		{"an outsider cannot append", nil, carol, add(carol, 0), "not signed by the master"},
		{"no second create", nil, alice, wire.Record{Type: wire.RecCreate, Member: alice.member(), Settings: &wire.Settings{Name: "x"}}, "create"},
		{"no duplicate domain", func(c *chain) { c.must(alice, add(bob, 0)) }, alice, add(bob, 1), "already a member"},
		{"no duplicate key under another name", func(c *chain) { c.must(alice, add(bob, 0)) }, alice,
			wire.Record{Type: wire.RecAdd, Member: &wire.Member{Domain: "bob2.test", Key: bob.key, Addr: "127.0.0.1:1"}}, "key already belongs"},
		{"kick a member", func(c *chain) { c.must(alice, add(bob, 0)) }, alice, wire.Record{Type: wire.RecRemove, Agent: "bob.test", Reason: "kick"}, ""},
		{"the master cannot be removed", nil, alice, wire.Record{Type: wire.RecRemove, Agent: "alice.test", Reason: "kick"}, "master cannot be removed"},
		{"remove a stranger", nil, alice, wire.Record{Type: wire.RecRemove, Agent: "bob.test", Reason: "kick"}, "not a member"},
		{"an invite from before the kick cannot readmit", func(c *chain) {
			c.must(alice, add(bob, 0))                                                          // index 1
			c.must(alice, wire.Record{Type: wire.RecRemove, Agent: "bob.test", Reason: "kick"}) // index 2
		}, alice, add(bob, 1), "kicked"},
		{"an invite from after the kick readmits", func(c *chain) {
			c.must(alice, add(bob, 0))
			c.must(alice, wire.Record{Type: wire.RecRemove, Agent: "bob.test", Reason: "kick"})
		}, alice, add(bob, 2), ""},
		{"a member who left may rejoin with any invite", func(c *chain) {
			c.must(alice, add(bob, 0))
			c.must(alice, wire.Record{Type: wire.RecRemove, Agent: "bob.test", Reason: "leave"})
		}, alice, add(bob, 0), ""},
		{"transfer to a member", func(c *chain) { c.must(alice, add(bob, 0)) }, alice, wire.Record{Type: wire.RecTransfer, Agent: "bob.test"}, ""},
		{"transfer to a stranger", nil, alice, wire.Record{Type: wire.RecTransfer, Agent: "bob.test"}, "not a member"},
		{"after a transfer the old master cannot append", func(c *chain) {
			c.must(alice, add(bob, 0))
			c.must(alice, wire.Record{Type: wire.RecTransfer, Agent: "bob.test"})
		}, alice, add(carol, 2), "not signed by the master"},
		{"after a transfer the new master appends", func(c *chain) {
			c.must(alice, add(bob, 0))
			c.must(alice, wire.Record{Type: wire.RecTransfer, Agent: "bob.test"})
		}, bob, add(carol, 2), ""},
		{"settings", nil, alice, wire.Record{Type: wire.RecSettings, Settings: &wire.Settings{Name: "renamed", Repo: "o/r"}}, ""},
		{"bad settings", nil, alice, wire.Record{Type: wire.RecSettings, Settings: &wire.Settings{Name: "a/b"}}, "slashes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := genesis(t)
			if tc.setup != nil {
				tc.setup(c)
			}
			before := c.st.Head
			err := c.apply(c.next(tc.by, tc.rec))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				// Every node replaying the log reaches the same state.
				again, err := membership.Replay(c.recs)
				if err != nil || again.Head != c.st.Head || again.Master != c.st.Master || len(again.Members) != len(c.st.Members) {
					t.Fatalf("replay differs: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if c.st.Head != before {
				t.Fatal("a rejected record moved the head")
			}
		})
	}
}

func TestChainIntegrity(t *testing.T) {
	c := genesis(t)
	c.must(alice, wire.Record{Type: wire.RecAdd, Member: bob.member()})
	good := c.next(alice, wire.Record{Type: wire.RecAdd, Member: carol.member()})

	tampered := good
	tampered.Payload = bytes.Replace(good.Payload, []byte("carol"), []byte("carl_"), 1)
	gap := c.next(alice, wire.Record{Type: wire.RecAdd, Member: carol.member()})
	var r wire.Record
	json.Unmarshal(gap.Payload, &r)
	r.Index++
	gap = sign(t, alice, r)
	wrongPrev := c.next(alice, wire.Record{Type: wire.RecAdd, Member: carol.member()})
	json.Unmarshal(wrongPrev.Payload, &r)
	r.Prev = strings.Repeat("0", 64)
	wrongPrev = sign(t, alice, r)
	otherSwarm := c.next(alice, wire.Record{Type: wire.RecAdd, Member: carol.member()})
	json.Unmarshal(otherSwarm.Payload, &r)
	r.Swarm = "aaaaaaaaaaaaaaaaaaaaaaaa"
	otherSwarm = sign(t, alice, r)
	wrongPurpose := wire.Sign(wire.PurposeEnvelope, alice.key, alice.priv, good.Payload)

	for name, s := range map[string]wire.Signed{"tampered": tampered, "gap": gap, "wrong prev": wrongPrev, "other swarm": otherSwarm, "wrong purpose": wrongPurpose} {
		if err := c.st.Clone().Apply(s); err == nil {
			t.Errorf("%s record accepted", name)
		}
	}
	if err := c.apply(good); err != nil {
		t.Fatal(err)
	}
	// Applying the same records again is a no-op; a different record at a
	// held index (a fork) fails.
	if n, err := c.st.ApplyAll(c.recs); n != 0 || err != nil {
		t.Fatalf("re-apply: %d new, %v", n, err)
	}
	c2 := genesis(t)
	c2.must(alice, wire.Record{Type: wire.RecAdd, Member: carol.member()})
	if _, err := c.st.ApplyAll(c2.recs); err == nil {
		t.Fatal("a fork was accepted")
	}
	// The swarm ID is derived from the signed genesis record.
	if c.st.ID != wire.SwarmID(c.recs[0]) || len(c.st.ID) != 24 {
		t.Fatalf("swarm id %q", c.st.ID)
	}
	if _, err := membership.New(tampered); err == nil {
		t.Fatal("a non-genesis record made a swarm")
	}
}

func FuzzMembershipApply(f *testing.F) {
	c := genesis(f)
	f.Add(c.next(alice, wire.Record{Type: wire.RecAdd, Member: bob.member()}).Payload, []byte{})
	f.Add([]byte(`{"v":1,"type":"remove","agent":"alice.test","reason":"kick"}`), []byte("x"))
	f.Fuzz(func(t *testing.T, payload, sigTweak []byte) {
		c := genesis(t)
		s := wire.Sign(wire.PurposeRecord, alice.key, alice.priv, payload)
		if len(sigTweak) > 0 {
			s.Sig[int(sigTweak[0])%len(s.Sig)] ^= 1
		}
		head, members := c.st.Head, len(c.st.Members)
		if err := c.st.Apply(s); err != nil {
			if c.st.Head != head || len(c.st.Members) != members {
				t.Fatal("a failed Apply changed the state")
			}
			return
		}
		if len(sigTweak) > 0 {
			t.Fatal("a record with a flipped signature bit was applied")
		}
		if _, err := membership.Replay(append(c.recs, s)); err != nil {
			t.Fatalf("applied record does not replay: %v", err)
		}
	})
}
