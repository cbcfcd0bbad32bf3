package node

import "io"

// Snapshot writes a consistent copy of the node's store to w (the store's
// backup format, read at one moment while the node keeps running): what
// `swarm export` puts in its archive beside the home's files.
func (n *Node) Snapshot(w io.Writer) error {
	if n.done() {
		return ErrClosed
	}
	return n.st.Backup(w)
}
