package node

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/agent-swarm/agent-swarm/store"
	"github.com/rs/zerolog"
)

// quotaHome is a home whose node takes at most sender bytes unread per
// sender and swarm bytes per swarm.
func quotaHome(t *testing.T, domain string, sender, swarm int64) string {
	t.Helper()
	home := scHome(t, domain)
	cfg := must[*Config](t)(LoadConfig(home))
	cfg.QuotaSender, cfg.QuotaSwarm = sender, swarm
	if err := SaveConfig(home, cfg); err != nil {
		t.Fatal(err)
	}
	return home
}

// flood posts 60 KiB messages from `from` to `to`, four per batch, until
// one is refused (at most max). It returns the accepted IDs and the
// refusal.
func flood(t *testing.T, from, to *Node, max int) ([]string, wire.Result) {
	t.Helper()
	big := strings.Repeat("x", 60<<10)
	var ids []string
	for len(ids) < max {
		envs := make([]wire.Signed, 4)
		for i := range envs {
			envs[i] = envelopeFrom(t, from, big)
		}
		for _, r := range post(t, to, envs...) {
			if r.Status != wire.Accepted {
				return ids, r
			}
			ids = append(ids, r.ID)
		}
	}
	t.Fatalf("%d messages of 60 KiB accepted: no quota", len(ids))
	return nil, wire.Result{}
}

func accepted(t *testing.T, to *Node, env wire.Signed) wire.Result {
	t.Helper()
	r := post(t, to, env)[0]
	if r.Status != wire.Accepted {
		t.Fatalf("message refused: %+v", r)
	}
	return r
}

// TestQuotaStopsAFlood: a member's flood stops at its quota of unread
// bytes while another member's messages still arrive; the victim can
// read, mark read, delete and send, and what it frees lets the flooder in
// again (DESIGN §5).
func TestQuotaStopsAFlood(t *testing.T) {
	a := scOpen(t, quotaHome(t, "a.test", 1<<20, 4<<20))
	b, c := scNode(t, "b.test"), scNode(t, "c.test")
	scSwarm(t, a, b, c)

	ids, refused := flood(t, b, a, 64)
	// 1 MiB at 60 KiB and a little each: 16 fit.
	if len(ids) != 16 || refused.Status != wire.Rejected || !refused.Retry || !strings.Contains(refused.Reason, "over quota") {
		t.Fatalf("after %d accepted: %+v", len(ids), refused)
	}
	accepted(t, a, envelopeFrom(t, c, "c still gets through"))

	// The same refusal reaches a real sender's delivery status, pending.
	res := must[SendResult](t)(b.Send(context.Background(), SendArgs{Swarm: "team", To: "a.test", Body: strings.Repeat("y", 60<<10)}))
	scWait(t, "b's delivery names the quota", func() bool {
		d := must[[]Delivery](t)(b.Deliveries(res.ID))
		return len(d) == 1 && d[0].Status == Pending && strings.Contains(d[0].Reason, "over quota")
	})

	// The victim reads, marks read, deletes and sends.
	if got := len(fromPeers(must[[]InboxMessage](t)(a.Inbox(InboxArgs{Unread: true, Limit: 1000})))); got != 17 {
		t.Fatalf("a has %d unread, want 17", got)
	}
	if c := must[int](t)(a.Read(ids[:2], false, "")); c != 2 {
		t.Fatalf("marked %d", c)
	}
	// Reading two frees room for the queued send; the outbox retries it.
	scWait(t, "b's queued message is delivered once a read two", func() bool {
		return must[[]Delivery](t)(b.Deliveries(res.ID))[0].Status == Delivered
	})
	_, refused = flood(t, b, a, 8)
	if !strings.Contains(refused.Reason, "over quota") {
		t.Fatalf("%+v", refused)
	}
	if c := must[int](t)(a.Delete(DeleteArgs{IDs: ids[2:6]})); c != 4 {
		t.Fatalf("deleted %d, want 4", c)
	}
	for _, id := range ids[2:6] {
		if _, err := a.Read([]string{id}, false, ""); err == nil || !strings.Contains(err.Error(), "no message") {
			t.Fatalf("a deleted message is still there: %v", err)
		}
	}
	accepted(t, a, envelopeFrom(t, b, strings.Repeat("z", 60<<10)))
	send := must[SendResult](t)(a.Send(context.Background(), SendArgs{Swarm: "team", Body: "a still sends", Wait: 10 * time.Second}))
	for _, d := range send.Deliveries {
		if d.Status != Delivered {
			t.Fatalf("a's send to %s: %s %s", d.Peer, d.Status, d.Reason)
		}
	}

	// Deleting read messages and everything else empties the counters.
	if c := must[int](t)(a.Delete(DeleteArgs{All: true, ReadOnly: true})); c != 2 {
		t.Fatalf("deleted %d read, want 2", c)
	}
	must[int](t)(a.Delete(DeleteArgs{All: true}))
	if got := len(must[[]InboxMessage](t)(a.Inbox(InboxArgs{IncludeMuted: true, Limit: 1000}))); got != 0 {
		t.Fatalf("%d left after delete --all", got)
	}
	a.st.View(func(tx *store.Tx) error {
		return tx.Scan([]byte("qb/"), nil, func(k []byte, dec func(any) error) (bool, error) {
			var v int64
			dec(&v)
			t.Errorf("counter %s is %d after the inbox emptied", k, v)
			return true, nil
		})
	})
	for _, bad := range []DeleteArgs{{}, {IDs: []string{"x"}, All: true}, {IDs: []string{"not an id"}}, {IDs: ids[:1], Swarm: "team"}} {
		if _, err := a.Delete(bad); !IsUser(err) {
			t.Errorf("Delete(%+v): %v, want a user error", bad, err)
		}
	}
}

