package node

import (
	"errors"
	"fmt"

	"github.com/agent-swarm/agent-swarm/node/membership"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/agent-swarm/agent-swarm/store"
	"github.com/google/uuid"
)

// System notices: what the signed membership log says happened, put in
// this node's own inbox as a message from the node itself (Local, type
// system, the event in Event), never sent to a peer and never counted
// against a peer's quota. See docs/protocol.md "System messages".
const (
	NoticeJoined        = "joined"         // another agent joined
	NoticeLeft          = "left"           // another agent left
	NoticeKicked        = "kicked"         // an agent was kicked (About empty: this node was)
	NoticeMasterChanged = "master_changed" // the master role moved (About empty: to this node)
	NoticeFork          = "fork"           // the log forked (fork.go)
	NoticeSuccession    = "succession"     // the members replaced a silent master (succession.go)
)

// noticeKey holds, per swarm, the log index through which records were
// turned into notices (sn/<swarm>). It is written in the same transaction
// as the notices, so a record gives one notice whether it arrived pushed,
// in a catch-up pull, twice, or just before a crash (the pass at Open
// picks up what a crash left).
func noticeKey(swarmID string) []byte { return store.Key("sn", swarmID) }

// noticeSpace names notice IDs: a notice's ID is derived from the record
// it tells of, so it is the same on every try.
var noticeSpace = uuid.MustParse("6f1d5a8e-2c4b-4f7a-9e3d-0b8c7a6e5d41")

// memberNotice is one inbox notice before it is stored.
type memberNotice struct {
	id    string
	event string
	about string // key of the agent it is about: that agent's mute hides it; "" for this node itself
	body  string
}

// priority: what changes this node's own standing is high, the rest normal.
func (nt memberNotice) priority() string {
	if nt.about == "" {
		return "high"
	}
	return ""
}

// noticeLog turns the records of a swarm's log not yet told of into inbox
// notices. It takes n.mu, then n.recvMu: callers hold neither (code that
// holds them runs it with n.loop).
func (n *Node) noticeLog(swarmID string) {
	n.mu.Lock()
	s, ok := n.swarms[swarmID]
	var st *membership.State
	if ok {
		st = s.state // never changed in place: a change swaps in a copy
	}
	n.mu.Unlock()
	if !ok {
		return
	}
	var done uint64
	err := n.st.View(func(tx *store.Tx) error { return tx.Get(noticeKey(swarmID), &done) })
	if err == nil && done >= st.Head.Index {
		return
	}
	n.recvMu.Lock()
	defer n.recvMu.Unlock()
	var arrival uint64
	err = n.st.Update(func(tx *store.Tx) error {
		arrival = n.arrival
		var done uint64
		if err := tx.Get(noticeKey(swarmID), &done); errors.Is(err, store.ErrNotFound) {
			// A swarm from before notices existed: its past is not news.
			return tx.Put(noticeKey(swarmID), st.Head.Index)
		} else if err != nil {
			return err
		}
		if done >= st.Head.Index {
			return nil
		}
		now := n.now()
		for _, nt := range n.logNotices(st, done) {
			// Its ID comes from the record: one told before is not told again.
			if had, err := toldBefore(tx, nt.id); err != nil || had {
				if err != nil {
					return err
				}
				continue
			}
			arrival++
			m := wire.Message{V: wire.Version, ID: nt.id, Swarm: swarmID, From: n.cfg.Domain, To: n.cfg.Domain,
				Type: wire.TypeSystem, Event: nt.event, Created: now.UnixMilli(), Expires: now.Add(n.window.MaxTTL).UnixMilli(), Priority: nt.priority(), Body: nt.body}
			if err := n.putInbox(tx, InboxItem{Msg: m, Received: now.UnixMilli(), Arrival: arrival, Key: n.key(), Local: true, About: nt.about}); err != nil {
				return err
			}
		}
		return tx.Put(noticeKey(swarmID), st.Head.Index)
	})
	if err != nil {
		n.log.Error().Err(err).Str("swarm", swarmID).Msg("could not store membership notices")
		return
	}
	if arrival != n.arrival {
		n.arrival = arrival
		n.events.Notify()
	}
}

