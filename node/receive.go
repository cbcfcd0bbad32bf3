package node

import (
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/agent-swarm/agent-swarm/node/identity"
	"github.com/agent-swarm/agent-swarm/node/membership"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/agent-swarm/agent-swarm/store"
	"golang.org/x/time/rate"
)

// InboxItem is a received message as stored (i/<id>).
type InboxItem struct {
	Msg      wire.Message `json:"msg"`
	Received int64        `json:"received"`
	Arrival  uint64       `json:"arrival"` // local arrival order (a/<arrival> -> id); sender clocks may disagree
}

func arrivalKey(n uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return append([]byte("a/"), b[:]...)
}

// verdict is the outcome of checking one envelope before the commit.
type verdict struct {
	res    wire.Result
	msg    *wire.Message
	sender string
	again  string // swarm to catch up on before trying again
}

func reject(reason string, retry bool) verdict {
	return verdict{res: wire.Result{Status: wire.Rejected, Reason: reason, Retry: retry}}
}

// receive checks a batch and commits the accepted envelopes durably before
// it returns: the reply is the ack.
// from is the network address the batch came from, noted per verified
// sender so a user can see where a peer really is.
func (n *Node) receive(ctx context.Context, envs []wire.Signed, from string) []wire.Result {
	vs := make([]verdict, len(envs))
	for i, e := range envs {
		vs[i] = n.check(e)
	}
	// A key we do not know may belong to a member added after our head:
	// catch up once, then check those envelopes again.
	caught := map[string]bool{}
	for i, v := range vs {
		if v.again == "" {
			continue
		}
		if !caught[v.again] {
			caught[v.again] = true
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			n.catchUp(cctx, v.again, "")
			cancel()
		}
		vs[i] = n.check(envs[i])
		if vs[i].again != "" {
			vs[i] = reject("unknown signing key for this swarm (this node may be behind; retry later)", true)
		}
	}
	n.commit(vs)
	out := make([]wire.Result, len(vs))
	for i, v := range vs {
		out[i] = v.res
		if v.sender != "" && v.res.Status != wire.Rejected {
			n.pres.from(v.sender, from)
		}
	}
	return out
}

// check verifies one envelope against this node's membership state.
func (n *Node) check(e wire.Signed) verdict {
	swarmID, key, err := wire.SplitKeyHint(e.KID)
	if err != nil {
		return reject(err.Error(), false)
	}
	n.mu.Lock()
	s, ok := n.swarms[swarmID]
	if !ok || s.local.Left {
		n.mu.Unlock()
		return reject("this node is not in swarm "+swarmID, false)
	}
	domain := s.state.KeyOwner(key)
	removed, wasRemoved := s.state.Removed[key]
	leaving := s.local.Leaving[domain]
	head := s.state.Head.Index
	n.mu.Unlock()
	if domain == "" {
		if wasRemoved {
			return reject("sender "+removed.Domain+" is not a member ("+removed.Reason+")", false)
		}
		return verdict{again: swarmID}
	}
	pub, err := identity.DecodeKey(key)
	if err != nil {
		return reject(err.Error(), false)
	}
	if err := e.Verify(wire.PurposeEnvelope, pub); err != nil {
		return reject("bad signature", false)
	}
	m, err := wire.ParseMessage(e.Payload, n.now(), n.window)
	if err != nil {
		return reject(err.Error(), false)
	}
	v := verdict{msg: m, sender: domain, res: wire.Result{ID: m.ID}}
	switch {
	case m.From != domain:
		return reject("from "+m.From+" does not match the signing key's agent "+domain, false)
	case m.Swarm != swarmID:
		return reject("payload swarm does not match the key hint", false)
	case m.To != wire.ToAll && m.To != n.cfg.Domain:
		return reject("addressed to "+m.To+", not to this node", false)
	case leaving && m.Event != wire.EventLeave:
		return reject("sender "+domain+" has left the swarm", false)
	}
	rl := n.cfg.RateLimit
	if rl == 0 {
		rl = 500
	}
	if !n.limiter(&n.limits, key, rate.Limit(rl), int(2*rl)).Allow() {
		return reject("rate limited: too many messages from "+domain, true)
	}
	if m.Head.Index > head {
		// The sender knows records we lack: fetch them from it, after the ack.
		go n.catchUp(n.ctx, swarmID, domain)
	}
	return v
}