// TestReserveKeepsTheEssentials: with the store below its free-space
// reserve, peers' messages get a retryable refusal while the user can
// still read, mark read, delete and send.
func TestReserveKeepsTheEssentials(t *testing.T) {
	aHome := scHome(t, "a.test")
	a, b := scOpen(t, aHome), scNode(t, "b.test")
	scSwarm(t, a, b)
	first := accepted(t, a, envelopeFrom(t, b, "before the disk filled"))
	second := accepted(t, a, envelopeFrom(t, b, "second"))
	a.Close()
	// A reserve no disk has: every ordinary write is refused.
	a, err := Open(aHome, Options{Serve: true, Log: zerolog.Nop(), Store: store.Options{MinFree: 1 << 60}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })

	r := post(t, a, envelopeFrom(t, b, "no room"))[0]
	if r.Status != wire.Rejected || !r.Retry || !strings.Contains(r.Reason, "low on disk space") {
		t.Fatalf("a peer message below the reserve: %+v", r)
	}
	if got := len(fromPeers(must[[]InboxMessage](t)(a.Inbox(InboxArgs{})))); got != 2 {
		t.Fatalf("inbox holds %d, want 2", got)
	}
	must[int](t)(a.Read([]string{first.ID}, false, ""))
	if c := must[int](t)(a.Delete(DeleteArgs{IDs: []string{second.ID}})); c != 1 {
		t.Fatalf("deleted %d", c)
	}
	msgs := fromPeers(must[[]InboxMessage](t)(a.Inbox(InboxArgs{})))
	if len(msgs) != 1 || !msgs[0].Read {
		t.Fatalf("after read and delete: %+v", msgs)
	}
	send := must[SendResult](t)(a.Send(context.Background(), SendArgs{Swarm: "team", Body: "sent near a full disk", Wait: 10 * time.Second}))
	if d := send.Deliveries; len(d) != 1 || d[0].Status != Delivered {
		t.Fatalf("own send below the reserve: %+v", d)
	}
	scWait(t, "b has a's message", func() bool { return has(t, b, "sent near a full disk") })
}

// TestBadSignatureBudget: an address that sends many bad signatures is
// refused without verifying until its budget refills.
func TestBadSignatureBudget(t *testing.T) {
	home := scHome(t, "a.test")
	a, err := Open(home, Options{Serve: true, Log: zerolog.Nop(), badSigWindow: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b := scNode(t, "b.test")
	scSwarm(t, a, b)
	envs := make([]wire.Signed, 41)
	for i := range envs {
		envs[i] = envelopeFrom(t, b, "forged")
		envs[i].Sig[0] ^= 0xff
	}
	envs[40] = envelopeFrom(t, b, "good, but from a spent address")
	rs := post(t, a, envs...)
	for i, r := range rs {
		want := "bad signature"
		if i >= 32 {
			want = "too many bad signatures"
		}
		if r.Status != wire.Rejected || r.Reason != want && !strings.HasPrefix(r.Reason, want) {
			t.Fatalf("envelope %d: %+v, want %q", i, r, want)
		}
		if i >= 32 && !r.Retry {
			t.Fatalf("envelope %d: a spent budget must be retryable", i)
		}
	}
	time.Sleep(1100 * time.Millisecond) // the window passes
	accepted(t, a, envs[40])
}

// TestCloseWithoutDataDir: Close returns promptly even when the data
// directory was removed under the node.
func TestCloseWithoutDataDir(t *testing.T) {
	a, b := scNode(t, "a.test"), scNode(t, "b.test")
	scSwarm(t, a, b)
	for i := 0; i < 5; i++ {
		accepted(t, a, envelopeFrom(t, b, "m"+string(rune('0'+i))))
	}
	if err := os.RemoveAll(filepath.Join(a.Home(), DataDir)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- a.Close() }()
	select {
	case err := <-done:
		t.Logf("Close after %v: %v", time.Since(start), err)
	case <-time.After(15 * time.Second):
		t.Fatal("Close did not return within 15s without its data directory")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Close took %v", d)
	}
}
