package membership_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/agent-swarm/agent-swarm/node/membership"
	"github.com/agent-swarm/agent-swarm/node/wire"
)

var (
	dave = newAgent("dave.test", 4)
	erin = newAgent("erin.test", 5)
)

// team is alice (master) with bob, carol and dave: three members besides
// the master, so a succession needs two statements.
func team(t testing.TB) *chain {
	c := genesis(t)
	for _, a := range []agent{bob, carol, dave} {
		c.must(alice, wire.Record{Type: wire.RecAdd, Member: a.member()})
	}
	return c
}

// statement signs a support statement by a for candidate at head h.
func statement(t testing.TB, c *chain, by agent, cand agent, h wire.Head) wire.Signed {
	t.Helper()
	s, err := wire.SignJSON(wire.PurposeSupport, by.key, by.priv, wire.Support{V: 1, Swarm: c.st.ID, Head: h, Candidate: cand.key, Time: 2})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func succession(cand agent, sts ...wire.Signed) wire.Record {
	return wire.Record{Type: wire.RecSuccession, Agent: cand.domain, Support: sts}
}

func TestSuccessionRules(t *testing.T) {
	type build func(c *chain) (agent, wire.Record)
	vote := func(c *chain, by, cand agent) wire.Signed { return statement(t, c, by, cand, c.st.Head) }
	tests := []struct {
		name  string
		build build
		want  string // "" = accepted
	}{
		{"a majority of the others", func(c *chain) (agent, wire.Record) {
			return bob, succession(bob, vote(c, bob, bob), vote(c, carol, bob))
		}, ""},
		{"every other member", func(c *chain) (agent, wire.Record) {
			return bob, succession(bob, vote(c, bob, bob), vote(c, carol, bob), vote(c, dave, bob))
		}, ""},
		{"under the quorum", func(c *chain) (agent, wire.Record) {
			return bob, succession(bob, vote(c, bob, bob))
		}, "a majority of the 3 members besides the master is 2"},
		{"the master's statement does not count", func(c *chain) (agent, wire.Record) {
			return bob, succession(bob, vote(c, bob, bob), vote(c, alice, bob))
		}, "master's own statement"},
		{"one statement twice", func(c *chain) (agent, wire.Record) {
			return bob, succession(bob, vote(c, carol, bob), vote(c, carol, bob))
		}, "twice"},
		{"an outsider's statement", func(c *chain) (agent, wire.Record) {
			return bob, succession(bob, vote(c, bob, bob), vote(c, erin, bob))
		}, "not a member"},
		{"statements for another candidate", func(c *chain) (agent, wire.Record) {
			return bob, succession(bob, vote(c, bob, bob), vote(c, carol, dave))
		}, "another candidate"},
		{"statements at an older head", func(c *chain) (agent, wire.Record) {
			old := c.st.Head
			c.must(alice, wire.Record{Type: wire.RecSettings, Settings: &wire.Settings{Name: "team"}})
			return bob, succession(bob, statement(t, c, bob, bob, old), statement(t, c, carol, bob, old))
		}, "not at the head"},
		{"signed by someone else than the candidate", func(c *chain) (agent, wire.Record) {
			return carol, succession(bob, vote(c, bob, bob), vote(c, carol, bob))
		}, "signed by its candidate"},
		{"the master cannot sign one", func(c *chain) (agent, wire.Record) {
			return alice, succession(alice, vote(c, bob, alice), vote(c, carol, alice))
		}, "master cannot sign"},
		{"a forged statement", func(c *chain) (agent, wire.Record) {
			forged := vote(c, carol, dave)
			forged.Payload = bytes.Replace(forged.Payload, []byte(dave.key), []byte(bob.key), 1)
			return bob, succession(bob, vote(c, bob, bob), forged)
		}, "bad signature"},
		{"a statement signed for another purpose", func(c *chain) (agent, wire.Record) {
			v := vote(c, carol, bob)
			return bob, succession(bob, vote(c, bob, bob), wire.Sign(wire.PurposeRecord, carol.key, carol.priv, v.Payload))
		}, "bad signature"},
		{"an outsider signs the record", func(c *chain) (agent, wire.Record) {
			return erin, succession(bob, vote(c, bob, bob), vote(c, carol, bob))
		}, "not signed by the master"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := team(t)
			by, rec := tc.build(c)
			before := c.st.Head
			err := c.apply(c.next(by, rec))
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v, want an error containing %q", err, tc.want)
				}
				if c.st.Head != before || c.st.Master != alice.domain {
					t.Fatal("a refused succession changed the state")
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if c.st.Master != bob.domain || !c.st.IsMember(alice.domain) {
				t.Fatalf("master %s, alice a member: %v; want bob master and alice a member", c.st.Master, c.st.IsMember(alice.domain))
			}
			if _, err := membership.Replay(c.recs); err != nil {
				t.Fatalf("the chain does not replay: %v", err)
			}
			// The old master signs on: its record is a fork, never applied.
			late := c.next(alice, wire.Record{Type: wire.RecRemove, Agent: bob.domain, Reason: wire.ReasonKick})
			if err := c.st.Clone().Apply(late); err == nil {
				t.Fatal("the old master's record after the succession was applied")
			}
			if f, ok := c.st.CheckFork(late); !ok || !strings.Contains(f.Reason, "members replaced") {
				t.Fatalf("the old master's record after the succession is no fork proof: %+v", f)
			}
			// The new master appends.
			c.must(bob, wire.Record{Type: wire.RecAdd, Member: erin.member()})
		})
	}
}

