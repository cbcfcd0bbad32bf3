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

// InboxItem is a received message as stored (a/<arrival>).
type InboxItem struct {
	Msg      wire.Message `json:"msg"`
	Received int64        `json:"received"`
	Arrival  uint64       `json:"arrival"` // local arrival order; sender clocks may disagree
	Key      string       `json:"key"`     // the sender's key: who it is
	Gap      uint64       `json:"gap,omitempty"`
	Local    bool         `json:"local,omitempty"` // a notice from this node itself
	// About is the key of the agent a notice tells of: a mute of that
	// agent hides it as it hides the agent's messages. Empty for notices
	// about this node itself and forks, which no mute hides.
	About string `json:"about,omitempty"`
}

func arrivalKey(n uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return append([]byte("a/"), b[:]...)
}

// verdict is the outcome of checking one envelope before the commit.
type verdict struct {
	res   wire.Result
	msg   *wire.Message
	key   string // the sender's key, verified
	again string // swarm to catch up on before trying again
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
		vs[i] = n.check(e, from)
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
		vs[i] = n.check(envs[i], from)
		switch {
		case vs[i].again != "" && vs[i].res.Reason != "":
			vs[i] = reject(vs[i].res.Reason, false) // removed, and still so after catching up
		case vs[i].again != "":
			vs[i] = reject("unknown signing key for this swarm (this node may be behind; retry later)", true)
		}
	}
	n.commit(vs)
	out := make([]wire.Result, len(vs))
	for i, v := range vs {
		out[i] = v.res
		if v.key != "" && v.res.Status != wire.Rejected {
			n.pres.from(v.key, from)
			n.heard.hear(v.key, n.now())
		}
	}
	n.stats.verdicts(out)
	return out
}

// check verifies one envelope against this node's membership state;
// from is the remote address, whose budget of bad signatures it spends.
func (n *Node) check(e wire.Signed, from string) verdict {
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
	member, isMember := s.state.Member(key)
	removed, wasRemoved := s.state.Removed[key]
	leaving := s.local.Leaving[key]
	head := s.state.Head
	n.mu.Unlock()
	if !isMember {
		// A key we do not know, or one removed since, may belong to a
		// member added (again) after our head: catch up, then decide.
		if wasRemoved {
			return verdict{again: swarmID, res: wire.Result{Reason: "sender " + removed.Domain + " is not a member (" + removed.Reason + ")"}}
		}
		return verdict{again: swarmID}
	}
	domain := member.Domain
	pub, err := identity.DecodeKey(key)
	if err != nil {
		return reject(err.Error(), false)
	}
	if n.badSigSpent(from) {
		return reject("too many bad signatures from this address; retry later", true)
	}
	if err := e.Verify(wire.PurposeEnvelope, pub); err != nil {
		n.badSig(from)
		return reject("bad signature", false)
	}
	m, err := wire.ParseMessage(e.Payload, n.now(), n.window)
	if err != nil {
		return reject(err.Error(), false)
	}
	v := verdict{msg: m, key: key, res: wire.Result{ID: m.ID}}
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
	switch {
	case m.Head.Index > head.Index:
		// The sender knows records we lack: fetch them from it, after the ack.
		go n.catchUp(n.ctx, swarmID, key)
	case m.Head.Index == head.Index && m.Head.Hash != head.Hash, m.Head.Index < head.Index && n.headDiffers(swarmID, m.Head):
		// Same swarm, another chain: every member is compared with, not
		// only the master, so a fork shows wherever it is.
		go n.catchUp(n.ctx, swarmID, key)
	}
	return v
}

// headDiffers reports whether a peer's head names a record other than
// ours at that index.
func (n *Node) headDiffers(swarmID string, h wire.Head) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	s, ok := n.swarms[swarmID]
	if !ok || h.Index >= uint64(len(s.state.Records)) {
		return false
	}
	return wire.RecordHash(s.state.Records[h.Index]) != h.Hash
}

