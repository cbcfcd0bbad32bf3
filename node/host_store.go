package node

import "github.com/agent-swarm/agent-swarm/store"

// Store is the node's store. An extension reads and writes only under the
// key prefixes it registered (ExtensionInfo.Prefixes).
func (n *Node) Store() *store.Store { return n.st }