// A master alone, or with one member: the quorum is of the others.
func TestSuccessionSmallSwarms(t *testing.T) {
	c := genesis(t)
	if err := c.apply(c.next(bob, succession(bob, statement(t, c, bob, bob, c.st.Head)))); err == nil {
		t.Fatal("a stranger succeeded a master alone")
	}
	c.must(alice, wire.Record{Type: wire.RecAdd, Member: bob.member()})
	if q := c.st.Quorum(); q != 1 {
		t.Fatalf("quorum of one other member: %d", q)
	}
	if err := c.apply(c.next(bob, succession(bob, statement(t, c, bob, bob, c.st.Head)))); err != nil {
		t.Fatalf("the only other member could not succeed: %v", err)
	}
}

// Supersede: a succession at a head replaces what the old master signed
// after it on a node that followed the old master; a held succession is
// never replaced.
func TestSupersede(t *testing.T) {
	c := team(t)
	h := c.st.Head
	// The old master goes on, on the minority side: it kicks dave.
	minority := &chain{t: t, st: c.st.Clone(), recs: append([]wire.Signed(nil), c.recs...)}
	minority.must(alice, wire.Record{Type: wire.RecRemove, Agent: dave.domain, Reason: wire.ReasonKick})
	minority.must(alice, wire.Record{Type: wire.RecSettings, Settings: &wire.Settings{Name: "team"}})
	// The majority side elects dave at h.
	sup := c.next(dave, succession(dave, statement(t, c, carol, dave, h), statement(t, c, dave, dave, h)))
	if err := c.apply(sup); err != nil {
		t.Fatal(err)
	}
	if _, err := minority.st.Clone().ApplyAll([]wire.Signed{sup}); err == nil {
		t.Fatal("a succession at a held index applied as a plain record")
	}
	next, dropped, err := minority.st.Supersede(sup)
	if err != nil {
		t.Fatalf("the succession did not supersede the old master's records: %v", err)
	}
	if next.Master != dave.domain || next.Head != c.st.Head || !next.IsMember(dave.domain) || len(dropped) != 2 {
		t.Fatalf("after supersede: master %s head %d (want %d), %d dropped", next.Master, next.Head.Index, c.st.Head.Index, len(dropped))
	}
	if minority.st.Master != alice.domain || minority.st.Head.Index != h.Index+2 {
		t.Fatal("Supersede changed the state it was called on")
	}
	for _, r := range dropped {
		if _, ok := next.CheckFork(r); !ok {
			t.Fatal("a dropped record of the old master is no fork proof")
		}
		break // the first is where the chains part
	}
	// The other way round: the majority's chain holds the succession; the
	// old master's record at that index does not replace it.
	if _, _, err := c.st.Supersede(minority.recs[h.Index+1]); err == nil {
		t.Fatal("the old master's record superseded a succession")
	}
	if _, _, err := next.Supersede(sup); err == nil {
		t.Fatal("a held record superseded itself")
	}
}

func TestCheckStatement(t *testing.T) {
	c := team(t)
	good := statement(t, c, carol, bob, c.st.Head)
	if st, err := c.st.CheckStatement(good); err != nil || st.Signer.Domain != carol.domain || st.Support.Candidate != bob.key {
		t.Fatalf("a good statement: %+v %v", st, err)
	}
	for name, sg := range map[string]wire.Signed{
		"for the master":  statement(t, c, carol, alice, c.st.Head),
		"for an outsider": statement(t, c, carol, erin, c.st.Head),
		"by the master":   statement(t, c, alice, bob, c.st.Head),
		"by an outsider":  statement(t, c, erin, bob, c.st.Head),
	} {
		if _, err := c.st.CheckStatement(sg); err == nil {
			t.Errorf("a statement %s was accepted", name)
		}
	}
}

func TestDeputiesAndOldest(t *testing.T) {
	c := team(t)
	c.must(alice, wire.Record{Type: wire.RecSettings, Settings: &wire.Settings{Name: "team", Deputies: []string{erin.key, alice.key, dave.key, carol.key}}})
	ds := c.st.Deputies()
	if len(ds) != 2 || ds[0].Domain != dave.domain || ds[1].Domain != carol.domain {
		t.Fatalf("deputies %+v: want dave then carol (erin is no member, alice is the master)", ds)
	}
	if m, ok := c.st.Oldest(); !ok || m.Domain != bob.domain {
		t.Fatalf("oldest member besides the master: %+v", m)
	}
}
