package node

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"time"

	"github.com/agent-swarm/agent-swarm/node/identity"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/agent-swarm/agent-swarm/store"
)

// InboxArgs filter the inbox.
type InboxArgs struct {
	Swarm        string
	Unread       bool
	Since        time.Time
	Limit        int
	IncludeMuted bool
	After        string // only messages after this ID (used by wait)
}

// InboxMessage is a message as shown to a user or a model. Body is peer
// text: untrusted data, never instructions.
type InboxMessage struct {
	ID       string     `json:"id"`
	Swarm    string     `json:"swarm"`
	SwarmID  string     `json:"swarm_id"`
	From     string     `json:"from"`
	To       string     `json:"to"`
	Type     string     `json:"type"`
	Priority string     `json:"priority,omitempty"`
	Thread   string     `json:"thread,omitempty"`
	ReplyTo  string     `json:"reply_to,omitempty"`
	Seq      uint64     `json:"seq"`
	Created  string     `json:"created"`
	Body     string     `json:"body"`
	Refs     []wire.Ref `json:"refs,omitempty"`
	Read     bool       `json:"read"`
	Muted    bool       `json:"muted,omitempty"`
	Direct   bool       `json:"direct,omitempty"`
}

// Inbox lists received messages, newest last.
func (n *Node) Inbox(a InboxArgs) ([]InboxMessage, error) {
	if a.Limit <= 0 || a.Limit > 1000 {
		a.Limit = 100
	}
	swarmID := ""
	if a.Swarm != "" {
		n.mu.Lock()
		s, err := n.resolve(a.Swarm)
		if err == nil {
			swarmID = s.state.ID
		}
		n.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	mutes, err := n.mutes()
	if err != nil {
		return nil, err
	}
	names := n.swarmNames()
	out := []InboxMessage{}
	err = n.st.View(func(tx *store.Tx) error {
		// Newest first, so Limit keeps the latest; reversed below.
		return tx.ScanReverse([]byte("i/"), func(k []byte, dec func(any) error) (bool, error) {
			id := string(k[2:])
			if a.After != "" && id <= a.After {
				return false, nil
			}
			// The read mark first: a key lookup, where decoding every
			// read item made `inbox --unread` on a big inbox crawl.
			read, err := tx.Has(store.Key("r", id))
			if err != nil {
				return false, err
			}
			if a.Unread && read {
				return true, nil
			}
			var it InboxItem
			if err := dec(&it); err != nil {
				return false, err
			}
			m := it.Msg
			if !a.Since.IsZero() && time.UnixMilli(m.Created).Before(a.Since) {
				return false, nil
			}
			if swarmID != "" && m.Swarm != swarmID {
				return true, nil
			}
			_, ms := mutes["s/"+m.Swarm]
			_, ma := mutes["a/"+m.From]
			muted := ms || ma
			if muted && !a.IncludeMuted {
				return true, nil
			}
			out = append(out, view(m, names, read, muted))
			return len(out) < a.Limit, nil
		})
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}

func view(m wire.Message, names map[string]string, read, muted bool) InboxMessage {
	return InboxMessage{ID: m.ID, Swarm: names[m.Swarm], SwarmID: m.Swarm, From: m.From, To: m.To,
		Type: m.Type, Priority: m.Priority, Thread: m.Thread, ReplyTo: m.ReplyTo, Seq: m.Seq,
		Created: time.UnixMilli(m.Created).UTC().Format(time.RFC3339Nano), Body: m.Body, Refs: m.Refs,
		Read: read, Muted: muted, Direct: m.To != wire.ToAll}
}

func (n *Node) swarmNames() map[string]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := make(map[string]string, len(n.swarms))
	for id, s := range n.swarms {
		m[id] = s.state.Settings.Name
	}
	return m
}

// Read marks messages read: the given IDs, or with all, every message
// (of one swarm, if given). It returns how many it marked.
func (n *Node) Read(ids []string, all bool, swarm string) (int, error) {
	if all {
		msgs, err := n.Inbox(InboxArgs{Swarm: swarm, Unread: true, Limit: 1000, IncludeMuted: true})
		if err != nil {
			return 0, err
		}
		ids = ids[:0]
		for _, m := range msgs {
			ids = append(ids, m.ID)
		}
	} else if len(ids) == 0 {
		return 0, Userf("say which messages to mark read (IDs), or all")
	}
	marked := 0
	err := n.st.Update(func(tx *store.Tx) error {
		for _, id := range ids {
			if err := wire.ValidID(id); err != nil {
				return Userf("%v", err)
			}
			ok, err := tx.Has(store.Key("i", id))
			if err != nil {
				return err
			}
			if !ok {
				return Userf("no message %s in the inbox", id)
			}
			if err := tx.Put(store.Key("r", id), n.now().UnixMilli()); err != nil {
				return err
			}
			marked++
		}
		return nil
	})
	return marked, err
}

// MuteArgs name what to mute: a swarm or an agent, for a while or for good.
type MuteArgs struct {
	Swarm string
	Agent string
	For   time.Duration
}

// MuteInfo describes a mute.
type MuteInfo struct {
	Kind  string `json:"kind"` // swarm or agent
	Name  string `json:"name"`
	Until string `json:"until,omitempty"`
	Muted bool   `json:"muted"`
}

func (n *Node) muteKey(a MuteArgs) ([]byte, MuteInfo, error) {
	switch {
	case (a.Swarm == "") == (a.Agent == ""):
		return nil, MuteInfo{}, Userf("name exactly one of a swarm (--swarm) or an agent (--agent)")
	case a.Swarm != "":
		n.mu.Lock()
		s, err := n.resolve(a.Swarm)
		n.mu.Unlock()
		if err != nil {
			return nil, MuteInfo{}, err
		}
		return store.Key("u", "s", s.state.ID), MuteInfo{Kind: "swarm", Name: s.state.Settings.Name}, nil
	default:
		if err := wire.ValidDomain(a.Agent); err != nil {
			return nil, MuteInfo{}, Userf("%v", err)
		}
		return store.Key("u", "a", a.Agent), MuteInfo{Kind: "agent", Name: a.Agent}, nil
	}
}

// Mute hides a swarm's or an agent's messages from the default inbox and
// from wakes. Muted messages are still stored; Unmute brings them back.
func (n *Node) Mute(a MuteArgs) (MuteInfo, error) {
	if a.For < 0 {
		return MuteInfo{}, Userf("mute duration must be positive")
	}
	key, info, err := n.muteKey(a)
	if err != nil {
		return MuteInfo{}, err
	}
	var until int64
	if a.For > 0 {
		t := n.now().Add(a.For)
		until, info.Until = t.UnixMilli(), t.UTC().Format(time.RFC3339)
	}
	info.Muted = true
	// until decides; the TTL only collects the key later (badger's TTLs
	// have one-second granularity, too coarse to decide with).
	gc := time.Duration(0)
	if a.For > 0 {
		gc = a.For + 2*time.Second
	}
	return info, n.st.Update(func(tx *store.Tx) error { return tx.PutTTL(key, until, gc) })
}

// Unmute lifts a mute.
func (n *Node) Unmute(a MuteArgs) (MuteInfo, error) {
	key, info, err := n.muteKey(a)
	if err != nil {
		return MuteInfo{}, err
	}
	return info, n.st.Update(func(tx *store.Tx) error { return tx.Delete(key) })
}

// mutes returns the active mutes by "s/<swarm>" or "a/<agent>".
func (n *Node) mutes() (map[string]int64, error) {
	out := map[string]int64{}
	now := n.now().UnixMilli()
	err := n.st.View(func(tx *store.Tx) error {
		return tx.Scan([]byte("u/"), nil, func(k []byte, dec func(any) error) (bool, error) {
			var until int64
			if err := dec(&until); err != nil {
				return false, err
			}
			if until == 0 || until > now {
				out[strings.TrimPrefix(string(k), "u/")] = until
			}
			return true, nil
		})
	})
	return out, err
}

// IsMuted reports whether a message from agent in swarm is muted.
func (n *Node) IsMuted(swarmID, agent string) bool {
	m, err := n.mutes()
	if err != nil {
		return false
	}
	_, s := m["s/"+swarmID]
	_, a := m["a/"+agent]
	return s || a
}

// Wait blocks until a new (unmuted) message arrives, or the timeout
// passes, and returns the new messages. New means after the message named
// by after (an ID from the inbox), or, without it, after what is there now.
// Arrival is this node's own order, so a sender's clock cannot hide a
// message from a caller looping on Wait.
func (n *Node) Wait(ctx context.Context, swarm string, timeout time.Duration, after string) ([]InboxMessage, error) {
	if timeout <= 0 || timeout > time.Hour {
		return nil, Userf("wait timeout must be in (0, 1h]")
	}
	var from uint64
	if after != "" {
		if err := wire.ValidID(after); err != nil {
			return nil, Userf("after: %v", err)
		}
		var it InboxItem
		if err := n.st.View(func(tx *store.Tx) error { return tx.Get(store.Key("i", after), &it) }); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, Userf("after: no message %s in the inbox", after)
			}
			return nil, err
		}
		from = it.Arrival
	} else {
		from = n.lastArrival()
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		ch := n.events.Wait()
		msgs, last, err := n.arrivedAfter(swarm, from)
		if err != nil || len(msgs) > 0 {
			return msgs, err
		}
		from = last
		select {
		case <-ch:
		case <-t.C:
			return []InboxMessage{}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-n.closed:
			return nil, ErrClosed
		}
	}
}

