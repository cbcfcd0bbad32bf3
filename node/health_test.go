package node

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/agent-swarm/agent-swarm/node/transport"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/agent-swarm/agent-swarm/store"
	"github.com/rs/zerolog"
)

// getHealth asks n's peer port, as a load balancer would.
func getHealth(t *testing.T, n *Node, path string) (int, Health, string) {
	t.Helper()
	c := transport.NewClient(transport.ClientOptions{})
	defer c.Close()
	code, body, err := c.Do(context.Background(), transport.Peer{Addr: n.Addr(), Pin: n.pin}, "GET", path, nil, nil, 1<<20)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	var h Health
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
	return code, h, string(body)
}

// TestHealthFlipsWithTheDiskReserve: /healthz is 200 ready on a node with
// room, 503 not_ready (naming the disk, and nothing a stranger should not
// learn) once the store's free-space reserve is reached, while liveness
// stays 200; with room again it is ready again. A node whose peers all
// went quiet is degraded but still 200.
func TestHealthFlipsWithTheDiskReserve(t *testing.T) {
	aHome := scHome(t, "a.test")
	a, b := scOpen(t, aHome), scNode(t, "b.test")
	scSwarm(t, a, b)
	scWait(t, "a hears b", func() bool { return a.Health().Checks.Peers == "ok" })
	code, h, _ := getHealth(t, a, "/healthz")
	if code != 200 || h.Status != HealthReady || h.Checks != (HealthChecks{Store: "ok", Disk: "ok", Peers: "ok"}) || len(h.Reasons) != 0 {
		t.Fatalf("with room: %d %+v", code, h)
	}

	a.Close()
	a, err := Open(aHome, Options{Serve: true, Log: zerolog.Nop(), Store: store.Options{MinFree: 1 << 60}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	code, h, raw := getHealth(t, a, "/healthz")
	if code != 503 || h.Status != HealthNotReady || h.Checks.Disk != "low" || h.Checks.Store != "ok" ||
		len(h.Reasons) != 1 || !strings.HasPrefix(h.Reasons[0], "disk: ") {
		t.Fatalf("below the reserve: %d %s", code, raw)
	}
	for _, secret := range []string{aHome, "b.test", a.key(), "MB"} {
		if strings.Contains(raw, secret) {
			t.Fatalf("/healthz tells a stranger %q: %s", secret, raw)
		}
	}
	if code, live, _ := getHealth(t, a, "/healthz/live"); code != 200 || live.Status != "live" {
		t.Fatalf("liveness below the reserve: %d %+v", code, live)
	}
	// What the reserve does, counted: a peer's message is refused.
	if r := post(t, a, envelopeFrom(t, b, "no room"))[0]; r.Status != wire.Rejected {
		t.Fatalf("peer message below the reserve: %+v", r)
	}
	if got := a.stats.rejected[rejectReason("receiver could not store the message: it is low on disk space; retry later")].Load(); got != 1 {
		t.Fatalf("low_disk rejections = %d, want 1", got)
	}

	a.Close()
	a = scOpen(t, aHome)
	if code, h, raw := getHealth(t, a, "/healthz"); code != 200 || h.Checks.Disk != "ok" {
		t.Fatalf("with room again: %d %s", code, raw)
	}
	b.Close()
	scWait(t, "a gives up on b", func() bool { return a.Health().Checks.Peers == "unreachable" })
	if code, h, raw := getHealth(t, a, "/healthz"); code != 200 || h.Status != HealthDegraded || len(h.Reasons) != 1 {
		t.Fatalf("peers gone: %d %s", code, raw)
	}
}

// TestRejectReasonsAreFixed: every refusal the receive path writes maps
// to its label, and text a peer controls cannot make a new one.
func TestRejectReasonsAreFixed(t *testing.T) {
	for _, c := range []struct{ reason, label string }{
		{"this node is not in swarm abc", "not_member"},
		{"sender x.test is not a member (kick)", "not_member"},
		{"sender x.test has left the swarm", "not_member"},
		{"unknown signing key for this swarm (this node may be behind; retry later)", "unknown_key"},
		{"too many bad signatures from this address; retry later", "bad_signature"},
		{"bad signature", "bad_signature"},
		{"rate limited: too many messages from x.test", "rate_limited"},
		{"over quota: the swarm has 9 KiB unread", "quota"},
		{"receiver could not store the message: it is low on disk space; retry later", "low_disk"},
		{"receiver could not store the message", "store_error"},
		{"message expired", "invalid"},
		{"from evil does not match the signing key's agent x.test", "invalid"},
		{"\x00<script>anything a peer sends", "invalid"},
	} {
		if got := rejectReasons[rejectReason(c.reason)].label; got != c.label {
			t.Errorf("%q: label %q, want %q", c.reason, got, c.label)
		}
	}
}