// toldBefore reports whether the inbox holds this node's own notice with
// id. Only a local item counts: a peer may choose any UUID for its
// message, the derived notice ID too, and must not silence the notice by
// sending it first (DESIGN §2: an ID one member chose shadows nothing).
func toldBefore(tx *store.Tx, id string) (bool, error) {
	arr, err := arrivalsOf(tx, id)
	if err != nil {
		return false, err
	}
	for _, a := range arr {
		var it InboxItem
		if err := tx.Get(arrivalKey(a), &it); err == nil && it.Local {
			return true, nil
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return false, err
		}
	}
	return false, nil
}

// noticeAll runs noticeLog for every swarm: at Open, for what a crash or
// a one-shot command left untold.
func (n *Node) noticeAll() {
	n.mu.Lock()
	ids := make([]string, 0, len(n.swarms))
	for id := range n.swarms {
		ids = append(ids, id)
	}
	n.mu.Unlock()
	for _, id := range ids {
		n.noticeLog(id)
	}
}

// logNotices says what the records after index done mean to this node's
// user. The log is replayed from its start (records only, no signature
// checks: the chain was checked when applied) for the names and keys a
// record refers to. What this node did itself (its own join, leave, kick
// or hand-over) is no news: the command that did it said so.
func (n *Node) logNotices(st *membership.State, done uint64) []memberNotice {
	keys := map[string]string{} // domain -> key, as of the record
	master := ""
	var out []memberNotice
	for i, sg := range st.Records {
		r, err := wire.ParseRecord(sg.Payload)
		if err != nil {
			return out
		}
		if uint64(i) > done {
			if nt, ok := n.recordNotice(st, sg, r, keys, master); ok {
				nt.id = uuid.NewSHA1(noticeSpace, []byte(st.ID+"/"+wire.RecordHash(sg))).String()
				out = append(out, nt)
			}
		}
		switch r.Type {
		case wire.RecCreate:
			keys[r.Member.Domain], master = r.Member.Key, r.Member.Domain
		case wire.RecAdd:
			keys[r.Member.Domain] = r.Member.Key
		case wire.RecTransfer, wire.RecSuccession:
			master = r.Agent
		}
	}
	return out
}

// recordNotice is the notice one record gives, if any. keys and master
// are as of the record before it.
func (n *Node) recordNotice(st *membership.State, sg wire.Signed, r *wire.Record, keys map[string]string, master string) (memberNotice, bool) {
	name := st.Settings.Name
	mine := sg.KID == n.key() // signed by this node: its own action, unless it records another's
	who := func(domain string) string {
		return fmt.Sprintf("%s (key %s)", domain, fingerprintOf(keys[domain]))
	}
	switch r.Type {
	case wire.RecSuccession: // automatic, so told even to the node that signed it
		return n.successionNotice(st, r, keys, master), true
	case wire.RecAdd:
		if r.Member.Key == n.key() {
			return memberNotice{}, false
		}
		keys[r.Member.Domain] = r.Member.Key // who() names the new key
		return memberNotice{event: NoticeJoined, about: r.Member.Key,
			body: fmt.Sprintf("%s joined swarm %q.", who(r.Member.Domain), name)}, true
	case wire.RecRemove:
		key := keys[r.Agent]
		switch {
		case key == n.key() && r.Reason == wire.ReasonKick:
			return memberNotice{event: NoticeKicked,
				body: fmt.Sprintf("This node was kicked from swarm %q by its master %s: it no longer sends to or receives from the swarm. Only a new invite from the master can readmit it.", name, master)}, true
		case key == n.key(), mine && r.Reason == wire.ReasonKick:
			return memberNotice{}, false
		case r.Reason == wire.ReasonKick:
			return memberNotice{event: NoticeKicked, about: key,
				body: fmt.Sprintf("%s was kicked from swarm %q by its master %s.", who(r.Agent), name, master)}, true
		}
		return memberNotice{event: NoticeLeft, about: key, body: fmt.Sprintf("%s left swarm %q.", who(r.Agent), name)}, true
	case wire.RecTransfer:
		switch {
		case mine:
			return memberNotice{}, false
		case keys[r.Agent] == n.key():
			return memberNotice{event: NoticeMasterChanged,
				body: fmt.Sprintf("This node is now the master of swarm %q, handed over by %s: it invites, kicks, and can hand the role on.", name, master)}, true
		}
		return memberNotice{event: NoticeMasterChanged, about: keys[r.Agent],
			body: fmt.Sprintf("%s is now the master of swarm %q (it was %s).", who(r.Agent), name, master)}, true
	}
	return memberNotice{}, false
}
