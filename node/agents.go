package node

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agent-swarm/agent-swarm/node/identity"
	"github.com/agent-swarm/agent-swarm/node/membership"
	"github.com/agent-swarm/agent-swarm/node/transport"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/agent-swarm/agent-swarm/store"
)

// An agent is its key (DESIGN §2). Everything this node keeps about another
// agent is keyed by its key within one swarm: a recipient ID is
// "<swarm>:<key>" (the same shape as an envelope's key hint), and its
// address comes from that swarm's own membership state, never from a book
// shared across swarms by name.

// rcpt names a member of a swarm by key.
func rcpt(swarmID, key string) string { return wire.KeyHint(swarmID, key) }

// recipients lists the recipient IDs of a state's members except self,
// leaving out those skip names (by key).
func recipients(st *membership.State, selfKey string, skip func(key string) bool) []string {
	out := make([]string, 0, len(st.Members))
	for _, m := range st.Sorted() {
		if m.Key != selfKey && (skip == nil || !skip(m.Key)) {
			out = append(out, rcpt(st.ID, m.Key))
		}
	}
	return out
}

// addrOf finds where a recipient is: a member of its swarm, or one removed
// since (so it can still be told of its removal). Caller holds n.mu.
func (n *Node) addrOf(id string) (wire.Member, bool) {
	swarmID, key, err := wire.SplitKeyHint(id)
	if err != nil {
		return wire.Member{}, false
	}
	s, ok := n.swarms[swarmID]
	if !ok {
		return wire.Member{}, false
	}
	if m, ok := s.state.Member(key); ok {
		return m, true
	}
	if r, ok := s.state.Removed[key]; ok && r.Member.Key == key {
		return r.Member, true
	}
	return wire.Member{}, false
}

// nameOf is the domain a recipient ID's key goes by, for people.
func (n *Node) nameOf(id string) (name, fingerprint string) {
	_, key, err := wire.SplitKeyHint(id)
	if err != nil {
		return id, ""
	}
	n.mu.Lock()
	m, ok := n.addrOf(id)
	n.mu.Unlock()
	if !ok {
		return "(unknown)", fingerprintOf(key)
	}
	return m.Domain, fingerprintOf(key)
}

func fingerprintOf(key string) string {
	pub, err := identity.DecodeKey(key)
	if err != nil {
		return ""
	}
	return identity.Fingerprint(pub)
}

// matches reports whether a user's reference names member m: its domain,
// its key fingerprint, or its key.
func matches(ref string, m wire.Member) bool {
	return ref == m.Domain || ref == m.Key || strings.EqualFold(ref, fingerprintOf(m.Key))
}

// agentIn resolves a user's reference to one member of a swarm. Names are
// unique within one swarm (the master refuses a second key under a name),
// so a name is enough there; a fingerprint or key works too. Caller holds
// n.mu.
func (n *Node) agentIn(s *swarm, ref string) (wire.Member, error) {
	for _, m := range s.state.Sorted() {
		if matches(ref, m) {
			return m, nil
		}
	}
	if strings.Contains(ref, "-") && len(ref) == 19 || len(ref) == 43 {
		return wire.Member{}, NotFoundf("no member of %q has the key %s", s.state.Settings.Name, ref)
	}
	if err := wire.ValidDomain(ref); err != nil {
		return wire.Member{}, Userf("%v", err)
	}
	return wire.Member{}, NotFoundf("%s is not a member of %q", clipName(ref), s.state.Settings.Name)
}

// agentAnywhere resolves a reference to one key across the live swarms
// (mutes, ping). A name held by two keys in different swarms is two
// agents: the caller must say which by fingerprint.
func (n *Node) agentAnywhere(ref string) (wire.Member, error) {
	byKey := map[string]wire.Member{}
	for _, m := range n.peers() {
		if matches(ref, m) {
			byKey[m.Key] = m
		}
	}
	switch len(byKey) {
	case 1:
		for _, m := range byKey {
			return m, nil
		}
	case 0:
		if len(ref) != 19 && len(ref) != 43 {
			if err := wire.ValidDomain(ref); err != nil {
				return wire.Member{}, Userf("%v", err)
			}
		}
		return wire.Member{}, NotFoundf("%s shares no swarm with this node", clipName(ref))
	}
	fps := make([]string, 0, len(byKey))
	for k := range byKey {
		fps = append(fps, fingerprintOf(k))
	}
	sort.Strings(fps)
	return wire.Member{}, Userf("%s is the name of %d different keys in your swarms (they are different agents): give the fingerprint instead, one of %s",
		clipName(ref), len(byKey), strings.Join(fps, ", "))
}

// clashes lists the names held by more than one key across the swarms this
// node is in: the same name with two keys is flagged wherever it shows.
// Caller holds n.mu.
func (n *Node) clashes() map[string]bool {
	keys := map[string]map[string]bool{}
	for _, s := range n.swarms {
		if s.local.Left {
			continue
		}
		for d, m := range s.state.Members {
			if keys[d] == nil {
				keys[d] = map[string]bool{}
			}
			keys[d][m.Key] = true
		}
	}
	out := map[string]bool{}
	for d, ks := range keys {
		if len(ks) > 1 {
			out[d] = true
		}
	}
	return out
}

// Sender is how a face names the agent behind a message or a member: its
// claimed or verified name, its key's fingerprint, and whether the name is
// also used by another key in this node's swarms.
type Sender struct {
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint"`
	// Name is "verified" when the name's own HTTPS site (WebPKI) named
	// this key, else "claimed": only the key is proven.
	Identity string `json:"identity"`
	Clash    bool   `json:"name_clash,omitempty"`
	// Master: the key holds the swarm's master role now.
	Master bool `json:"master,omitempty"`
}

