package github

import (
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/wire"
)

// Only the master's key takes a task over: a member's notification that
// names the master (From) but is signed by the member's own key is not
// the master's, and leaves the holder's lease as it was.
func TestStealNeedsTheMastersKey(t *testing.T) {
	a, b := scOpen(t, scHome(t, "a.test")), scOpen(t, scHome(t, "b.test"))
	scSwarm(t, a, b)
	must[node.SwarmInfo](t)(a.LinkRepo("team", "acme/board"))
	e := ghOf(t, a)
	s := must[node.SwarmInfo](t)(a.LiveSwarm("team"))
	now := time.Now()
	ev := func(from, key, action string, at time.Time) (node.Event, *wire.Message, wire.Ref) {
		m := &wire.Message{From: from, Created: at.UnixMilli(), Expires: at.Add(time.Hour).UnixMilli()}
		r := wire.Ref{Kind: "issue", Repo: "acme/board", Number: 7, Action: action}
		return node.Event{Kind: node.EventMessage, Swarm: s.ID, Message: m, SenderKey: key}, m, r
	}
	holders := func() []string {
		var out []string
		for _, l := range must[[]Lease](t)(e.leasesOn(s.ID, "acme/board", 7)) {
			out = append(out, l.Holder+"/"+node.FingerprintOf(l.Key))
		}
		return out
	}
	must0(t, e.applyLease(ev("b.test", b.Key(), leaseClaim, now)))
	before := holders()
	if len(before) != 1 {
		t.Fatalf("b's claim: leases %v", before)
	}
	// b signs a take-over naming the master as its sender.
	must0(t, e.applyLease(ev("a.test", b.Key(), leaseSteal, now.Add(time.Second))))
	if got := holders(); len(got) != 1 || got[0] != before[0] {
		t.Fatalf("a take-over under the master's name but b's key changed the leases: %v -> %v", before, got)
	}
	// The master's own key does take it over.
	must0(t, e.applyLease(ev("a.test", a.Key(), leaseSteal, now.Add(2*time.Second))))
	if got := holders(); len(got) != 1 || got[0] != "a.test/"+node.FingerprintOf(a.Key()) {
		t.Fatalf("the master's take-over: %v", got)
	}
}

// A lease on a repository the swarm does not link is not kept: a member
// cannot make the node hold leases on any repository it names.
func TestLeaseOnAnUnlinkedRepoIsNotKept(t *testing.T) {
	a, b := scOpen(t, scHome(t, "a.test")), scOpen(t, scHome(t, "b.test"))
	scSwarm(t, a, b)
	must[node.SwarmInfo](t)(a.LinkRepo("team", "acme/board"))
	e := ghOf(t, a)
	s := must[node.SwarmInfo](t)(a.LiveSwarm("team"))
	now := time.Now()
	for _, repo := range []string{"acme/board", "other/repo"} {
		m := &wire.Message{From: "b.test", Created: now.UnixMilli(), Expires: now.Add(time.Hour).UnixMilli()}
		r := wire.Ref{Kind: "issue", Repo: repo, Number: 7, Action: leaseClaim}
		must0(t, e.applyLease(node.Event{Kind: node.EventMessage, Swarm: s.ID, Message: m, SenderKey: b.Key()}, m, r))
	}
	if got := must[[]Lease](t)(e.leasesOn(s.ID, "acme/board", 7)); len(got) != 1 {
		t.Fatalf("the claim on the linked repository: leases %v", got)
	}
	if got := must[[]Lease](t)(e.leasesOn(s.ID, "other/repo", 7)); len(got) != 0 {
		t.Fatalf("a claim on a repository the swarm does not link was kept: %v", got)
	}
}

// A lease's holder is its key: a lease whose key is no member is gone,
// though a member goes by the name it was claimed under (the master
// lets it lapse), and a member's lease is not gone while it is online.
func TestLeaseHolderIsItsKey(t *testing.T) {
	a, b := scOpen(t, scHome(t, "a.test")), scOpen(t, scHome(t, "b.test"))
	scSwarm(t, a, b)
	e := ghOf(t, a)
	members := must[[]node.MemberInfo](t)(a.Members("team"))
	stranger := scOpen(t, scHome(t, "b.test")) // a namesake of b, not a member
	if _, gone := e.gone(Lease{Key: stranger.Key(), Holder: "b.test"}, members); !gone {
		t.Fatal("a lease held by a key that is no member is not gone while a member goes by its name")
	}
	if _, gone := e.gone(Lease{Key: a.Key(), Holder: "a.test"}, members); gone {
		t.Fatal("the master's own lease is gone")
	}
}
