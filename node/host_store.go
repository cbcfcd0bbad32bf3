package node

import "github.com/agent-swarm/agent-swarm/store"

// Store is the node's store. An extension reads and writes only under the
// key prefixes it registered (ExtensionInfo.Prefixes).
func (n *Node) Store() *store.Store { return n.st }

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
