package node

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/agent-swarm/agent-swarm/node/transport"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/agent-swarm/agent-swarm/store"
	"github.com/google/uuid"
)

// Presence is an agent's announced state as this node last saw it.
type Presence struct {
	State    string  `json:"state"`            // active, busy, idle, away, offline, unknown
	Status   string  `json:"status,omitempty"` // the agent's status line (peer text)
	LastSeen string  `json:"last_seen,omitempty"`
	RTTms    float64 `json:"rtt_ms,omitempty"`
	// From is the network address the peer's last verified request came
	// from (through a proxy: the address the proxy saw).
	From string `json:"from,omitempty"`
}

type seen struct {
	state, status string
	at            time.Time
	rtt           time.Duration
}

// presenceBook holds what peers announced, by agent key (an agent is its
// key: a second key under the same name is another agent), and the nonces
// of the presence payloads it accepted, until they leave the time window,
// so a signed presence cannot be replayed.
type presenceBook struct {
	mu     sync.Mutex
	peers  map[string]seen
	addrs  map[string]string
	nonces map[string]map[string]time.Time // by key: nonce -> when it may be forgotten
	// silent holds the peers whose heartbeats went unanswered, by key:
	// they are pinged less and less often until they are heard from.
	silent map[string]silence
	// pingedBy is when each peer's last heartbeat reached this node: the
	// exchange told both sides each other's presence, so this node skips
	// its own heartbeat to that peer for a period (one exchange per pair
	// and period, not two).
	pingedBy map[string]time.Time
	// onHeard is told when a silent peer is heard from again (the outbox
	// then retries it at once); called without mu held.
	onHeard func(key string)

	selfMu sync.Mutex    // orders writes of self with the store's
	self   *selfPresence // this agent's, once read from the store
}

// silence is a peer's run of unanswered heartbeats.
type silence struct {
	misses int
	next   time.Time // no heartbeat before this
}

// liveMisses is how many heartbeats a peer may miss before it is pinged
// less often: as many as make it "offline" (get).
const liveMisses = 3

// maxSilentEvery bounds the wait between heartbeats to a silent peer, in
// heartbeat periods (15 s: 4 minutes). A peer that comes back is heard
// from sooner: its own heartbeat reaches this node, which then pings it
// at the next beat.
const maxSilentEvery = 16

// maxNonces bounds the nonces remembered per key; only verified members
// add them, and each lives at most twice the clock-skew window. The bound
// is per key so that one member's flood of pings fills only its own book:
// a shared book, once full, refused every other member's presence too.
// Heartbeats take one a period (4 a minute by default).
const maxNonces = 1 << 10

func newPresenceBook() *presenceBook {
	return &presenceBook{peers: map[string]seen{}, addrs: map[string]string{}, nonces: map[string]map[string]time.Time{},
		silent: map[string]silence{}, pingedBy: map[string]time.Time{}}
}

// due reports whether the peer with key gets a heartbeat at now: not
// while it is silent and waiting, nor within a period hb of its own
// heartbeat reaching this node.
func (b *presenceBook) due(key string, now time.Time, hb time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if at, ok := b.pingedBy[key]; ok && now.Sub(at) < hb {
		return false
	}
	return !now.Before(b.silent[key].next)
}

// beaten records a heartbeat's outcome. A peer that missed liveMisses in a
// row waits twice as long for each further one, up to maxSilentEvery
// periods: an offline peer costs this node a dial now and then, not every
// period (each dial to an absent peer is a QUIC handshake that times out).
func (b *presenceBook) beaten(key string, answered bool, now time.Time, hb time.Duration) {
	if answered {
		b.heard(key)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.silent[key]
	s.misses++
	if s.misses >= liveMisses {
		s.next = now.Add(hb * time.Duration(min(1<<(s.misses-liveMisses+1), maxSilentEvery)))
	}
	b.silent[key] = s
}

// fresh records the presence nonce of the agent with key and reports
// whether it is new. When key's book is full of live nonces it refuses,
// rather than forget one early.
func (b *presenceBook) fresh(key, nonce string, now time.Time, keep time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	ns := b.nonces[key]
	if _, seen := ns[nonce]; seen {
		return false
	}
	if ns == nil {
		ns = map[string]time.Time{}
		b.nonces[key] = ns
	}
	if len(ns) >= maxNonces {
		for k, until := range ns {
			if now.After(until) {
				delete(ns, k)
			}
		}
		if len(ns) >= maxNonces {
			return false
		}
	}
	ns[nonce] = now.Add(keep)
	return true
}

// from notes where a verified request of the agent with key came from;
// a peer heard from is live, and gets heartbeats again.
func (b *presenceBook) from(key, addr string) {
	b.mu.Lock()
	b.addrs[key] = addr
	b.mu.Unlock()
	b.heard(key)
}

// heard marks the peer with key live; if it was silent, onHeard learns.
func (b *presenceBook) heard(key string) {
	b.mu.Lock()
	_, was := b.silent[key]
	delete(b.silent, key)
	f := b.onHeard
	b.mu.Unlock()
	if was && f != nil {
		f(key)
	}
}

// silentUntil is when the next heartbeat goes to a peer that has missed
// liveMisses or more in a row (zero for a live one): the outbox retries a
// silent peer no more often than that.
func (b *presenceBook) silentUntil(key string) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.silent[key].next
}

