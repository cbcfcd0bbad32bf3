package node

import (
	"os"
	"time"

	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/agent-swarm/agent-swarm/store"
)

// Accessors for extensions that act on messages and agents: they see a
// message as the inbox shows it and resolve the user's references to
// swarms and agents the way the core's own commands do.

// InboxMessageOf is m, received now from the holder of key, as the inbox
// shows it: swarm name, sender as verified, whether it is direct, and
// whether a mute hides it.
func (n *Node) InboxMessageOf(m wire.Message, key string) (InboxMessage, error) {
	v, err := n.inboxView()
	if err != nil {
		return InboxMessage{}, err
	}
	return v.show(&InboxItem{Msg: m, Key: key, Received: n.now().UnixMilli()}, false), nil
}

// SwarmRef is a swarm resolved from a user's reference.
type SwarmRef struct {
	ID   string
	Name string
}

// ResolveSwarm resolves a swarm name or ID as the commands do ("" is the
// one swarm this node is in).
func (n *Node) ResolveSwarm(ref string) (SwarmRef, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	s, err := n.resolve(ref)
	if err != nil {
		return SwarmRef{}, err
	}
	return SwarmRef{ID: s.state.ID, Name: s.state.Settings.Name}, nil
}

// AgentRef is an agent resolved from a user's reference: the name it goes
// by, and the key (with its fingerprint) that is who it is.
type AgentRef struct {
	Domain      string
	Key         string
	Fingerprint string
}

func agentRef(m wire.Member) AgentRef {
	return AgentRef{Domain: m.Domain, Key: m.Key, Fingerprint: fingerprintOf(m.Key)}
}

// ResolveMember resolves a name, fingerprint or key to one member of a
// swarm (given as ResolveSwarm takes it).
func (n *Node) ResolveMember(swarm, ref string) (AgentRef, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	s, err := n.resolve(swarm)
	if err != nil {
		return AgentRef{}, err
	}
	m, err := n.agentIn(s, ref)
	if err != nil {
		return AgentRef{}, err
	}
	return agentRef(m), nil
}

// ResolveAgent resolves a name, fingerprint or key to one key across the
// swarms this node is in, as a mute does: a name two keys hold is refused
// as ambiguous.
func (n *Node) ResolveAgent(ref string) (AgentRef, error) {
	m, err := n.agentAnywhere(ref)
	if err != nil {
		return AgentRef{}, err
	}
	return agentRef(m), nil
}

// Now is the node's clock (Options.Now: tests move it).
func (n *Node) Now() time.Time { return n.now() }

// Store is the node's store. An extension reads and writes only under the
// key prefixes it registered (ExtensionInfo.Prefixes).
func (n *Node) Store() *store.Store { return n.st }

// WriteFileAtomic writes a file in the home as config.json is written:
// to a temporary file, synced, then renamed over path, so a reader never
// sees half of it.
func WriteFileAtomic(path string, b []byte, mode os.FileMode) error { return writeFile(path, b, mode) }

// ExtensionEnv names what of the starting command's environment the
// registered extensions need in a daemon for the home cfg is of
// (ExtensionInfo.DaemonEnv), in registration order.
func ExtensionEnv(cfg *Config) []string {
	var names []string
	for _, info := range registeredInfos() {
		if info.DaemonEnv != nil {
			names = append(names, info.DaemonEnv(cfg)...)
		}
	}
	return names
}
