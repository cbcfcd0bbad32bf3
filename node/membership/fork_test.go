package membership_test

import (
	"testing"

	"github.com/agent-swarm/agent-swarm/node/membership"
	"github.com/agent-swarm/agent-swarm/node/wire"
)

// forkChain: alice creates, adds bob, hands the role to bob (index 2), and
// bob renames the swarm (index 3).
func forkChain(t testing.TB) (*chain, wire.Signed) {
	c := genesis(t)
	c.must(alice, wire.Record{Type: wire.RecAdd, Member: bob.member()})
	before := c.st.Clone()
	c.must(alice, wire.Record{Type: wire.RecTransfer, Agent: "bob.test"})
	c.must(bob, wire.Record{Type: wire.RecSettings, Settings: &wire.Settings{Name: "renamed"}})
	// alice's second record at the transfer's index
	alt := sign(t, alice, wire.Record{Swarm: before.ID, Index: before.Head.Index + 1, Prev: before.Head.Hash, Time: 3,
		Type: wire.RecSettings, Settings: &wire.Settings{Name: "hijacked"}})
	return c, alt
}

func TestCheckFork(t *testing.T) {
	c, alt := forkChain(t)
	head := c.st.Head
	cases := []struct {
		name   string
		rec    wire.Signed
		fork   bool
		reason string
	}{
		{"a record the chain holds", c.recs[2], false, ""},
		{"the master signed two records at one index", alt, true, "two different records at index 2"},
		{"a former master past its term", sign(t, alice, wire.Record{Swarm: c.st.ID, Index: head.Index + 1, Prev: head.Hash, Time: 4,
			Type: wire.RecSettings, Settings: &wire.Settings{Name: "late"}}), true, "former master signed record 4"},
		{"the current master past the head is a gap", sign(t, bob, wire.Record{Swarm: c.st.ID, Index: head.Index + 2, Prev: head.Hash, Time: 4,
			Type: wire.RecSettings, Settings: &wire.Settings{Name: "gap"}}), false, ""},
		{"the current master signing before its term", sign(t, bob, wire.Record{Swarm: c.st.ID, Index: 1, Prev: wire.RecordHash(c.recs[0]), Time: 4,
			Type: wire.RecSettings, Settings: &wire.Settings{Name: "x"}}), true, "outside its term"},
		{"a key that never held the role", sign(t, newAgent("carol.test", 3), wire.Record{Swarm: c.st.ID, Index: 2, Prev: wire.RecordHash(c.recs[1]), Time: 4,
			Type: wire.RecSettings, Settings: &wire.Settings{Name: "x"}}), false, ""},
		{"a forged signature proves nothing", func() wire.Signed { s := alt; s.Sig = append([]byte(nil), s.Sig...); s.Sig[0] ^= 1; return s }(), false, ""},
		{"another swarm's record proves nothing", sign(t, alice, wire.Record{Swarm: "aaaaaaaaaaaaaaaaaaaaaaaa", Index: 2, Prev: head.Hash, Time: 4,
			Type: wire.RecSettings, Settings: &wire.Settings{Name: "x"}}), false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, ok := c.st.CheckFork(tc.rec)
			if ok != tc.fork {
				t.Fatalf("fork %v (%+v), want %v", ok, f, tc.fork)
			}
			if ok && !contains(f.Reason, tc.reason) {
				t.Fatalf("reason %q, want %q", f.Reason, tc.reason)
			}
		})
	}
	// The state never moves.
	if c.st.Head != head || c.st.Settings.Name != "renamed" {
		t.Fatal("CheckFork changed the state")
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// FuzzCheckFork: any record, signed by a key that held the role or not,
// never panics, never changes the state, and is called a fork only when it
// verifies under a key that held the role and conflicts with the chain.
func FuzzCheckFork(f *testing.F) {
	_, alt := forkChain(f)
	f.Add(alt.Payload, false)
	f.Add([]byte(`{"v":1,"swarm":"x","index":9,"type":"settings"}`), true)
	f.Fuzz(func(t *testing.T, payload []byte, byBob bool) {
		c, _ := forkChain(t)
		by := alice
		if byBob {
			by = bob
		}
		s := wire.Sign(wire.PurposeRecord, by.key, by.priv, payload)
		head := c.st.Head
		fk, ok := c.st.CheckFork(s)
		if c.st.Head != head {
			t.Fatal("CheckFork changed the state")
		}
		if ok {
			if _, err := wire.ParseRecord(fk.Other.Payload); err != nil {
				t.Fatalf("a proof whose record does not parse: %v", err)
			}
			for _, r := range c.recs {
				if wire.RecordHash(r) == wire.RecordHash(s) {
					t.Fatal("a record of the chain called a fork")
				}
			}
		}
		_ = membership.ErrNotNext
	})
}