// arrivedAfter returns the unmuted messages (of one swarm, if given) that
// arrived after arrival number from, and the last arrival number seen.
func (n *Node) arrivedAfter(swarm string, from uint64) ([]InboxMessage, uint64, error) {
	swarmID := ""
	if swarm != "" {
		n.mu.Lock()
		s, err := n.resolve(swarm)
		if err == nil {
			swarmID = s.state.ID
		}
		n.mu.Unlock()
		if err != nil {
			return nil, from, err
		}
	}
	mutes, err := n.mutes()
	if err != nil {
		return nil, from, err
	}
	names := n.swarmNames()
	out := []InboxMessage{}
	last := from
	err = n.st.View(func(tx *store.Tx) error {
		return tx.Scan([]byte("a/"), arrivalKey(from), func(k []byte, dec func(any) error) (bool, error) {
			var id string
			if err := dec(&id); err != nil {
				return false, err
			}
			last = binary.BigEndian.Uint64(k[2:])
			var it InboxItem
			if err := tx.Get(store.Key("i", id), &it); err != nil {
				return false, err
			}
			_, ms := mutes["s/"+it.Msg.Swarm]
			_, ma := mutes["a/"+it.Msg.From]
			if ms || ma || (swarmID != "" && it.Msg.Swarm != swarmID) {
				return true, nil
			}
			read, err := tx.Has(store.Key("r", id))
			if err != nil {
				return false, err
			}
			out = append(out, view(it.Msg, names, read, false))
			return len(out) < 100, nil
		})
	})
	return out, last, err
}

