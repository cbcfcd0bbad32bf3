package node

import (
	"testing"
	"time"
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
		if c.dueNext > 0 && b.due("k", t0.Add(c.dueNext-time.Second)) {
			t.Errorf("%s: pinged %s after the last miss, before %s", c.name, c.dueNext-time.Second, c.dueNext)
		}
		if !b.due("k", t0.Add(c.dueNext)) {
			t.Errorf("%s: not pinged %s after the last miss", c.name, c.dueNext)
		}
		if !b.due("other", t0) {
			t.Errorf("%s: another peer's misses count for every peer", c.name)
		}
	}
}
