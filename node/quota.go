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

// counters caches the counters (quota bytes, sequence numbers) one
// transaction reads and writes, so a batch touches each key once: a Get
// when first needed, a Put (a Delete at zero or below) at flush.
type counters struct {
	tx    *store.Tx
	vals  map[string]int64
	had   map[string]bool // the key was in the store
	dirty map[string]bool
}

func newCounters(tx *store.Tx) *counters {
	return &counters{tx: tx, vals: map[string]int64{}, had: map[string]bool{}, dirty: map[string]bool{}}
}

// get returns a counter and whether it exists (in the store or set here).
func (c *counters) get(k []byte) (int64, bool, error) {
	if v, ok := c.vals[string(k)]; ok {
		return v, c.had[string(k)] || c.dirty[string(k)], nil
	}
	var v int64
	err := c.tx.Get(k, &v)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, false, err
	}
	c.vals[string(k)], c.had[string(k)] = v, err == nil
	return v, err == nil, nil
}

func (c *counters) set(k []byte, v int64) { c.vals[string(k)], c.dirty[string(k)] = v, true }

// flush writes what changed.
func (c *counters) flush() error {
	for k := range c.dirty {
		var err error
		if v := c.vals[k]; v <= 0 {
			err = c.tx.Delete([]byte(k))
		} else {
			err = c.tx.Put([]byte(k), v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// addUnread adds delta (negative to give back) to a sender's and its
// swarm's counters.
func addUnread(c *counters, swarmID, key string, delta int64) error {
	for _, k := range [][]byte{quotaKey(swarmID, key), quotaKey(swarmID, "")} {
		v, _, err := c.get(k)
		if err != nil {
			return err
		}
		c.set(k, max(v+delta, 0))
	}
	return nil
}

// releaseItem gives back an unread item's cost; read items and local
// notices cost nothing.
func releaseItem(c *counters, it *InboxItem, read bool) error {
	if read || it.Local {
		return nil
	}
	return addUnread(c, it.Msg.Swarm, it.Key, -inboxCost(&it.Msg))
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
func (n *Node) overQuota(c *counters, m *wire.Message, key string) (string, error) {
	qs, qw := n.quotas()
	cost := inboxCost(m)
	s, _, err := c.get(quotaKey(m.Swarm, key))
	if err != nil {
		return "", err
	}
	if s+cost > qs {
		return fmt.Sprintf("over quota: %s has %d KiB unread at %s (limit %d KiB); retry once the reader catches up", m.From, s>>10, n.cfg.Domain, qs>>10), nil
	}
	w, _, err := c.get(quotaKey(m.Swarm, ""))
	if err != nil {
		return "", err
	}
	if w+cost > qw {
		return fmt.Sprintf("over quota: the swarm has %d KiB unread at %s (limit %d KiB); retry once the reader catches up", w>>10, n.cfg.Domain, qw>>10), nil
	}
	return "", nil
}
