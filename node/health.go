package node

import (
	"errors"
	"net/http"

	"github.com/agent-swarm/agent-swarm/store"
)

// Health is what GET /healthz answers on the peer port, for a load
// balancer or a monitor. Anyone who reaches the port may ask, so it says
// only what is wrong, never where (no paths, sizes, names or peers).
//
//   - not_ready (503): the store takes no writes, or its free space is
//     below the reserve (peers' messages are being refused with "low on
//     disk space; retry later"). A balancer should send peers elsewhere.
//   - degraded (200): the node works but no peer answered lately (all
//     known peers offline). Not a reason to take the node out: its peers
//     may be the ones down, and they come back through it.
//   - ready (200): none of the above.
//
// GET /healthz/live is liveness: 200 while the process serves, whatever
// the disk; a full disk is not cured by a restart.
type Health struct {
	Status  string       `json:"status"`
	Checks  HealthChecks `json:"checks"`
	Reasons []string     `json:"reasons,omitempty"`
}

// HealthChecks are the checks behind Health.Status, each "ok" or what
// is wrong in a word or two.
type HealthChecks struct {
	Store string `json:"store"` // ok, closed, failing
	Disk  string `json:"disk"`  // ok, low, unknown
	// Peers: ok, none (no peers), waiting (just opened, none heard
	// yet), unreachable (none heard within three heartbeats).
	Peers string `json:"peers"`
}

// Health statuses.
const (
	HealthReady    = "ready"
	HealthDegraded = "degraded"
	HealthNotReady = "not_ready"
)

// Health checks the node now: two statfs calls and a look at presence;
// nothing is written.
func (n *Node) Health() Health {
	h := Health{Status: HealthReady, Checks: HealthChecks{Store: "ok", Disk: "ok", Peers: n.peersHealth()}}
	notReady := func(reason string) {
		h.Status = HealthNotReady
		h.Reasons = append(h.Reasons, reason)
	}
	switch err := n.st.Writable(); {
	case n.done() || errors.Is(err, store.ErrClosed):
		h.Checks.Store = "closed"
		notReady("store: closed (the node is shutting down)")
	case err != nil:
		h.Checks.Store = "failing"
		notReady("store: writes are failing (see the node's log)")
	}
	switch sp, err := n.st.Space(); {
	case err != nil:
		h.Checks.Disk = "unknown"
		if h.Checks.Store == "ok" {
			notReady("disk: free space cannot be read (see the node's log)")
		}
	case sp.Low():
		h.Checks.Disk = "low"
		notReady("disk: free space is below the store's reserve; peers' messages are refused until space is freed")
	}
	if h.Status == HealthReady && h.Checks.Peers == "unreachable" {
		h.Status = HealthDegraded
		h.Reasons = append(h.Reasons, "peers: none of this node's peers answered within three heartbeats")
	}
	return h
}

// peersHealth says whether any peer was heard lately.
func (n *Node) peersHealth() string {
	peers := n.peers()
	if len(peers) == 0 {
		return "none"
	}
	now, hb := n.now(), n.heartbeat()
	heard := false
	for _, m := range peers {
		switch n.pres.get(m.Key, now, hb).State {
		case "unknown":
		case "offline":
			heard = true
		default:
			return "ok"
		}
	}
	if !heard && now.Sub(n.stats.opened) <= 3*hb {
		return "waiting" // just opened: no heartbeat answered yet
	}
	return "unreachable"
}

func (n *Node) handleHealth(w http.ResponseWriter, r *http.Request) {
	h := n.Health()
	code := http.StatusOK
	if h.Status == HealthNotReady {
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, code, h)
}

func (n *Node) handleLive(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]string{"status": "live"})
}