// sender describes the agent with key under name. Caller need not hold n.mu.
func (n *Node) sender(name, key string, clash map[string]bool) Sender {
	id := "claimed"
	if n.ver.verified(name, key) {
		id = "verified"
	}
	return Sender{Name: name, Fingerprint: fingerprintOf(key), Identity: id, Clash: clash[name]}
}

// Domain verification (DESIGN §2): a name is verified when
// https://NAME/.well-known/swarm-agent, fetched over WebPKI-validated TLS,
// names the same key. The result is kept per (name, key) in dv/<name> and
// refreshed daily; a failed check makes it claimed again.

// verifyEvery is how long a verification stands before it is redone.
const verifyEvery = 24 * time.Hour

type verifiedName struct {
	Key string `json:"key"`
	At  int64  `json:"at"` // unix ms of the last successful check
}

type verifier struct {
	mu      sync.Mutex
	known   map[string]verifiedName // by name
	running map[string]bool
}

func (v *verifier) verified(name, key string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	got, ok := v.known[name]
	return ok && got.Key == key
}

// verifiable reports whether a name could hold a WebPKI certificate at
// all: names under reserved test and local suffixes never do.
func verifiable(name string) bool {
	if !strings.Contains(name, ".") {
		return false
	}
	// RFC 2606/6761 test and documentation names, and private suffixes.
	for _, suf := range []string{".test", ".localhost", ".invalid", ".local", ".example", ".internal", ".lan", ".home.arpa",
		"example.com", "example.net", "example.org"} {
		if strings.HasSuffix(name, suf) {
			return false
		}
	}
	return true
}

// loadVerified reads the verifications kept in the store.
func (n *Node) loadVerified() {
	n.ver.known, n.ver.running = map[string]verifiedName{}, map[string]bool{}
	_ = n.st.View(func(tx *store.Tx) error {
		return tx.Scan([]byte("dv/"), nil, func(k []byte, dec func(any) error) (bool, error) {
			var v verifiedName
			if dec(&v) == nil && n.now().Sub(time.UnixMilli(v.At)) < 2*verifyEvery {
				n.ver.known[strings.TrimPrefix(string(k), "dv/")] = v
			}
			return true, nil
		})
	})
}

// fetchCard asks a name's own HTTPS site which key it holds, over WebPKI.
func (n *Node) fetchCard(ctx context.Context, name string) (AgentCard, error) {
	var card AgentCard
	code, body, err := n.client.Do(ctx, transport.Peer{Addr: "https://" + name}, "GET", "/.well-known/swarm-agent", nil, nil, 64<<10)
	if err != nil {
		return card, err
	}
	if code != 200 {
		return card, Userf("%s answered %d", name, code)
	}
	if err := decodeJSON(body, &card); err != nil {
		return card, err
	}
	return card, nil
}

// verify checks that name's site names key, and records the outcome. It
// reports whether the name is verified for key.
func (n *Node) verify(ctx context.Context, name, key string) (bool, error) {
	card, err := n.fetchCard(ctx, name)
	ok := err == nil && card.Key == key && card.Domain == name
	n.ver.mu.Lock()
	if ok {
		n.ver.known[name] = verifiedName{Key: key, At: n.now().UnixMilli()}
	} else if got, had := n.ver.known[name]; had && got.Key == key {
		delete(n.ver.known, name)
	}
	v, had := n.ver.known[name]
	n.ver.mu.Unlock()
	_ = n.st.UpdateLazy(func(tx *store.Tx) error {
		if had {
			return tx.Put(store.Key("dv", name), v)
		}
		return tx.Delete(store.Key("dv", name))
	})
	if err == nil && card.Key != key {
		return false, Userf("%s is held by another key (%s), not %s", name, fingerprintOf(card.Key), fingerprintOf(key))
	}
	return ok, err
}

// verifyMembers checks, in the background, the names of the members of
// every live swarm that could be verified and were not checked lately.
func (n *Node) verifyMembers() {
	if n.server == nil || n.done() {
		return
	}
	n.mu.Lock()
	var todo []wire.Member
	for _, s := range n.swarms {
		if s.local.Left {
			continue
		}
		for _, m := range s.state.Members {
			if m.Key != n.id.KeyString() && verifiable(m.Domain) {
				todo = append(todo, m)
			}
		}
	}
	n.mu.Unlock()
	for _, m := range todo {
		n.ver.mu.Lock()
		got, ok := n.ver.known[m.Domain]
		fresh := ok && got.Key == m.Key && n.now().Sub(time.UnixMilli(got.At)) < verifyEvery
		if fresh || n.ver.running[m.Domain] {
			n.ver.mu.Unlock()
			continue
		}
		n.ver.running[m.Domain] = true
		n.ver.mu.Unlock()
		n.loop(func() {
			defer func() { n.ver.mu.Lock(); delete(n.ver.running, m.Domain); n.ver.mu.Unlock() }()
			ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
			defer cancel()
			if ok, err := n.verify(ctx, m.Domain, m.Key); !ok {
				n.log.Debug().Err(err).Str("agent", m.Domain).Msg("name not verified; shown as claimed")
			}
		})
	}
}

func clipName(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// FingerprintOf is the fingerprint of an encoded public key ("" when it
// is not one): how extensions compare a sender's key with a member's or
// the master's (an agent is its key, never its name).
func FingerprintOf(key string) string { return fingerprintOf(key) }
