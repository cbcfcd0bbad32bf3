package node

import (
	"sort"
	"strings"
	"time"

	"github.com/agent-swarm/agent-swarm/store"
)

// Lists of what this node holds for itself: the messages it sent, the
// invites it issued, the mutes it keeps (issue #16).

// SentArgs filter the list of sent messages.
type SentArgs struct {
	Swarm   string
	Pending bool // only messages some recipient has not acked yet
	Limit   int  // newest kept; 0 is 50
}

// SentMessage is a message this node sent, with its delivery state at
// each recipient. Body is this node's own text.
type SentMessage struct {
	ID         string     `json:"id"`
	ShortID    string     `json:"short_id,omitempty"`
	Swarm      string     `json:"swarm"`
	SwarmID    string     `json:"swarm_id"`
	To         string     `json:"to"`
	Type       string     `json:"type"`
	Event      string     `json:"event,omitempty"` // of a system message: what the node told its peers
	Thread     string     `json:"thread,omitempty"`
	Created    string     `json:"created"`
	Body       string     `json:"body"`
	Pending    int        `json:"pending"`
	Delivered  int        `json:"delivered"`
	Failed     int        `json:"failed"`
	Deliveries []Delivery `json:"deliveries"`
}

// Sent lists the messages this node sent, oldest first (the newest Limit
// of them), with each recipient's delivery state.
func (n *Node) Sent(a SentArgs) ([]SentMessage, error) {
	if a.Limit < 0 || a.Limit > 1000 {
		return nil, Userf("limit %d is outside [1, 1000]", a.Limit)
	}
	if a.Limit == 0 {
		a.Limit = 50
	}
	swarmID, err := n.swarmFilter(a.Swarm)
	if err != nil {
		return nil, err
	}
	names := n.swarmNames()
	out := []SentMessage{}
	err = n.st.View(func(tx *store.Tx) error {
		// Message IDs are UUIDv7: key order is sending order.
		if err := tx.ScanReverse([]byte("m/"), func(k []byte, dec func(any) error) (bool, error) {
			var sm sentMessage
			if err := dec(&sm); err != nil {
				return false, err
			}
			m, err := sm.message()
			if err != nil {
				return false, err
			}
			if swarmID != "" && m.Swarm != swarmID {
				return true, nil
			}
			s := SentMessage{ID: m.ID, Swarm: names[m.Swarm], SwarmID: m.Swarm, To: m.To, Type: m.Type, Event: m.Event, Thread: m.Thread,
				Created: time.UnixMilli(m.Created).UTC().Format(time.RFC3339Nano), Body: m.Body}
			if err := sentDeliveries(tx, &s); err != nil {
				return false, err
			}
			if a.Pending && s.Pending == 0 {
				return true, nil
			}
			if s.ShortID, err = shortID(tx, s.ID); err != nil {
				return false, err
			}
			out = append(out, s)
			return len(out) < a.Limit, nil
		}); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	for i := range out {
		n.nameDeliveries(out[i].Deliveries)
	}
	return out, nil
}

// sentDeliveries reads a sent message's delivery records and counts them.
func sentDeliveries(tx *store.Tx, s *SentMessage) error {
	s.Deliveries = []Delivery{}
	prefix := store.Key("d", s.ID, "")
	return tx.Scan(prefix, nil, func(k []byte, dec func(any) error) (bool, error) {
		var d Delivery
		if err := dec(&d); err != nil {
			return false, err
		}
		d.To = string(k[len(prefix):])
		switch d.Status {
		case Pending:
			s.Pending++
		case Delivered:
			s.Delivered++
		case Failed:
			s.Failed++
		}
		s.Deliveries = append(s.Deliveries, d)
		return true, nil
	})
}

// InviteEntry is an invite this node issued, as the master lists it. It
// never holds the token: the token is a bearer secret, shown once when
// issued.
type InviteEntry struct {
	ID       string `json:"id"`
	Swarm    string `json:"swarm"`
	SwarmID  string `json:"swarm_id"`
	Expires  string `json:"expires"`
	Uses     int    `json:"uses"`
	Used     int    `json:"used"`
	UsesLeft int    `json:"uses_left"`
	Invitee  string `json:"invitee,omitempty"`
	// State is active, expired, used up or revoked.
	State string `json:"state"`
}

// Invite states.
const (
	InviteActive  = "active"
	InviteExpired = "expired"
	InviteUsedUp  = "used up"
	InviteRevoked = "revoked"
)

// InviteList lists the invites this node issued (of one swarm, if
// given), soonest to expire first. Without all only active ones.
func (n *Node) InviteList(swarm string, all bool) ([]InviteEntry, error) {
	swarmID, err := n.swarmFilter(swarm)
	if err != nil {
		return nil, err
	}
	names := n.swarmNames()
	now := n.now().UnixMilli()
	out := []InviteEntry{}
	err = n.st.View(func(tx *store.Tx) error {
		return tx.Scan([]byte("v/"), nil, func(k []byte, dec func(any) error) (bool, error) {
			var r inviteRecord
			if err := dec(&r); err != nil {
				return false, err
			}
			if swarmID != "" && r.Swarm != swarmID {
				return true, nil
			}
			e := InviteEntry{ID: strings.TrimPrefix(string(k), "v/"), Swarm: names[r.Swarm], SwarmID: r.Swarm,
				Expires: time.UnixMilli(r.Expires).UTC().Format(time.RFC3339), Uses: r.Uses, Used: r.Used,
				UsesLeft: max(0, r.Uses-r.Used), Invitee: r.Invitee, State: inviteState(r, now)}
			if all || e.State == InviteActive {
				out = append(out, e)
			}
			return true, nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Expires < out[j].Expires })
	return out, err
}

func inviteState(r inviteRecord, now int64) string {
	switch {
	case r.Revoked:
		return InviteRevoked
	case r.Used >= r.Uses:
		return InviteUsedUp
	case r.Expires <= now:
		return InviteExpired
	}
	return InviteActive
}

// MuteList lists the mutes in force: swarms first, then agents, by name.
func (n *Node) MuteList() ([]MuteInfo, error) {
	names := n.swarmNames()
	now := n.now().UnixMilli()
	out := []MuteInfo{}
	err := n.st.View(func(tx *store.Tx) error {
		return tx.Scan([]byte("u/"), nil, func(k []byte, dec func(any) error) (bool, error) {
			var r muteRec
			if err := dec(&r); err != nil {
				return false, err
			}
			if r.Until != 0 && r.Until <= now {
				return true, nil // over; its key is collected later
			}
			m := MuteInfo{Name: r.Name, Muted: true}
			if r.Until != 0 {
				m.Until = time.UnixMilli(r.Until).UTC().Format(time.RFC3339)
			}
			rest := string(k[2:])
			switch {
			case strings.HasPrefix(rest, "s/"):
				m.Kind = "swarm"
				if name := names[rest[2:]]; name != "" {
					m.Name = name
				}
			case strings.HasPrefix(rest, "a/"):
				m.Kind, m.Fingerprint = "agent", fingerprintOf(rest[2:])
			default:
				return true, nil
			}
			out = append(out, m)
			return true, nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind == "swarm"
		}
		return out[i].Name < out[j].Name
	})
	return out, err
}
