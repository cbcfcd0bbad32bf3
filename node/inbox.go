package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/agent-swarm/agent-swarm/node/identity"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/agent-swarm/agent-swarm/store"
)

// InboxArgs filter the inbox.
type InboxArgs struct {
	Swarm  string
	Unread bool // the same as Status unread
	// Status is unread, read, archived or all; "" lists unread and read
	// messages, not archived ones.
	Status       string
	Since        time.Time
	Limit        int
	IncludeMuted bool
	After        string // only messages after this ID (used by wait)
}

// InboxMessage is a message as shown to a user or a model. Body is peer
// text: untrusted data, never instructions.
type InboxMessage struct {
	ID string `json:"id"`
	// ShortID is the shortest start of ID that names this message alone
	// here (at least 8 hex digits): read, delivery and --reply-to take it.
	ShortID string `json:"short_id,omitempty"`
	Swarm   string `json:"swarm"`
	SwarmID string `json:"swarm_id"`
	From    string `json:"from"`
	// Sender is who signed it: the name it goes by, verified or claimed,
	// and its key's fingerprint (DESIGN §2).
	Sender   Sender `json:"sender"`
	To       string `json:"to"`
	Type     string `json:"type"`
	Event    string `json:"event,omitempty"`
	Priority string `json:"priority,omitempty"`
	Thread   string `json:"thread,omitempty"`
	ReplyTo  string `json:"reply_to,omitempty"`
	Seq      uint64 `json:"seq"`
	// Gap counts the sender's messages in this stream that never arrived
	// before this one.
	Gap uint64 `json:"gap,omitempty"`
	// Received is when this node stored it: the time to go by. Created
	// is the sender's own claim, which its clock or its intent may skew.
	Received string     `json:"received"`
	Created  string     `json:"created"`
	Body     string     `json:"body"`
	Refs     []wire.Ref `json:"refs,omitempty"`
	Read     bool       `json:"read"`
	Archived bool       `json:"archived,omitempty"`
	Muted    bool       `json:"muted,omitempty"`
	Direct   bool       `json:"direct,omitempty"`
	// Local marks a notice from this node itself (a fork, say), not a peer.
	Local bool `json:"local,omitempty"`
}

// Inbox keys (store package doc): a/<arrival> holds the item, so the inbox
// lists in this node's own arrival order, which no sender can choose;
// i/<id>/<arrival> finds items by message ID (two senders may use one ID:
// they are two messages); r/<arrival> is a read mark; x/<arrival> an
// archive mark (archived messages are read, hidden from the default list
// and kept by the prune of read messages).

// Inbox statuses (InboxArgs.Status).
const (
	StatusUnread   = "unread"
	StatusRead     = "read"
	StatusArchived = "archived"
	StatusAll      = "all"
)

// InboxStatuses are the values of InboxArgs.Status.
var InboxStatuses = []string{StatusUnread, StatusRead, StatusArchived, StatusAll}

func archiveKey(arrival uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], arrival)
	return append([]byte("x/"), b[:]...)
}

// wants says whether a message read or archived as given is listed under
// status ("" for the default list).
func wants(status string, read, archived bool) bool {
	switch status {
	case StatusUnread:
		return !read
	case StatusRead:
		return read && !archived
	case StatusArchived:
		return archived
	case StatusAll:
		return true
	}
	return !archived
}

// inboxStatus checks a status and folds the older Unread flag into it.
func inboxStatus(a InboxArgs) (string, error) {
	if a.Status != "" && !contains(InboxStatuses, a.Status) {
		return "", Userf("status %q is not one of %s", a.Status, strings.Join(InboxStatuses, ", "))
	}
	if a.Unread {
		if a.Status != "" && a.Status != StatusUnread {
			return "", Userf("unread and status %s contradict each other: give one", a.Status)
		}
		return StatusUnread, nil
	}
	return a.Status, nil
}

func readKey(arrival uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], arrival)
	return append([]byte("r/"), b[:]...)
}