// seenKey is the seen-ID entry of a message: its identity is (swarm,
// sender key, ID), so an ID one member chose can never shadow another
// member's message (DESIGN §2).
func seenKey(swarmID, key, id string) []byte { return store.Key("s", swarmID, key, id) }

// seqKey holds the highest sequence number seen from a sender in one of
// its streams to this node: the broadcast stream or its direct stream.
func seqKey(swarmID, key, stream string) []byte { return store.Key("q", swarmID, key, stream) }

func recvStream(m *wire.Message) string {
	if m.To == wire.ToAll {
		return "all"
	}
	return "direct"
}

// commit stores accepted envelopes in one durable transaction. The seen-ID
// set (s/<swarm>/<key>/<id>, kept until the message expires) turns
// redelivery into "duplicate"; outside its lifetime a message is rejected
// as expired, so a replay can never be stored twice.
func (n *Node) commit(vs []verdict) {
	n.recvMu.Lock()
	defer n.recvMu.Unlock()
	now := n.now()
	var system []*verdict
	var arrival uint64
	err := n.st.Update(func(tx *store.Tx) error {
		system, arrival = system[:0], n.arrival
		for i := range vs { // a retried transaction starts over
			if vs[i].msg != nil {
				vs[i].res = wire.Result{ID: vs[i].msg.ID}
			}
		}
		batch := map[string]bool{}
		cs := newCounters(tx)
		for i := range vs {
			v := &vs[i]
			if v.msg == nil {
				continue
			}
			sk := seenKey(v.msg.Swarm, v.key, v.msg.ID)
			seen, err := tx.Has(sk)
			if err != nil {
				return err
			}
			if seen || batch[string(sk)] {
				v.res.Status = wire.Duplicate
				continue
			}
			if v.msg.Type != wire.TypeSystem {
				why, err := n.overQuota(cs, v.msg, v.key)
				if err != nil {
					return err
				}
				if why != "" {
					// Not marked seen: the retry is stored once there is room.
					v.res = wire.Result{ID: v.msg.ID, Status: wire.Rejected, Reason: why, Retry: true}
					continue
				}
			}
			batch[string(sk)] = true
			ttl := time.UnixMilli(v.msg.Expires).Sub(now) + n.window.Skew
			if err := tx.PutTTL(sk, true, ttl); err != nil {
				return err
			}
			if v.msg.Type == wire.TypeSystem {
				system = append(system, v)
			} else {
				gap, err := trackSeq(cs, v)
				if err != nil {
					return err
				}
				arrival++
				if err := n.putInbox(tx, InboxItem{Msg: *v.msg, Received: now.UnixMilli(), Arrival: arrival, Key: v.key, Gap: gap}); err != nil {
					return err
				}
				if err := addUnread(cs, v.msg.Swarm, v.key, inboxCost(v.msg)); err != nil {
					return err
				}
			}
			v.res.Status = wire.Accepted
		}
		return cs.flush()
	})
	if err != nil {
		reason := "receiver could not store the message"
		if errors.Is(err, store.ErrLowSpace) {
			// Peers' messages keep the full reserve; the user's own reads,
			// deletes and sends still work below it (store package doc).
			reason = "receiver could not store the message: it is low on disk space; retry later"
			n.log.Warn().Err(err).Msg("inbox commit failed: low disk space, peer messages refused; nothing acked")
		} else {
			n.log.Error().Err(err).Msg("inbox commit failed; nothing acked")
		}
		for i := range vs {
			if vs[i].msg != nil {
				vs[i] = reject(reason, true)
			}
		}
		return
	}
	n.arrival = arrival
	for _, v := range system {
		n.onSystem(v.msg, v.key)
	}
	notified := false
	for _, v := range vs {
		if v.res.Status == wire.Accepted && v.msg.Type != wire.TypeSystem {
			if !notified {
				n.events.Notify()
				notified = true
			}
			n.log.Info().Str("id", v.msg.ID).Str("from", v.msg.From).Str("key", fingerprintOf(v.key)).Str("swarm", v.msg.Swarm).Msg("message received")
			n.publish(Event{Kind: EventMessage, Swarm: v.msg.Swarm, Message: v.msg, SenderKey: v.key})
		}
	}
}