// commit stores accepted envelopes in one durable transaction. The seen-ID
// set (s/<id>, kept until the message expires) turns redelivery into
// "duplicate"; outside its lifetime a message is rejected as expired, so a
// replay can never be stored twice.
func (n *Node) commit(vs []verdict) {
	n.recvMu.Lock()
	defer n.recvMu.Unlock()
	now := n.now()
	var system []*wire.Message
	var arrival uint64
	err := n.st.Update(func(tx *store.Tx) error {
		system, arrival = system[:0], n.arrival
		batch := map[string]bool{}
		for i := range vs {
			v := &vs[i]
			if v.msg == nil {
				continue
			}
			seen, err := tx.Has(store.Key("s", v.msg.ID))
			if err != nil {
				return err
			}
			if seen || batch[v.msg.ID] {
				v.res.Status = wire.Duplicate
				continue
			}
			batch[v.msg.ID] = true
			ttl := time.UnixMilli(v.msg.Expires).Sub(now) + n.window.Skew
			if err := tx.PutTTL(store.Key("s", v.msg.ID), v.msg.From, ttl); err != nil {
				return err
			}
			if v.msg.Type == wire.TypeSystem {
				system = append(system, v.msg)
			} else {
				arrival++
				if err := tx.Put(store.Key("i", v.msg.ID), InboxItem{Msg: *v.msg, Received: now.UnixMilli(), Arrival: arrival}); err != nil {
					return err
				}
				if err := tx.Put(arrivalKey(arrival), v.msg.ID); err != nil {
					return err
				}
			}
			v.res.Status = wire.Accepted
		}
		return nil
	})
	if err != nil {
		n.log.Error().Err(err).Msg("inbox commit failed; nothing acked")
		for i := range vs {
			if vs[i].msg != nil {
				vs[i] = reject("receiver could not store the message", true)
			}
		}
		return
	}
	n.arrival = arrival
	for _, m := range system {
		n.onSystem(m)
	}
	notified := false
	for _, v := range vs {
		if v.res.Status == wire.Accepted && v.msg.Type != wire.TypeSystem {
			if !notified {
				n.events.Notify()
				notified = true
			}
			n.log.Info().Str("id", v.msg.ID).Str("from", v.msg.From).Str("swarm", v.msg.Swarm).Msg("message received")
			n.offerWake(*v.msg)
		}
	}
}

// onSystem acts on a verified system message after it is stored.
func (n *Node) onSystem(m *wire.Message) {
	switch m.Event {
	case wire.EventLog:
		if _, err := n.applyRecords(m.Swarm, m.Records); err != nil {
			if errors.Is(err, membership.ErrNotNext) {
				go n.catchUp(n.ctx, m.Swarm, m.From)
				return
			}
			n.log.Warn().Err(err).Str("from", m.From).Msg("membership records rejected")
		}
	case wire.EventLeave:
		n.mu.Lock()
		defer n.mu.Unlock()
		s, ok := n.swarms[m.Swarm]
		if !ok || !s.state.IsMember(m.From) {
			return
		}
		if s.state.Master == n.cfg.Domain {
			if err := n.appendRecord(s, wireRemove(m.From, wire.ReasonLeave), nil); err != nil {
				n.log.Error().Err(err).Str("agent", m.From).Msg("could not record a leave")
			}
			return
		}
		local := s.local
		if local.Leaving == nil {
			local.Leaving = map[string]bool{}
		}
		local.Leaving[m.From] = true
		if err := n.st.Update(func(tx *store.Tx) error { return tx.Put(store.Key("w", m.Swarm), local) }); err == nil {
			s.local = local
		}
	}
}

func wireRemove(agent, reason string) wire.Record {
	return wire.Record{Type: wire.RecRemove, Agent: agent, Reason: reason}
}