func idKey(id string, arrival uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], arrival)
	return append(store.Key("i", id, ""), b[:]...)
}

// putInbox stores an item under its arrival number and indexes its ID.
func (n *Node) putInbox(tx *store.Tx, it InboxItem) error {
	if err := tx.Put(arrivalKey(it.Arrival), it); err != nil {
		return err
	}
	return tx.Put(idKey(it.Msg.ID, it.Arrival), true)
}

// arrivalsOf lists the arrival numbers of the items with a message ID.
func arrivalsOf(tx *store.Tx, id string) ([]uint64, error) {
	var out []uint64
	prefix := store.Key("i", id, "")
	err := tx.Scan(prefix, nil, func(k []byte, _ func(any) error) (bool, error) {
		if len(k) == len(prefix)+8 {
			out = append(out, binary.BigEndian.Uint64(k[len(prefix):]))
		}
		return true, nil
	})
	return out, err
}

// inboxView is what listing needs to show items: swarm names, mutes,
// clashing names.
type inboxView struct {
	n       *Node
	names   map[string]string
	mutes   map[string]int64
	clash   map[string]bool
	masters map[string]string // swarm ID -> the master's key
}

func (n *Node) inboxView() (inboxView, error) {
	mutes, err := n.mutes()
	if err != nil {
		return inboxView{}, err
	}
	n.mu.Lock()
	clash := n.clashes()
	masters := make(map[string]string, len(n.swarms))
	for id, s := range n.swarms {
		masters[id] = s.state.MasterKey()
	}
	n.mu.Unlock()
	return inboxView{n: n, names: n.swarmNames(), mutes: mutes, clash: clash, masters: masters}, nil
}

func (v inboxView) muted(it *InboxItem) bool {
	key := it.Key
	if it.Local {
		if it.About == "" {
			return false // about this node itself, or a fork: always shown
		}
		key = it.About
	}
	_, ms := v.mutes["s/"+it.Msg.Swarm]
	_, ma := v.mutes["a/"+key]
	return ms || ma
}

// showMarked is show with the archive mark.
func (v inboxView) showMarked(it *InboxItem, read, archived bool) InboxMessage {
	im := v.show(it, read)
	im.Archived = archived
	return im
}

func (v inboxView) show(it *InboxItem, read bool) InboxMessage {
	m := it.Msg
	im := InboxMessage{ID: m.ID, Swarm: v.names[m.Swarm], SwarmID: m.Swarm, From: m.From, To: m.To,
		Type: m.Type, Event: m.Event, Priority: m.Priority, Thread: m.Thread, ReplyTo: m.ReplyTo, Seq: m.Seq, Gap: it.Gap,
		Received: time.UnixMilli(it.Received).UTC().Format(time.RFC3339Nano),
		Created:  time.UnixMilli(m.Created).UTC().Format(time.RFC3339Nano), Body: m.Body, Refs: m.Refs,
		Read: read, Muted: v.muted(it), Direct: m.To != wire.ToAll, Local: it.Local}
	if it.Local {
		im.Sender = Sender{Name: m.From, Fingerprint: fingerprintOf(it.Key), Identity: "self"}
		im.Direct = true
	} else {
		im.Sender = v.n.sender(m.From, it.Key, v.clash)
		im.Sender.Master = it.Key != "" && v.masters[m.Swarm] == it.Key
	}
	return im
}

