package node

import (
	"fmt"

	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/agent-swarm/agent-swarm/store"
)

// KeepOwn puts a message this node sent to its swarm into its own inbox
// too, as if it had arrived: the agent of the node that relays something
// for everyone (the master's sync bot relaying GitHub activity) is one of
// the everyone. A swarm send skips the sender, which is right for what the
// agent itself said and wrong for what its node relays. The copy is a
// member's message (not Local): the agent reads, mutes and wakes on it as
// on the others' copies. Keeping the same message twice keeps it once.
func (n *Node) KeepOwn(id string) error {
	m, err := n.SentMessage(id)
	if err != nil {
		return err
	}
	n.recvMu.Lock()
	arrival := n.arrival + 1
	kept := false
	err = n.st.Update(func(tx *store.Tx) error {
		sk := seenKey(m.Swarm, n.key(), m.ID)
		if seen, err := tx.Has(sk); err != nil || seen {
			return err
		}
		kept = true
		if err := tx.PutTTL(sk, true, n.window.MaxTTL+n.window.Skew); err != nil {
			return err
		}
		return n.putInbox(tx, InboxItem{Msg: m, Received: n.now().UnixMilli(), Arrival: arrival, Key: n.key()})
	})
	if err == nil && kept {
		n.arrival = arrival
	}
	n.recvMu.Unlock()
	if err != nil || !kept {
		return err
	}
	n.events.Notify()
	n.publish(Event{Kind: EventMessage, Swarm: m.Swarm, Message: &m, SenderKey: n.key()})
	return nil
}

// SentMessage is a message this node sent, as signed (its Created and
// Expires are what every receiver sees).
func (n *Node) SentMessage(id string) (wire.Message, error) {
	var sm sentMessage
	if err := n.st.View(func(tx *store.Tx) error { return tx.Get(store.Key("m", id), &sm) }); err != nil {
		return wire.Message{}, fmt.Errorf("sent message %s: %w", id, err)
	}
	return sm.message()
}

// Key is this node's signing key, as members know it (an extension
// orders its own records among its peers' by it).
func (n *Node) Key() string { return n.key() }
