package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/node/wire"
)

// TestSilentPeersPingedLess: a peer gets a heartbeat every period until
// it has missed three in a row; then it waits 2, 4, 8 and at most 16
// periods between heartbeats. An answer, or any verified request from it,
// makes it live again: pinged at the next beat.
func TestSilentPeersPingedLess(t *testing.T) {
	hb := 15 * time.Second
	t0 := time.Unix(1_000_000, 0)
	for _, c := range []struct {
		name    string
		misses  int
		revive  string // "", "answer" or "heard"
		dueNext time.Duration
	}{
		{name: "one miss", misses: 1, dueNext: 0},
		{name: "two misses", misses: 2, dueNext: 0},
		{name: "three misses: offline", misses: 3, dueNext: 2 * hb},
		{name: "four", misses: 4, dueNext: 4 * hb},
		{name: "five", misses: 5, dueNext: 8 * hb},
		{name: "six", misses: 6, dueNext: 16 * hb},
		{name: "many: capped", misses: 20, dueNext: 16 * hb},
		{name: "answered again", misses: 9, revive: "answer", dueNext: 0},
		{name: "heard from", misses: 9, revive: "heard", dueNext: 0},
	} {
		b := newPresenceBook()
		for i := 0; i < c.misses; i++ {
			b.beaten("k", false, t0, hb)
		}
		switch c.revive {
		case "answer":
			b.beaten("k", true, t0, hb)
		case "heard":
			b.from("k", "127.0.0.1")
		}
		if c.dueNext > 0 && b.due("k", t0.Add(c.dueNext-time.Second), hb) {
			t.Errorf("%s: pinged %s after the last miss, before %s", c.name, c.dueNext-time.Second, c.dueNext)
		}
		if !b.due("k", t0.Add(c.dueNext), hb) {
			t.Errorf("%s: not pinged %s after the last miss", c.name, c.dueNext)
		}
		if !b.due("other", t0, hb) {
			t.Errorf("%s: another peer's misses count for every peer", c.name)
		}
	}
}

// TestPingedPeerSkipped: a peer whose heartbeat reached this node in the
// last period gets none from it (that exchange told both sides); an
// answer to this node's own ping does not count.
func TestPingedPeerSkipped(t *testing.T) {
	hb := 15 * time.Second
	t0 := time.Unix(1_000_000, 0)
	b := newPresenceBook()
	p := &wire.Presence{State: "active"}
	b.put("k", p, 0, t0)                // k pinged this node
	b.put("j", p, time.Millisecond, t0) // j answered this node's ping
	for _, c := range []struct {
		key   string
		after time.Duration
		due   bool
	}{
		{"k", 0, false}, {"k", hb - time.Second, false}, {"k", hb, true},
		{"j", 0, true}, {"other", 0, true},
	} {
		if got := b.due(c.key, t0.Add(c.after), hb); got != c.due {
			t.Errorf("%s after %s: due %v, want %v", c.key, c.after, got, c.due)
		}
	}
}

// TestSilentPeerRetriedWhenHeard: a sender backing off from an offline
// peer (here 10-20 s between attempts) delivers as soon as the peer is
// heard from again, not at the end of its backoff.
func TestSilentPeerRetriedWhenHeard(t *testing.T) {
	aHome, bHome := scHome(t, "a.test"), scHome(t, "b.test")
	cfg, err := LoadConfig(aHome)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Heartbeat, cfg.RetryMin, cfg.RetryMax = Duration(time.Second), Duration(20*time.Second), Duration(20*time.Second)
	if err := SaveConfig(aHome, cfg); err != nil {
		t.Fatal(err)
	}
	a, b := scOpen(t, aHome), scOpen(t, bHome)
	scSwarm(t, a, b)
	b.Close()
	res := must[SendResult](t)(a.Send(context.Background(), SendArgs{Swarm: "team", Body: "back soon?"}))
	// The first attempt fails and the sender sleeps 10-20 s; a's
	// heartbeats to b go unanswered.
	scWait(t, "the first attempt fails", func() bool {
		ds := must[[]Delivery](t)(a.Deliveries(res.ID))
		return ds[0].Status == Pending && ds[0].Reason != ""
	})
	time.Sleep(500 * time.Millisecond)
	back := time.Now()
	b2 := scOpen(t, bHome)
	scWait(t, "b receives after coming back", func() bool { return has(t, b2, "back soon?") })
	if d := time.Since(back); d > 6*time.Second {
		t.Fatalf("delivered %s after the peer came back: the sender waited out its backoff", d)
	}
}

// One member's flood of pings fills only its own nonce book: another
// member's presence is still taken, and the flooder's again once its
// nonces leave the window.
func TestPresenceNoncesBoundedPerKey(t *testing.T) {
	b := newPresenceBook()
	now := time.Unix(1_700_000_000, 0)
	keep := 10 * time.Minute
	for i := 0; i < maxNonces; i++ {
		if !b.fresh("flooder", fmt.Sprint(i), now, keep) {
			t.Fatalf("nonce %d refused before the book was full", i)
		}
	}
	if b.fresh("flooder", "one more", now, keep) {
		t.Fatal("a full book took another live nonce")
	}
	if !b.fresh("other", "n1", now, keep) {
		t.Fatal("another member's presence refused because one member filled its book")
	}
	if b.fresh("other", "n1", now, keep) {
		t.Fatal("a replayed nonce was taken")
	}
	if !b.fresh("flooder", "later", now.Add(keep+time.Second), keep) {
		t.Fatal("the flooder's book stayed full after its nonces expired")
	}
}