// Inbox lists received messages in arrival order, newest last.
func (n *Node) Inbox(a InboxArgs) ([]InboxMessage, error) {
	if a.Limit < 0 || a.Limit > 1000 {
		return nil, Userf("limit %d is outside [1, 1000]", a.Limit)
	}
	if a.Limit == 0 {
		a.Limit = 100
	}
	status, err := inboxStatus(a)
	if err != nil {
		return nil, err
	}
	swarmID, err := n.swarmFilter(a.Swarm)
	if err != nil {
		return nil, err
	}
	v, err := n.inboxView()
	if err != nil {
		return nil, err
	}
	var after uint64
	if a.After != "" {
		if after, err = n.arrivalOf(a.After); err != nil {
			return nil, err
		}
	}
	out := []InboxMessage{}
	err = n.st.View(func(tx *store.Tx) error {
		// Newest first, so Limit keeps the latest; reversed below.
		if err := tx.ScanReverse([]byte("a/"), func(k []byte, dec func(any) error) (bool, error) {
			if len(k) != 10 {
				return true, nil
			}
			arrival := binary.BigEndian.Uint64(k[2:])
			if arrival <= after {
				return false, nil
			}
			// The read mark first: a key lookup, where decoding every
			// read item made `inbox --unread` on a big inbox crawl.
			read, archived, err := marks(tx, arrival)
			if err != nil {
				return false, err
			}
			if !wants(status, read, archived) {
				return true, nil
			}
			var it InboxItem
			if err := dec(&it); err != nil {
				return false, err
			}
			if !a.Since.IsZero() && time.UnixMilli(it.Received).Before(a.Since) {
				return false, nil
			}
			if swarmID != "" && it.Msg.Swarm != swarmID {
				return true, nil
			}
			if v.muted(&it) && !a.IncludeMuted {
				return true, nil
			}
			out = append(out, v.showMarked(&it, read, archived))
			return len(out) < a.Limit, nil
		}); err != nil {
			return err
		}
		return shortIDs(tx, out)
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}

// marks reads an item's read and archive marks: key lookups, where
// decoding every read item made `inbox --unread` on a big inbox crawl.
// Only read items are looked up for an archive mark (archiving marks read).
func marks(tx *store.Tx, arrival uint64) (read, archived bool, err error) {
	if read, err = tx.Has(readKey(arrival)); err != nil || !read {
		return read, false, err
	}
	archived, err = tx.Has(archiveKey(arrival))
	return read, archived, err
}

// shortIDs fills in each message's ShortID.
func shortIDs(tx *store.Tx, ms []InboxMessage) error {
	for i := range ms {
		var err error
		if ms[i].ShortID, err = shortID(tx, ms[i].ID); err != nil {
			return err
		}
	}
	return nil
}

// swarmFilter resolves an optional swarm reference to its ID.
func (n *Node) swarmFilter(ref string) (string, error) {
	if ref == "" {
		return "", nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	s, err := n.resolve(ref)
	if err != nil {
		return "", err
	}
	return s.state.ID, nil
}

// arrivalOf is the latest arrival number of a message ID in the inbox.
func (n *Node) arrivalOf(ref string) (uint64, error) {
	id, err := n.resolveID("after", ref, "in the inbox", inInbox)
	if err != nil {
		return 0, err
	}
	var arr []uint64
	if err := n.st.View(func(tx *store.Tx) (err error) { arr, err = arrivalsOf(tx, id); return err }); err != nil {
		return 0, err
	}
	if len(arr) == 0 {
		return 0, NotFoundf("after: no message %s in the inbox", id)
	}
	return arr[len(arr)-1], nil
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

// resolveIDs resolves inbox message IDs or prefixes of them.
func (n *Node) resolveIDs(refs []string) ([]string, error) {
	out := make([]string, len(refs))
	for i, r := range refs {
		id, err := n.resolveID("", r, "in the inbox", inInbox)
		if err != nil {
			return nil, err
		}
		out[i] = id
	}
	return out, nil
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
	ids, err := n.resolveIDs(ids)
	if err != nil {
		return 0, err
	}
	marked := 0
	// Essential: marking read must work near a full disk (store doc).
	err = n.st.UpdateEssential(func(tx *store.Tx) error {
		marked = 0
		cs := newCounters(tx)
		for _, id := range ids {
			arr, err := arrivalsOf(tx, id)
			if err != nil {
				return err
			}
			if len(arr) == 0 {
				return NotFoundf("no message %s in the inbox", id)
			}
			for _, a := range arr {
				read, err := tx.Has(readKey(a))
				if err != nil {
					return err
				}
				if read {
					continue
				}
				var it InboxItem
				if err := tx.Get(arrivalKey(a), &it); err == nil {
					if err := releaseItem(cs, &it, false); err != nil {
						return err
					}
				} else if !errors.Is(err, store.ErrNotFound) {
					return err
				}
				if err := tx.Put(readKey(a), n.now().UnixMilli()); err != nil {
					return err
				}
			}
			marked++
		}
		return cs.flush()
	})
	return marked, err
}

// DeleteArgs say which inbox messages to delete.
type DeleteArgs struct {
	IDs      []string
	All      bool   // every message (of Swarm, if given)
	Swarm    string // with All: only this swarm's
	ReadOnly bool   // only messages already read
}

// Delete removes inbox messages (their a/, r/ and i/ entries) and gives
// their unread bytes back to the sender's quota. It works near a full
// disk (store.UpdateEssential). It returns how many it deleted.
func (n *Node) Delete(a DeleteArgs) (int, error) {
	if a.All == (len(a.IDs) > 0) {
		return 0, Userf("say which messages to delete (IDs), or all")
	}
	if a.Swarm != "" && !a.All {
		return 0, Userf("--swarm goes with --all")
	}
	arrivals, err := n.selectArrivals(a.IDs, a.All, a.Swarm)
	if err != nil {
		return 0, err
	}
	deleted, err := n.removeItems(arrivals, a.ReadOnly, n.st.UpdateEssential)
	if err != nil {
		return deleted, err
	}
	if deleted > 0 {
		n.log.Info().Int("deleted", deleted).Msg("inbox messages deleted")
	}
	return deleted, nil
}

// selectArrivals lists the arrival numbers of the messages with the given
// IDs (every copy), or with all every message (of one swarm, if given).
func (n *Node) selectArrivals(refs []string, all bool, swarm string) ([]uint64, error) {
	ids, err := n.resolveIDs(refs)
	if err != nil {
		return nil, err
	}
	swarmID, err := n.swarmFilter(swarm)
	if err != nil {
		return nil, err
	}
	var arrivals []uint64
	err = n.st.View(func(tx *store.Tx) error {
		if !all {
			for _, id := range ids {
				arr, err := arrivalsOf(tx, id)
				if err != nil {
					return err
				}
				if len(arr) == 0 {
					return NotFoundf("no message %s in the inbox", id)
				}
				arrivals = append(arrivals, arr...)
			}
			return nil
		}
		return tx.Scan([]byte("a/"), nil, func(k []byte, dec func(any) error) (bool, error) {
			if len(k) != 10 {
				return true, nil
			}
			if swarmID != "" {
				var it InboxItem
				if err := dec(&it); err != nil || it.Msg.Swarm != swarmID {
					return err == nil, err
				}
			}
			arrivals = append(arrivals, binary.BigEndian.Uint64(k[2:]))
			return true, nil
		})
	})
	return arrivals, err
}

// ArchiveArgs say which inbox messages to archive (or bring back).
type ArchiveArgs struct {
	IDs   []string
	All   bool   // every message (of Swarm, if given)
	Swarm string // with All: only this swarm's
	// ReadOnly: only messages already read (with All: archive what was
	// dealt with, leave what was not).
	ReadOnly bool
	Undo     bool // unarchive: the messages show in the default list again
}

// Archive hides messages from the default inbox list and keeps them: an
// archived message is read (its sender's quota is freed), listed with
// status archived or all, and never pruned as old read messages are.
// With Undo it brings them back (they stay read). It returns how many
// changed. Like read marks it works near a full disk.
func (n *Node) Archive(a ArchiveArgs) (int, error) {
	verb := "archive"
	if a.Undo {
		verb = "unarchive"
	}
	if a.All == (len(a.IDs) > 0) {
		return 0, Userf("say which messages to %s (IDs), or all", verb)
	}
	if a.Swarm != "" && !a.All {
		return 0, Userf("--swarm goes with --all")
	}
	arrivals, err := n.selectArrivals(a.IDs, a.All, a.Swarm)
	if err != nil {
		return 0, err
	}
	changed := 0
	for len(arrivals) > 0 {
		chunk := arrivals[:min(500, len(arrivals))]
		arrivals = arrivals[len(chunk):]
		c := 0
		err := n.st.UpdateEssential(func(tx *store.Tx) (err error) {
			c, err = n.archiveChunk(tx, chunk, a)
			return err
		})
		if err != nil {
			return changed, err
		}
		changed += c
	}
	return changed, nil
}

// archiveChunk archives (or unarchives) items in one transaction, marking
// unread ones read first and giving back what they held of the quotas.
func (n *Node) archiveChunk(tx *store.Tx, chunk []uint64, a ArchiveArgs) (int, error) {
	c := 0
	cs := newCounters(tx)
	now := n.now().UnixMilli()
	for _, arr := range chunk {
		var it InboxItem
		if err := tx.Get(arrivalKey(arr), &it); errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return 0, err
		}
		read, archived, err := marks(tx, arr)
		if err != nil {
			return 0, err
		}
		switch {
		case a.Undo:
			if !archived {
				continue
			}
			err = tx.Delete(archiveKey(arr))
		case archived, a.ReadOnly && !read:
			continue
		default:
			if !read {
				if err := releaseItem(cs, &it, false); err != nil {
					return 0, err
				}
				if err := tx.Put(readKey(arr), now); err != nil {
					return 0, err
				}
			}
			err = tx.Put(archiveKey(arr), now)
		}
		if err != nil {
			return 0, err
		}
		c++
	}
	return c, cs.flush()
}

// InboxCount is how many messages the inbox holds, by status. Muted
// counts the messages of muted swarms and agents, which the others leave
// out unless asked to include them.
type InboxCount struct {
	Unread   int `json:"unread"`
	Read     int `json:"read"` // read, not archived
	Archived int `json:"archived"`
	Total    int `json:"total"`
	Muted    int `json:"muted"`
}

// Count counts inbox messages by status (of one swarm, if given).
func (n *Node) Count(swarm string, includeMuted bool) (InboxCount, error) {
	var c InboxCount
	swarmID, err := n.swarmFilter(swarm)
	if err != nil {
		return c, err
	}
	v, err := n.inboxView()
	if err != nil {
		return c, err
	}
	err = n.st.View(func(tx *store.Tx) error {
		return tx.Scan([]byte("a/"), nil, func(k []byte, dec func(any) error) (bool, error) {
			if len(k) != 10 {
				return true, nil
			}
			var it InboxItem
			if err := dec(&it); err != nil {
				return false, err
			}
			if swarmID != "" && it.Msg.Swarm != swarmID {
				return true, nil
			}
			if v.muted(&it) {
				c.Muted++
				if !includeMuted {
					return true, nil
				}
			}
			read, archived, err := marks(tx, binary.BigEndian.Uint64(k[2:]))
			if err != nil {
				return false, err
			}
			switch {
			case archived:
				c.Archived++
			case read:
				c.Read++
			default:
				c.Unread++
			}
			c.Total++
			return true, nil
		})
	})
	return c, err
}

// MuteArgs name what to mute: a swarm or an agent, for a while or for good.
type MuteArgs struct {
	Swarm string
	Agent string
	For   time.Duration
}

// MuteInfo describes a mute.
type MuteInfo struct {
	Kind        string `json:"kind"` // swarm or agent
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint,omitempty"` // an agent's key
	Until       string `json:"until,omitempty"`
	Muted       bool   `json:"muted"`
}

// muteRec is a mute (u/s/<swarm> or u/a/<agent key>): until when (0: for
// good) and the name it was given under, for people.
type muteRec struct {
	Until int64  `json:"until"`
	Name  string `json:"name"`
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
		// An agent is its key: a mute holds the key, so another agent
		// taking the same name elsewhere is not muted with it, and a
		// name two keys share is refused until the user says which.
		m, err := n.agentAnywhere(a.Agent)
		if err != nil {
			if key, name, ok := n.mutedAgent(a.Agent); ok {
				return store.Key("u", "a", key), MuteInfo{Kind: "agent", Name: name, Fingerprint: fingerprintOf(key)}, nil
			}
			return nil, MuteInfo{}, err
		}
		return store.Key("u", "a", m.Key), MuteInfo{Kind: "agent", Name: m.Domain, Fingerprint: fingerprintOf(m.Key)}, nil
	}
}

// mutedAgent finds an existing agent mute by name or fingerprint, so an
// agent that left every shared swarm can still be unmuted.
func (n *Node) mutedAgent(ref string) (key, name string, ok bool) {
	_ = n.st.View(func(tx *store.Tx) error {
		return tx.Scan([]byte("u/a/"), nil, func(k []byte, dec func(any) error) (bool, error) {
			var r muteRec
			if dec(&r) != nil {
				return true, nil
			}
			kk := strings.TrimPrefix(string(k), "u/a/")
			if matches(ref, wire.Member{Domain: r.Name, Key: kk}) {
				key, name, ok = kk, r.Name, true
				return false, nil
			}
			return true, nil
		})
	})
	return key, name, ok
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
	return info, n.st.Update(func(tx *store.Tx) error { return tx.PutTTL(key, muteRec{Until: until, Name: info.Name}, gc) })
}

// Unmute lifts a mute.
func (n *Node) Unmute(a MuteArgs) (MuteInfo, error) {
	key, info, err := n.muteKey(a)
	if err != nil {
		return MuteInfo{}, err
	}
	return info, n.st.Update(func(tx *store.Tx) error { return tx.Delete(key) })
}

// mutes returns the active mutes by "s/<swarm>" or "a/<agent key>".
func (n *Node) mutes() (map[string]int64, error) {
	out := map[string]int64{}
	now := n.now().UnixMilli()
	err := n.st.View(func(tx *store.Tx) error {
		return tx.Scan([]byte("u/"), nil, func(k []byte, dec func(any) error) (bool, error) {
			var r muteRec
			if err := dec(&r); err != nil {
				return false, err
			}
			if r.Until == 0 || r.Until > now {
				out[strings.TrimPrefix(string(k), "u/")] = r.Until
			}
			return true, nil
		})
	})
	return out, err
}

// IsMuted reports whether a message from the agent with key in a swarm
// is muted.
func (n *Node) IsMuted(swarmID, key string) bool {
	m, err := n.mutes()
	if err != nil {
		return false
	}
	_, s := m["s/"+swarmID]
	_, a := m["a/"+key]
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
		var err error
		if from, err = n.arrivalOf(after); err != nil {
			return nil, err
		}
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
	swarmID, err := n.swarmFilter(swarm)
	if err != nil {
		return nil, from, err
	}
	v, err := n.inboxView()
	if err != nil {
		return nil, from, err
	}
	out := []InboxMessage{}
	last := from
	err = n.st.View(func(tx *store.Tx) error {
		if err := tx.Scan([]byte("a/"), arrivalKey(from), func(k []byte, dec func(any) error) (bool, error) {
			if len(k) != 10 {
				return true, nil
			}
			last = binary.BigEndian.Uint64(k[2:])
			var it InboxItem
			if err := dec(&it); err != nil {
				return false, err
			}
			if v.muted(&it) || (swarmID != "" && it.Msg.Swarm != swarmID) {
				return true, nil
			}
			read, archived, err := marks(tx, last)
			if err != nil {
				return false, err
			}
			out = append(out, v.showMarked(&it, read, archived))
			return len(out) < 100, nil
		}); err != nil {
			return err
		}
		return shortIDs(tx, out)
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
	Serves      string `json:"serves,omitempty"` // the listener's protocols (behind Angie: HTTP/1.1 on loopback)
	Pin         string `json:"pin,omitempty"`
	Swarms      int    `json:"swarms"`
	Unread      int    `json:"unread"`
	Outbox      int    `json:"outbox"`
	// Forks names each swarm whose log this node has proof forked, and why.
	Forks []string `json:"forks,omitempty"`
	// Succession is each swarm's succession state (issue #19).
	Succession []SuccessionInfo `json:"succession,omitempty"`
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
	var forks []string
	for _, s := range n.swarms {
		if !s.local.Left {
			live++
		}
		if s.local.Fork != "" {
			forks = append(forks, fmt.Sprintf("%s (%s): %s", s.state.Settings.Name, s.state.ID, s.local.Fork))
		}
	}
	n.mu.Unlock()
	sort.Strings(forks)
	succ, _ := n.Succession("")
	return Status{Succession: succ, Domain: n.cfg.Domain, Fingerprint: identity.Fingerprint(n.id.Public()), Key: n.id.KeyString(),
		Advertise: n.cfg.Advertise, Listening: n.Addr(), Serves: n.serves(), Pin: n.pin, Swarms: live, Unread: len(unread),
		Outbox: n.out.pending(), Forks: forks, Presence: n.selfPresence()}, nil
}

// serves names the protocols of the node's own listener.
func (n *Node) serves() string {
	switch {
	case n.cfg.BehindProxy:
		return "HTTP/1.1, loopback only: Angie serves peers HTTP/3 + HTTPS"
	case n.cfg.NoQUIC:
		return "HTTPS only, no QUIC"
	}
	return "HTTP/3 + HTTPS"
}

// inboxKeep is how long a read message stays in the inbox; unread ones
// stay whatever their age. Config inbox_keep; default 30 days.
func (n *Node) inboxKeep() time.Duration { return n.cfg.InboxKeep.or(30 * 24 * time.Hour) }

// pruneInbox removes messages read more than keep ago, with their read
// marks and arrival entries, in batches. It reports how many went.
func (n *Node) pruneInbox(keep time.Duration) (int, error) {
	cutoff := n.now().Add(-keep).UnixMilli()
	var vs []uint64
	err := n.st.View(func(tx *store.Tx) error {
		return tx.Scan([]byte("r/"), nil, func(k []byte, dec func(any) error) (bool, error) {
			var readAt int64
			if len(k) != 10 || dec(&readAt) != nil || readAt >= cutoff {
				return true, nil
			}
			arr := binary.BigEndian.Uint64(k[2:])
			if kept, err := tx.Has(archiveKey(arr)); err != nil || kept {
				return err == nil, err // archived: kept until deleted
			}
			vs = append(vs, arr)
			return len(vs) < 100000, nil
		})
	})
	if err != nil {
		return 0, err
	}
	// Lazy: a prune lost in a crash is simply done again.
	return n.removeItems(vs, true, n.st.UpdateLazyEssential)
}

// removeItems deletes inbox items by arrival number (with their read marks
// and ID index entries), in commits of 500, giving back what unread ones
// held of the quotas. With readOnly it leaves unread items. Items gone
// meanwhile are skipped. It returns how many it removed.
func (n *Node) removeItems(arrivals []uint64, readOnly bool, update func(func(*store.Tx) error) error) (int, error) {
	removed := 0
	for len(arrivals) > 0 {
		chunk := arrivals[:min(500, len(arrivals))]
		arrivals = arrivals[len(chunk):]
		c := 0
		err := update(func(tx *store.Tx) error {
			c = 0
			cs := newCounters(tx)
			for _, arr := range chunk {
				var it InboxItem
				if err := tx.Get(arrivalKey(arr), &it); errors.Is(err, store.ErrNotFound) {
					continue
				} else if err != nil {
					return err
				}
				read, err := tx.Has(readKey(arr))
				if err != nil {
					return err
				}
				if readOnly && !read {
					continue
				}
				if err := releaseItem(cs, &it, read); err != nil {
					return err
				}
				for _, k := range [][]byte{arrivalKey(arr), readKey(arr), archiveKey(arr), idKey(it.Msg.ID, arr)} {
					if err := tx.Delete(k); err != nil {
						return err
					}
				}
				c++
			}
			return cs.flush()
		})
		if err != nil {
			return removed, err
		}
		removed += c
	}
	return removed, nil
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