// put records a peer's presence: from the answer to this node's ping
// (with its round trip), or from the peer's own ping (rtt 0).
func (b *presenceBook) put(key string, p *wire.Presence, rtt time.Duration, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.peers[key]
	if rtt == 0 {
		rtt = old.rtt
		b.pingedBy[key] = at
	}
	b.peers[key] = seen{state: p.State, status: p.Status, at: at, rtt: rtt}
}

// get reports a peer offline after three missed heartbeats.
func (b *presenceBook) get(key string, now time.Time, hb time.Duration) Presence {
	b.mu.Lock()
	s, ok := b.peers[key]
	addr := b.addrs[key]
	b.mu.Unlock()
	if !ok {
		return Presence{State: "unknown", From: addr}
	}
	p := Presence{State: s.state, Status: s.status, LastSeen: s.at.UTC().Format(time.RFC3339), RTTms: ms(s.rtt), From: addr}
	if now.Sub(s.at) > 3*hb {
		p.State = "offline"
	}
	return p
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (n *Node) heartbeat() time.Duration { return n.cfg.Heartbeat.or(15 * time.Second) }

type selfPresence struct {
	State  string `json:"state"`
	Status string `json:"status,omitempty"`
}

// selfPresence is read from the store once, then kept: every heartbeat
// carries it.
func (n *Node) selfPresence() Presence {
	n.pres.selfMu.Lock()
	defer n.pres.selfMu.Unlock()
	if n.pres.self == nil {
		p := selfPresence{State: "active"}
		if err := n.st.View(func(tx *store.Tx) error { return tx.Get(store.Key("p", "self"), &p) }); err != nil && !errors.Is(err, store.ErrNotFound) {
			return Presence{State: p.State} // not kept: read again next time
		}
		n.pres.self = &p
	}
	return Presence{State: n.pres.self.State, Status: n.pres.self.Status}
}

// SetPresence sets this agent's state and status line; peers learn it at
// the next heartbeat (sent at once).
func (n *Node) SetPresence(state, status string) (Presence, error) {
	if !contains(wire.PresenceStates, state) {
		return Presence{}, Userf("unknown presence state %q: want active, busy, idle or away", state)
	}
	if err := wire.CleanText("status", status, 200); err != nil {
		return Presence{}, Userf("%v", err)
	}
	n.pres.selfMu.Lock()
	err := n.st.Update(func(tx *store.Tx) error {
		return tx.Put(store.Key("p", "self"), selfPresence{State: state, Status: status})
	})
	if err == nil {
		n.pres.self = &selfPresence{State: state, Status: status}
	}
	n.pres.selfMu.Unlock()
	if err != nil {
		return Presence{}, err
	}
	if n.server != nil {
		go n.beat()
	}
	return Presence{State: state, Status: status}, nil
}

func contains(set []string, s string) bool {
	for _, x := range set {
		if x == s {
			return true
		}
	}
	return false
}

// peers lists every other agent this node shares a live swarm with, once
// per key and address (not once per swarm).
func (n *Node) peers() []wire.Member {
	n.mu.Lock()
	defer n.mu.Unlock()
	byKey := map[string]wire.Member{}
	for _, s := range n.swarms {
		if s.local.Left {
			continue
		}
		for _, m := range s.state.Members {
			if m.Key != n.key() {
				byKey[m.Key+" "+m.Addr] = m
			}
		}
	}
	out := make([]wire.Member, 0, len(byKey))
	for _, m := range byKey {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Domain != out[j].Domain {
			return out[i].Domain < out[j].Domain
		}
		return out[i].Key < out[j].Key
	})
	return out
}

// heartbeatLoop pings each live peer once per period (not once per swarm);
// silent peers less often (presenceBook.beaten).
func (n *Node) heartbeatLoop() {
	t := time.NewTicker(n.heartbeat())
	defer t.Stop()
	n.beat()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
			n.beat()
		}
	}
}