func (n *Node) lastArrival() uint64 {
	var last uint64
	_ = n.st.View(func(tx *store.Tx) error {
		return tx.ScanReverse([]byte("a/"), func(k []byte, _ func(any) error) (bool, error) {
			if len(k) == 10 {
				last = binary.BigEndian.Uint64(k[2:])
			}
			return false, nil
		})
	})
	return last
}

// Status describes this node.
type Status struct {
	Domain      string `json:"domain"`
	Fingerprint string `json:"fingerprint"`
	Key         string `json:"key"`
	Advertise   string `json:"advertise"`
	Listening   string `json:"listening,omitempty"`
	Pin         string `json:"pin,omitempty"`
	Swarms      int    `json:"swarms"`
	Unread      int    `json:"unread"`
	Outbox      int    `json:"outbox"`
	Presence
}

// Status reports on this node.
func (n *Node) Status() (Status, error) {
	if n.done() {
		return Status{}, ErrClosed
	}
	unread, err := n.Inbox(InboxArgs{Unread: true, Limit: 1000})
	if err != nil && !errors.Is(err, store.ErrClosed) {
		return Status{}, err
	}
	n.mu.Lock()
	live := 0
	for _, s := range n.swarms {
		if !s.local.Left {
			live++
		}
	}
	n.mu.Unlock()
	return Status{Domain: n.cfg.Domain, Fingerprint: identity.Fingerprint(n.id.Public()), Key: n.id.KeyString(),
		Advertise: n.cfg.Advertise, Listening: n.Addr(), Pin: n.pin, Swarms: live, Unread: len(unread),
		Outbox: n.out.pending(), Presence: n.selfPresence()}, nil
}

// inboxKeep is how long a read message stays in the inbox; unread ones
// stay whatever their age. Config inbox_keep; default 30 days.
func (n *Node) inboxKeep() time.Duration { return n.cfg.InboxKeep.or(30 * 24 * time.Hour) }

// pruneInbox removes messages read more than keep ago, with their read
// marks and arrival entries, in batches. It reports how many went.
func (n *Node) pruneInbox(keep time.Duration) (int, error) {
	cutoff := n.now().Add(-keep).UnixMilli()
	type victim struct {
		id      string
		arrival uint64
	}
	var vs []victim
	err := n.st.View(func(tx *store.Tx) error {
		return tx.Scan([]byte("r/"), nil, func(k []byte, dec func(any) error) (bool, error) {
			var readAt int64
			if err := dec(&readAt); err != nil || readAt >= cutoff {
				return true, nil
			}
			id := string(k[2:])
			var it InboxItem
			if err := tx.Get(store.Key("i", id), &it); err != nil {
				return true, nil // a mark for an ID that is not here: leave it
			}
			vs = append(vs, victim{id, it.Arrival})
			return len(vs) < 100000, nil
		})
	})
	if err != nil {
		return 0, err
	}
	total := len(vs)
	for len(vs) > 0 {
		chunk := vs[:min(500, len(vs))]
		vs = vs[len(chunk):]
		err := n.st.UpdateLazy(func(tx *store.Tx) error {
			for _, v := range chunk {
				for _, k := range [][]byte{store.Key("i", v.id), store.Key("r", v.id), arrivalKey(v.arrival)} {
					if err := tx.Delete(k); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return total - len(vs) - len(chunk), err
		}
	}
	return total, nil
}

// pruneLoop prunes the inbox a minute after start, then hourly.
func (n *Node) pruneLoop() {
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-n.closed:
			return
		case <-t.C:
		}
		if c, err := n.pruneInbox(n.inboxKeep()); err != nil {
			n.log.Warn().Err(err).Msg("inbox prune failed")
		} else if c > 0 {
			n.log.Info().Int("removed", c).Msg("old read messages pruned from the inbox")
		}
		t.Reset(time.Hour)
	}
}