// trackSeq records the highest sequence number seen in the sender's stream
// and returns how many numbers were skipped before this message: messages
// of that stream that have not arrived (yet). A late one fills no gap
// after the fact; the reader sees a gap where one was when it came.
func trackSeq(c *counters, v *verdict) (uint64, error) {
	k := seqKey(v.msg.Swarm, v.key, recvStream(v.msg))
	last, known, err := c.get(k)
	if err != nil {
		return 0, err
	}
	seq := int64(v.msg.Seq)
	if known && seq <= last {
		return 0, nil
	}
	// The first message of a stream starts it: what the sender sent
	// before this node was there is no gap.
	var gap uint64
	if known {
		gap = uint64(seq - last - 1)
	}
	c.set(k, seq)
	return gap, nil
}

// onSystem acts on a verified system message after it is stored.
func (n *Node) onSystem(m *wire.Message, key string) {
	switch m.Event {
	case wire.EventLog:
		if _, err := n.applyRecords(m.Swarm, m.Records); err != nil {
			if errors.Is(err, membership.ErrNotNext) {
				go n.catchUp(n.ctx, m.Swarm, key)
				return
			}
			n.log.Warn().Err(err).Str("from", m.From).Msg("membership records rejected")
		}
	case wire.EventSupport:
		n.onSupport(m, key, false)
	case wire.EventLeave:
		n.mu.Lock()
		defer n.mu.Unlock()
		s, ok := n.swarms[m.Swarm]
		if !ok {
			return
		}
		member, ok := s.state.Member(key)
		// A leave notice speaks for the membership it was sent in: one
		// signed before the member's latest add (a replay of an old
		// leave) does not end the new membership.
		if !ok || m.Head.Index < s.state.Since[member.Domain] {
			n.log.Info().Str("from", m.From).Msg("leave notice older than the member's latest join: ignored")
			return
		}
		if n.isMaster(s) {
			if err := n.appendRecord(s, wireRemove(member.Domain, wire.ReasonLeave), nil); err != nil {
				n.log.Error().Err(err).Str("agent", member.Domain).Msg("could not record a leave")
			}
			return
		}
		local := s.local
		if local.Leaving == nil {
			local.Leaving = map[string]bool{}
		}
		local.Leaving[key] = true
		if err := n.st.Update(func(tx *store.Tx) error { return tx.Put(store.Key("w", m.Swarm), local) }); err == nil {
			s.local = local
		}
	}
}

func wireRemove(agent, reason string) wire.Record {
	return wire.Record{Type: wire.RecRemove, Agent: agent, Reason: reason}
}

// The bad-signature budget: a key hint naming a member makes this node
// run an Ed25519 verification, up to 256 per batch. Each remote address
// may fail BadSigBudget of them per badSigWindow (a token bucket that
// refills over the window); once it is spent, that address's envelopes
// are refused unverified (retryable) until the bucket refills. The state
// is a bounded limiterMap; an address with no failures has no entry.

func (n *Node) badSigBucket() (rate.Limit, int) {
	budget := n.cfg.BadSigBudget
	if budget <= 0 {
		budget = 32
	}
	w := n.badSigWindow
	if w <= 0 {
		w = time.Minute
	}
	return rate.Limit(float64(budget) / w.Seconds()), budget
}

// badSigSpent reports whether from has no budget left.
func (n *Node) badSigSpent(from string) bool {
	if from == "" {
		return false
	}
	l, ok := n.badSigs.Load(from)
	return ok && l.Tokens() < 1
}

// badSig spends one unit of from's budget.
func (n *Node) badSig(from string) {
	if from == "" {
		return
	}
	r, b := n.badSigBucket()
	n.limiter(&n.badSigs, from, r, b).Allow()
}