func (n *Node) beat() {
	var wg sync.WaitGroup
	now := n.now()
	for _, m := range n.peers() {
		if !n.pres.due(m.Key, now, n.heartbeat()) {
			continue
		}
		wg.Add(1)
		go func(m wire.Member) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(n.ctx, n.heartbeat())
			defer cancel()
			_, err := n.ping(ctx, m)
			n.pres.beaten(m.Key, err == nil, n.now(), n.heartbeat())
		}(m)
	}
	wg.Wait()
}

// PingResult is the answer to a ping.
type PingResult struct {
	Agent       string  `json:"agent"`
	Fingerprint string  `json:"fingerprint"`
	RTTms       float64 `json:"rtt_ms"`
	Presence
}

// Ping measures the round trip to an agent (a name that is one key in this
// node's swarms, or a fingerprint) and learns its presence.
func (n *Node) Ping(ctx context.Context, agent string) (PingResult, error) {
	m, err := n.agentAnywhere(agent)
	if err != nil {
		return PingResult{}, err
	}
	rtt, err := n.ping(ctx, m)
	switch k := KindOf(err); {
	case err == nil:
	case k == Refused || k == Unreachable:
		return PingResult{}, err
	case k == "": // the transport's error: no answer at all
		return PingResult{}, Unreachablef("%s did not answer: %v", m.Domain, err)
	default:
		return PingResult{}, Userf("%s did not answer: %v", m.Domain, err)
	}
	return PingResult{Agent: m.Domain, Fingerprint: fingerprintOf(m.Key), RTTms: ms(rtt), Presence: n.pres.get(m.Key, n.now(), n.heartbeat())}, nil
}

func (n *Node) presencePayload(to string) wire.Signed {
	sp := n.selfPresence()
	p := wire.Presence{V: wire.Version, From: n.cfg.Domain, To: to, State: sp.State, Status: sp.Status,
		Time: n.now().UnixMilli(), Nonce: uuid.NewString()}
	sg, _ := wire.SignJSON(wire.PurposePresence, n.id.KeyString(), n.id.Key, p)
	return sg
}

func (n *Node) ping(ctx context.Context, m wire.Member) (time.Duration, error) {
	body, _ := json.Marshal(n.presencePayload(m.Domain))
	start := time.Now()
	code, reply, err := n.client.Do(ctx, transport.Peer{Addr: m.Addr, Pin: m.Pin}, "POST", "/swarm/v1/ping", body, nil, 64<<10)
	rtt := time.Since(start)
	if err != nil {
		return 0, err
	}
	if code != 200 {
		// 401 and 403 are the peer refusing this node; anything else
		// (a 5xx, a proxy's page) is a peer that did not answer properly.
		if code == http.StatusUnauthorized || code == http.StatusForbidden {
			return 0, Refusedf("%s refused the ping: %s", m.Domain, peerError(reply))
		}
		return 0, Unreachablef("%s did not answer: %d %s", m.Domain, code, peerError(reply))
	}
	sg, err := wire.DecodeSigned(reply)
	if err != nil {
		return 0, err
	}
	if sg.KID != m.Key {
		return 0, Refusedf("%s did not answer: the answer is signed by another key than %s's", m.Domain, m.Domain)
	}
	p, err := n.verifyPresence(sg)
	if err != nil {
		return 0, err
	}
	n.pres.put(m.Key, p, rtt, n.now())
	n.heard.hear(m.Key, n.now())
	return rtt, nil
}

// verifyPresence checks a presence payload: signed by the key its hint
// names, that key a member of a live swarm under the name the payload
// gives, addressed to this node, inside the time window, and never seen
// before (its nonce is remembered for the window).
func (n *Node) verifyPresence(sg wire.Signed) (*wire.Presence, error) {
	var names []string
	for _, p := range n.peers() {
		if p.Key == sg.KID {
			names = append(names, p.Domain)
		}
	}
	if len(names) == 0 {
		return nil, Userf("presence from a key that shares no swarm with this node")
	}
	pub, err := decodePub(sg.KID)
	if err != nil {
		return nil, err
	}
	if err := sg.Verify(wire.PurposePresence, pub); err != nil {
		return nil, Userf("bad signature")
	}
	p, err := wire.ParsePresence(sg.Payload, n.now(), n.window)
	if err != nil {
		return nil, Userf("%v", err)
	}
	if !contains(names, p.From) || p.To != n.cfg.Domain {
		return nil, Userf("presence names the wrong agents")
	}
	if !n.pres.fresh(sg.KID, p.Nonce, n.now(), 2*n.window.Skew) {
		return nil, Userf("presence replayed (nonce already seen)")
	}
	return p, nil
}
