package node

import (
	"sort"

	"github.com/agent-swarm/agent-swarm/node/wire"
)

// Accessors for extensions that act per swarm: which swarms this node is
// in, what their settings say (the linked repository), whether this node
// holds the master role; and the master's change of the linked
// repository. A change of any of these is published as EventSwarms.

// Swarms are the swarms this node is in or left, as List shows them but
// without their mute state (no store read): cheap enough to call on every
// event or tick. Sorted by ID.
func (n *Node) Swarms() []SwarmInfo {
	n.mu.Lock()
	out := make([]SwarmInfo, 0, len(n.swarms))
	for _, s := range n.swarms {
		out = append(out, n.info(s))
	}
	n.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// LiveSwarm resolves a swarm name or ID as the commands do ("" is the one
// swarm this node is in) to a swarm this node has not left; the error
// says which it is not.
func (n *Node) LiveSwarm(ref string) (SwarmInfo, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	s, err := n.live(ref)
	if err != nil {
		return SwarmInfo{}, err
	}
	return n.info(s), nil
}

// LinkRepo sets the repository linked to a swarm: a settings record in
// the signed membership log, so every member learns it. Master only; repo
// is checked as a swarm's settings are (owner/name).
func (n *Node) LinkRepo(ref, repo string) (SwarmInfo, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	s, err := n.live(ref)
	if err != nil {
		return SwarmInfo{}, err
	}
	set := s.state.Settings
	set.Repo = repo
	if err := set.Check(); err != nil {
		return SwarmInfo{}, Userf("%v", err)
	}
	if err := n.appendRecord(s, wire.Record{Type: wire.RecSettings, Settings: &set}, nil); err != nil {
		return SwarmInfo{}, err
	}
	n.publish(Event{Kind: EventSwarms, Swarm: s.state.ID, SwarmName: s.state.Settings.Name})
	return n.info(s), nil
}
