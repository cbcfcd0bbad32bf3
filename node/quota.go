package node

import (
	"errors"
	"fmt"

	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/agent-swarm/agent-swarm/store"
)

// Quotas on unread inbox bytes (DESIGN §5): one member cannot fill
// another's disk. Running counters live in the store, updated in the
// transaction that changes the inbox:
//
//	qb/<swarm>/<sender key>  unread bytes from one sender in a swarm
//	qb/<swarm>               unread bytes in a swarm
//
// A message adds its cost when stored unread and gives it back when it is
// marked read or deleted (pruning removes only read messages, already
// given back). Local notices are not counted. Counters start at zero on a
// store written before quotas, and never go below zero.
//
// A message over quota is rejected with Retry set: the sender's outbox
// keeps it pending, with the reason as its last error, and delivers it
// once the reader has caught up (or it expires). Other senders' messages
// still arrive, up to the swarm's quota.

const (
	defaultQuotaSender = 16 << 20
	defaultQuotaSwarm  = 64 << 20
	// msgOverhead is what a message costs besides its body: its stored
	// metadata and index entries, roughly.
	msgOverhead = 512
)

// inboxCost is what a stored message counts against the quotas.
func inboxCost(m *wire.Message) int64 {
	c := int64(len(m.Body)) + msgOverhead
	for _, r := range m.Refs {
		c += int64(len(r.Kind)+len(r.Repo)+len(r.SHA)+len(r.URL)+len(r.Action)+len(r.Login)) + 32
	}
	return c
}

func quotaKey(swarmID, key string) []byte {
	if key == "" {
		return store.Key("qb", swarmID)
	}
	return store.Key("qb", swarmID, key)
}

func getCount(tx *store.Tx, k []byte) (int64, error) {
	var v int64
	if err := tx.Get(k, &v); err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, err
	}
	return v, nil
}

// addUnread adds delta (negative to give back) to a sender's and its
// swarm's counters.
func addUnread(tx *store.Tx, swarmID, key string, delta int64) error {
	for _, k := range [][]byte{quotaKey(swarmID, key), quotaKey(swarmID, "")} {
		v, err := getCount(tx, k)
		if err != nil {
			return err
		}
		v += delta
		if v <= 0 {
			err = tx.Delete(k)
		} else {
			err = tx.Put(k, v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// releaseItem gives back an unread item's cost; read items and local
// notices cost nothing.
func releaseItem(tx *store.Tx, it *InboxItem, read bool) error {
	if read || it.Local {
		return nil
	}
	return addUnread(tx, it.Msg.Swarm, it.Key, -inboxCost(&it.Msg))
}

func (n *Node) quotas() (sender, swarm int64) {
	sender, swarm = n.cfg.QuotaSender, n.cfg.QuotaSwarm
	if sender <= 0 {
		sender = defaultQuotaSender
	}
	if swarm <= 0 {
		swarm = defaultQuotaSwarm
	}
	return sender, swarm
}

// overQuota says why m from key may not be stored now ("" if it may).
func (n *Node) overQuota(tx *store.Tx, m *wire.Message, key string) (string, error) {
	qs, qw := n.quotas()
	cost := inboxCost(m)
	s, err := getCount(tx, quotaKey(m.Swarm, key))
	if err != nil {
		return "", err
	}
	if s+cost > qs {
		return fmt.Sprintf("over quota: %s has %d KiB unread at %s (limit %d KiB); retry once the reader catches up", m.From, s>>10, n.cfg.Domain, qs>>10), nil
	}
	w, err := getCount(tx, quotaKey(m.Swarm, ""))
	if err != nil {
		return "", err
	}
	if w+cost > qw {
		return fmt.Sprintf("over quota: the swarm has %d KiB unread at %s (limit %d KiB); retry once the reader catches up", w>>10, n.cfg.Domain, qw>>10), nil
	}
	return "", nil
}
