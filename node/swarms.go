package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/agent-swarm/agent-swarm/node/membership"
	"github.com/agent-swarm/agent-swarm/node/transport"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/agent-swarm/agent-swarm/store"
	"github.com/google/uuid"
)

func logKey(swarm string, index uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], index)
	return append(store.Key("l", swarm, ""), b[:]...)
}

// loadSwarms replays every stored log, checking each chain again.
func (n *Node) loadSwarms() error {
	logs := map[string][]wire.Signed{}
	locals := map[string]localSwarm{}
	err := n.st.View(func(tx *store.Tx) error {
		if err := tx.Scan([]byte("l/"), nil, func(k []byte, dec func(any) error) (bool, error) {
			parts := strings.SplitN(string(k), "/", 3)
			var s wire.Signed
			if err := dec(&s); err != nil {
				return false, err
			}
			logs[parts[1]] = append(logs[parts[1]], s)
			return true, nil
		}); err != nil {
			return err
		}
		return tx.Scan([]byte("w/"), nil, func(k []byte, dec func(any) error) (bool, error) {
			var l localSwarm
			if err := dec(&l); err != nil {
				return false, err
			}
			locals[strings.TrimPrefix(string(k), "w/")] = l
			return true, nil
		})
	})
	if err != nil {
		return err
	}
	for id, recs := range logs {
		st, err := membership.Replay(recs)
		if err != nil {
			return fmt.Errorf("swarm %s: stored log fails validation: %w", id, err)
		}
		n.swarms[id] = &swarm{state: st, local: locals[id]}
	}
	return nil
}

// resolve finds a swarm by ID or by name among the swarms this node is in.
// Caller holds n.mu.
func (n *Node) resolve(ref string) (*swarm, error) {
	if ref == "" {
		var live []*swarm
		for _, s := range n.swarms {
			if !s.local.Left {
				live = append(live, s)
			}
		}
		if len(live) == 1 {
			return live[0], nil
		}
		return nil, Userf("say which swarm (--swarm NAME or ID): this node is in %d", len(live))
	}
	if s, ok := n.swarms[ref]; ok {
		return s, nil
	}
	var found []*swarm
	for _, s := range n.swarms {
		if s.state.Settings.Name == ref {
			found = append(found, s)
		}
	}
	// Prefer a swarm this node is still in over one it left.
	if len(found) > 1 {
		var live []*swarm
		for _, s := range found {
			if !s.local.Left {
				live = append(live, s)
			}
		}
		if len(live) > 0 {
			found = live
		}
	}
	switch len(found) {
	case 0:
		return nil, NotFoundf("unknown swarm %q: `swarm list` shows the swarms this node is in", ref)
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, s := range found {
		ids[i] = s.state.ID
	}
	sort.Strings(ids)
	return nil, Userf("swarm name %q is ambiguous: use one of the IDs %s", ref, strings.Join(ids, ", "))
}

func (n *Node) live(ref string) (*swarm, error) {
	s, err := n.resolve(ref)
	if err != nil {
		return nil, err
	}
	if s.local.Left {
		why := "left"
		if s.local.Reason == wire.ReasonKick {
			why = "was kicked from"
		}
		return nil, Userf("this node %s swarm %q", why, s.state.Settings.Name)
	}
	return s, nil
}

// SwarmInfo describes a swarm to a user.
type SwarmInfo struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Master   string `json:"master"`
	IsMaster bool   `json:"is_master"`
	Members  int    `json:"members"`
	Head     uint64 `json:"head"`
	Repo     string `json:"repo,omitempty"`
	Muted    bool   `json:"muted,omitempty"`
	Left     bool   `json:"left,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// MasterFingerprint is the master's key: the role is held by a key.
	MasterFingerprint string `json:"master_fingerprint"`
	// Fork: this node holds proof that the swarm's log forked, and why.
	Fork string `json:"fork,omitempty"`
}

// info describes a swarm; one this node left is shown as it last knew
// it, without this node: a node that left hears no more records, so its
// copy of the log may still name it.
func (n *Node) info(s *swarm) SwarmInfo {
	members := len(s.state.Members)
	if _, in := s.state.Member(n.key()); in && s.local.Left {
		members--
	}
	return SwarmInfo{
		ID: s.state.ID, Name: s.state.Settings.Name, Master: s.state.Master,
		MasterFingerprint: fingerprintOf(s.state.MasterKey()),
		IsMaster:          n.isMaster(s) && !s.local.Left, Members: members,
		Head: s.state.Head.Index, Repo: s.state.Settings.Repo,
		Left: s.local.Left, Reason: s.local.Reason, Fork: s.local.Fork,
	}
}

// isMaster reports whether this node's key holds the master role.
func (n *Node) isMaster(s *swarm) bool { return s.state.MasterKey() == n.key() }

// List returns the swarms this node is or was in.
func (n *Node) List() ([]SwarmInfo, error) {
	n.mu.Lock()
	out := make([]SwarmInfo, 0, len(n.swarms))
	for _, s := range n.swarms {
		out = append(out, n.info(s))
	}
	n.mu.Unlock()
	mutes, err := n.mutes()
	if err != nil {
		return nil, err
	}
	for i := range out {
		_, out[i].Muted = mutes["s/"+out[i].ID]
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Left != out[j].Left {
			return !out[i].Left
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// CreateArgs are the arguments of Create.
type CreateArgs struct {
	Name string
	Repo string
}

// Create makes a new swarm with this node as master.
func (n *Node) Create(a CreateArgs) (SwarmInfo, error) {
	set := &wire.Settings{Name: a.Name, Repo: a.Repo}
	if err := set.Check(); err != nil {
		return SwarmInfo{}, Userf("%v", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, s := range n.swarms {
		if s.state.Settings.Name == a.Name && !s.local.Left {
			return SwarmInfo{}, Userf("this node is already in a swarm named %q (%s)", a.Name, s.state.ID)
		}
	}
	me := n.self()
	rec := wire.Record{V: wire.Version, Index: 0, Type: wire.RecCreate, Time: n.now().UnixMilli(),
		Member: &me, Settings: set, Nonce: uuid.NewString()}
	sg, err := wire.SignJSON(wire.PurposeRecord, me.Key, n.id.Key, rec)
	if err != nil {
		return SwarmInfo{}, err
	}
	st, err := membership.New(sg)
	if err != nil {
		return SwarmInfo{}, err
	}
	s := &swarm{state: st, local: localSwarm{Joined: rec.Time}}
	if err := n.st.Update(func(tx *store.Tx) error {
		if err := tx.Put(logKey(st.ID, 0), sg); err != nil {
			return err
		}
		if err := tx.Put(noticeKey(st.ID), st.Head.Index); err != nil {
			return err
		}
		return tx.Put(store.Key("w", st.ID), s.local)
	}); err != nil {
		return SwarmInfo{}, err
	}
	n.swarms[st.ID] = s
	n.publish(Event{Kind: EventSwarms, Swarm: st.ID, SwarmName: st.Settings.Name})
	return n.info(s), nil
}

// appendRecord signs rec as master, checks it against a copy of the state,
// stores it, swaps the state in, and pushes it to every member (and to a
// removed one, so it learns). Caller holds n.mu.
func (n *Node) appendRecord(s *swarm, rec wire.Record, extra func(*store.Tx) error) error {
	if !n.isMaster(s) {
		return Userf("only the master (%s) can change the membership of %q", s.state.Master, s.state.Settings.Name)
	}
	return n.signRecord(s, rec, extra)
}

// signRecord signs rec with this node's key and appends it as
// appendRecord does: as master, or as the candidate of a succession
// (the only record a member signs). Caller holds n.mu.
func (n *Node) signRecord(s *swarm, rec wire.Record, extra func(*store.Tx) error) error {
	rec.V, rec.Swarm, rec.Index, rec.Prev = wire.Version, s.state.ID, s.state.Head.Index+1, s.state.Head.Hash
	rec.Time = n.now().UnixMilli()
	sg, err := wire.SignJSON(wire.PurposeRecord, n.id.KeyString(), n.id.Key, rec)
	if err != nil {
		return err
	}
	next := s.state.Clone()
	if err := next.Apply(sg); err != nil {
		return Userf("%v", err)
	}
	var skip func(string) bool
	if rec.Type == wire.RecAdd {
		// The new member gets the whole log in the join reply.
		skip = func(k string) bool { return k == rec.Member.Key }
	}
	recipients := recipients(next, n.key(), skip)
	if rec.Type == wire.RecRemove {
		// The removed agent hears of its removal too.
		recipients = append(recipients, rcpt(next.ID, s.state.Members[rec.Agent].Key))
	}
	env, msg, err := n.envelope(next, sendSpec{To: wire.ToAll, Type: wire.TypeSystem, Event: wire.EventLog, Records: []wire.Signed{sg}})
	if err != nil {
		return err
	}
	err = n.st.Update(func(tx *store.Tx) error {
		if err := tx.Put(logKey(s.state.ID, rec.Index), sg); err != nil {
			return err
		}
		if extra != nil {
			if err := extra(tx); err != nil {
				return err
			}
		}
		return n.out.enqueue(tx, env, msg, "", recipients)
	})
	if err != nil {
		return err
	}
	s.state = next
	n.out.kick(recipients, msg.ID)
	id := next.ID
	n.loop(func() { n.noticeLog(id) }) // a join or a leave this node recorded for another
	return nil
}

// InviteArgs are the arguments of Invite.
type InviteArgs struct {
	Swarm   string
	TTL     time.Duration
	Uses    int
	Invitee string
}

// InviteInfo is an issued invite.
type InviteInfo struct {
	Token   string `json:"token"`
	ID      string `json:"id"`
	Swarm   string `json:"swarm"`
	Expires string `json:"expires"`
	Uses    int    `json:"uses"`
	Invitee string `json:"invitee,omitempty"`
}

// inviteRecord is the master's own count of an invite (v/<id>).
type inviteRecord struct {
	Swarm   string `json:"swarm"`
	Expires int64  `json:"expires"`
	Uses    int    `json:"uses"`
	Used    int    `json:"used"`
	Revoked bool   `json:"revoked,omitempty"`
	Invitee string `json:"invitee,omitempty"`
}

// Invite issues an invite token for a swarm this node is master of.
func (n *Node) Invite(a InviteArgs) (InviteInfo, error) {
	if a.TTL == 0 {
		a.TTL = 24 * time.Hour
	}
	if a.Uses == 0 {
		a.Uses = 1
	}
	if a.TTL < 0 || a.TTL > 30*24*time.Hour {
		return InviteInfo{}, Userf("invite lifetime %s is outside (0, 720h]", a.TTL)
	}
	if a.Uses < 0 || a.Uses > 1000 {
		return InviteInfo{}, Userf("invite uses %d is outside [1, 1000]", a.Uses)
	}
	if a.Invitee != "" {
		if err := wire.ValidDomain(a.Invitee); err != nil {
			return InviteInfo{}, Userf("invitee: %v", err)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	s, err := n.live(a.Swarm)
	if err != nil {
		return InviteInfo{}, err
	}
	if !n.isMaster(s) {
		return InviteInfo{}, Userf("only the master (%s) can invite to %q", s.state.Master, s.state.Settings.Name)
	}
	if a.Invitee != "" && s.state.IsMember(a.Invitee) {
		return InviteInfo{}, Userf("%s is already a member of %q", a.Invitee, s.state.Settings.Name)
	}
	exp := n.now().Add(a.TTL)
	inv := wire.Invite{V: wire.Version, ID: uuid.NewString(), Swarm: s.state.ID, Name: s.state.Settings.Name,
		Master: n.self(), Expires: exp.UnixMilli(), Uses: a.Uses, Invitee: a.Invitee, IssuedAt: s.state.Head.Index}
	sg, err := wire.SignJSON(wire.PurposeToken, n.id.KeyString(), n.id.Key, inv)
	if err != nil {
		return InviteInfo{}, err
	}
	if err := n.st.Update(func(tx *store.Tx) error {
		return tx.Put(store.Key("v", inv.ID), inviteRecord{Swarm: inv.Swarm, Expires: inv.Expires, Uses: a.Uses, Invitee: a.Invitee})
	}); err != nil {
		return InviteInfo{}, err
	}
	return InviteInfo{Token: wire.EncodeToken(sg), ID: inv.ID, Swarm: s.state.Settings.Name,
		Expires: exp.UTC().Format(time.RFC3339), Uses: a.Uses, Invitee: a.Invitee}, nil
}

// InviteRevoke revokes an invite by ID (or by its whole token).
func (n *Node) InviteRevoke(ref string) (InviteInfo, error) {
	id := strings.TrimSpace(ref)
	if strings.HasPrefix(id, "swarm1.") {
		inv, _, err := wire.ParseToken(id, time.Time{})
		if err != nil {
			return InviteInfo{}, Userf("%v", err)
		}
		id = inv.ID
	}
	if err := wire.ValidID(id); err != nil {
		return InviteInfo{}, Userf("%v", err)
	}
	var rec inviteRecord
	err := n.st.Update(func(tx *store.Tx) error {
		if err := tx.Get(store.Key("v", id), &rec); errors.Is(err, store.ErrNotFound) {
			return NotFoundf("no invite %s was issued by this node", id)
		} else if err != nil {
			return err
		}
		rec.Revoked = true
		return tx.Put(store.Key("v", id), rec)
	})
	if err != nil {
		return InviteInfo{}, err
	}
	return InviteInfo{ID: id, Swarm: rec.Swarm, Expires: time.UnixMilli(rec.Expires).UTC().Format(time.RFC3339), Uses: rec.Uses, Invitee: rec.Invitee}, nil
}

// Join joins the swarm a token invites to, by asking its master.
func (n *Node) Join(ctx context.Context, token string) (SwarmInfo, error) {
	inv, _, err := wire.ParseToken(token, n.now())
	if err != nil {
		return SwarmInfo{}, Userf("%v", err)
	}
	if inv.Invitee != "" && inv.Invitee != n.cfg.Domain {
		return SwarmInfo{}, Userf("this invite is for %s, not %s", inv.Invitee, n.cfg.Domain)
	}
	if inv.Master.Key == n.id.KeyString() {
		return SwarmInfo{}, Userf("this node issued the invite: give it to the agent who should join")
	}
	n.mu.Lock()
	if s, ok := n.swarms[inv.Swarm]; ok && !s.local.Left {
		n.mu.Unlock()
		return SwarmInfo{}, Userf("this node is already a member of %q", s.state.Settings.Name)
	}
	n.mu.Unlock()
	req := wire.JoinRequest{V: wire.Version, Swarm: inv.Swarm, Invite: inv.ID, Member: n.self(), Time: n.now().UnixMilli()}
	sreq, err := wire.SignJSON(wire.PurposeJoin, n.id.KeyString(), n.id.Key, req)
	if err != nil {
		return SwarmInfo{}, err
	}
	body, _ := jsonMarshal(wire.Join{Token: strings.TrimSpace(token), Request: sreq})
	peer := transport.Peer{Addr: inv.Master.Addr, Pin: inv.Master.Pin}
	code, reply, err := n.client.Do(ctx, peer, "POST", "/swarm/v1/join", body, nil, 16<<20)
	if err != nil {
		return SwarmInfo{}, Unreachablef("cannot reach the master %s at %s: %v", inv.Master.Domain, inv.Master.Addr, err)
	}
	if code != 200 {
		return SwarmInfo{}, Refusedf("the master refused the join: %s", peerError(reply))
	}
	var jr wire.JoinReply
	if err := decodeJSON(reply, &jr); err != nil {
		return SwarmInfo{}, fmt.Errorf("join reply: %w", err)
	}
	st, err := membership.Replay(jr.Records)
	if err != nil {
		return SwarmInfo{}, fmt.Errorf("join reply: the swarm's log fails validation: %w", err)
	}
	if st.ID != inv.Swarm {
		return SwarmInfo{}, errors.New("join reply: the log is of another swarm than the invite")
	}
	if m, ok := st.Members[n.cfg.Domain]; !ok || m.Key != n.id.KeyString() {
		return SwarmInfo{}, errors.New("join reply: the log does not list this node as a member")
	}
	if st.Members[st.Master].Key != inv.Master.Key {
		return SwarmInfo{}, errors.New("join reply: the invite was not signed by the swarm's master")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	s := &swarm{state: st, local: localSwarm{Joined: n.now().UnixMilli()}}
	if err := n.st.Update(func(tx *store.Tx) error {
		for i, r := range st.Records {
			if err := tx.Put(logKey(st.ID, uint64(i)), r); err != nil {
				return err
			}
		}
		// What happened before this node joined is history, not news.
		if err := tx.Put(noticeKey(st.ID), st.Head.Index); err != nil {
			return err
		}
		return tx.Put(store.Key("w", st.ID), s.local)
	}); err != nil {
		return SwarmInfo{}, err
	}
	n.swarms[st.ID] = s
	if n.server != nil {
		go n.beat() // let the new peers see this node now, not at the next period
		go n.verifyMembers()
	}
	return n.info(s), nil
}

// handleJoin is the master's side of a join.
func (n *Node) handleJoin(j *wire.Join, req *wire.JoinRequest) (*wire.JoinReply, error) {
	inv, _, err := wire.ParseToken(j.Token, n.now())
	if err != nil {
		return nil, Userf("%v", err)
	}
	if inv.Master.Key != n.id.KeyString() {
		return nil, Userf("this invite was not issued by this node")
	}
	if inv.Swarm != req.Swarm || inv.ID != req.Invite {
		return nil, Userf("join request does not match the invite")
	}
	if inv.Invitee != "" && inv.Invitee != req.Member.Domain {
		return nil, Userf("this invite is for %s", inv.Invitee)
	}
	// A joiner that claims a name which could hold a WebPKI certificate is
	// checked against that name's own site: if the site names another
	// key, the name belongs to someone else. Unreachable, it stays a
	// claimed name, shown as such with its fingerprint.
	if verifiable(req.Member.Domain) {
		ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
		ok, err := n.verify(ctx, req.Member.Domain, req.Member.Key)
		cancel()
		if !ok && IsUser(err) {
			return nil, err
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	s, ok := n.swarms[inv.Swarm]
	if !ok || s.local.Left {
		return nil, Userf("this node is not in the swarm of the invite")
	}
	if !n.isMaster(s) {
		return nil, Userf("this node is no longer the master of %q; ask %s for a new invite", s.state.Settings.Name, s.state.Master)
	}
	if s.state.IsMember(req.Member.Domain) {
		return nil, Userf("%s is already a member", req.Member.Domain)
	}
	if d := s.state.KeyOwner(req.Member.Key); d != "" {
		return nil, Userf("that key is already a member (as %s)", d)
	}
	if r, ok := s.state.KickedBefore(&req.Member, inv.IssuedAt); ok {
		return nil, Userf("%s was kicked from this swarm; an invite issued before the kick cannot readmit it, under its old key or its old name", r.Domain)
	}
	var ir inviteRecord
	key := store.Key("v", inv.ID)
	err = n.appendRecord(s, wire.Record{Type: wire.RecAdd, Member: &req.Member, Invite: inv.ID, InviteAt: inv.IssuedAt},
		func(tx *store.Tx) error {
			if err := tx.Get(key, &ir); errors.Is(err, store.ErrNotFound) {
				return Userf("unknown invite")
			} else if err != nil {
				return err
			}
			switch {
			case ir.Revoked:
				return Userf("this invite was revoked")
			case ir.Used >= ir.Uses:
				return Userf("this invite has been used up (%d of %d)", ir.Used, ir.Uses)
			case n.now().UnixMilli() >= ir.Expires:
				return Userf("this invite expired")
			}
			ir.Used++
			return tx.Put(key, ir)
		})
	if err != nil {
		return nil, err
	}
	return &wire.JoinReply{Records: s.state.Records}, nil
}

// Leave leaves a swarm. A member tells everyone with a signed notice and
// the master records it; the master may leave only as the last member.
func (n *Node) Leave(ref string) (SwarmInfo, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	s, err := n.live(ref)
	if err != nil {
		return SwarmInfo{}, err
	}
	others := recipients(s.state, n.key(), nil)
	if n.isMaster(s) && len(others) > 0 {
		return SwarmInfo{}, Userf("the master cannot leave %q while it has members: transfer the master role first (swarm transfer --swarm %s AGENT)", s.state.Settings.Name, s.state.Settings.Name)
	}
	local := s.local
	local.Left, local.Reason = true, wire.ReasonLeave
	if len(others) == 0 {
		local.Reason = "dissolved"
	}
	var noticeID string
	err = n.st.Update(func(tx *store.Tx) error {
		if len(others) > 0 {
			env, msg, err := n.envelope(s.state, sendSpec{To: wire.ToAll, Type: wire.TypeSystem, Event: wire.EventLeave})
			if err != nil {
				return err
			}
			if err := n.out.enqueue(tx, env, msg, "", others); err != nil {
				return err
			}
			noticeID = msg.ID
		}
		return tx.Put(store.Key("w", s.state.ID), local)
	})
	if err != nil {
		return SwarmInfo{}, err
	}
	s.local = local
	if noticeID != "" {
		n.out.kick(others, noticeID)
	}
	return n.info(s), nil
}

// Kick removes a member; master only.
func (n *Node) Kick(ref, agent string) (SwarmInfo, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	s, err := n.live(ref)
	if err != nil {
		return SwarmInfo{}, err
	}
	if !n.isMaster(s) {
		return SwarmInfo{}, Userf("only the master (%s) can change the membership of %q", s.state.Master, s.state.Settings.Name)
	}
	m, err := n.agentIn(s, agent)
	if err != nil {
		return SwarmInfo{}, err
	}
	if m.Key == n.key() {
		return SwarmInfo{}, Userf("the master cannot kick itself; use `swarm leave`")
	}
	if err := n.appendRecord(s, wire.Record{Type: wire.RecRemove, Agent: m.Domain, Reason: wire.ReasonKick}, nil); err != nil {
		return SwarmInfo{}, err
	}
	return n.info(s), nil
}

// Transfer hands the master role to another member; master only.
func (n *Node) Transfer(ref, agent string) (SwarmInfo, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	s, err := n.live(ref)
	if err != nil {
		return SwarmInfo{}, err
	}
	if !n.isMaster(s) {
		return SwarmInfo{}, Userf("only the master (%s) can change the membership of %q", s.state.Master, s.state.Settings.Name)
	}
	m, err := n.agentIn(s, agent)
	if err != nil {
		return SwarmInfo{}, err
	}
	if err := n.appendRecord(s, wire.Record{Type: wire.RecTransfer, Agent: m.Domain}, nil); err != nil {
		return SwarmInfo{}, err
	}
	return n.info(s), nil
}

// MemberInfo describes a member to a user.
type MemberInfo struct {
	Domain      string `json:"domain"`
	Fingerprint string `json:"fingerprint"`
	SwarmID     string `json:"swarm_id"`
	Identity    string `json:"identity"`             // verified or claimed (DESIGN §2)
	Clash       bool   `json:"name_clash,omitempty"` // another key goes by this name in one of this node's swarms
	Addr        string `json:"addr"`
	Master      bool   `json:"master,omitempty"`
	Self        bool   `json:"self,omitempty"`
	Leaving     bool   `json:"leaving,omitempty"`
	Muted       bool   `json:"muted,omitempty"`
	// Succession (issue #19): the member's place among the deputies (1 is
	// first), the candidate its support statement at the current head
	// names, and when this node last heard it.
	Deputy    int    `json:"deputy,omitempty"`
	Supports  string `json:"supports,omitempty"`
	LastHeard string `json:"last_heard,omitempty"`
	Presence
}

// Members lists a swarm's members with their presence.
func (n *Node) Members(ref string) ([]MemberInfo, error) {
	n.mu.Lock()
	s, err := n.resolve(ref)
	if err != nil {
		n.mu.Unlock()
		return nil, err
	}
	ms := s.state.Sorted()
	st := s.state
	master, leaving, swarmID, left := s.state.MasterKey(), s.local.Leaving, s.state.ID, s.local.Left
	clash := n.clashes()
	n.mu.Unlock()
	mutes, err := n.mutes()
	if err != nil {
		return nil, err
	}
	supports := n.supportsOf(st)
	out := make([]MemberInfo, 0, len(ms))
	for _, m := range ms {
		if left && m.Key == n.key() {
			continue // a node that left is no member, whatever its last copy of the log says
		}
		who := n.sender(m.Domain, m.Key, clash)
		mi := MemberInfo{Domain: m.Domain, Fingerprint: who.Fingerprint, SwarmID: swarmID, Identity: who.Identity, Clash: who.Clash,
			Addr: m.Addr, Master: m.Key == master, Self: m.Key == n.key(), Leaving: leaving[m.Key]}
		_, mi.Muted = mutes["a/"+m.Key]
		mi.Deputy, mi.Supports, mi.LastHeard = deputyRank(st, m.Key), supports[m.Key], n.heard.last(m.Key)
		if mi.Self {
			mi.Presence = n.selfPresence()
			mi.Identity = "self"
		} else {
			mi.Presence = n.pres.get(m.Key, n.now(), n.heartbeat())
		}
		out = append(out, mi)
	}
	return out, nil
}

// applyRecords applies records a peer gave us, persists the new ones, and
// reacts to what they say about this node. It returns how many were new.
func (n *Node) applyRecords(swarmID string, recs []wire.Signed) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	s, ok := n.swarms[swarmID]
	if !ok {
		return 0, fmt.Errorf("unknown swarm %s", swarmID)
	}
	next := s.state.Clone()
	added, err := next.ApplyAll(recs)
	var dropped []wire.Signed
	var cut uint64 // index of a succession that replaced held records
	if err != nil {
		// A succession at an index this chain fills replaces what the
		// old master signed after the head it names (succession.go).
		if sup, drop, ok := n.supersede(next, recs); ok {
			next, dropped, cut = sup, drop, sup.Head.Index
			more, aerr := next.ApplyAll(recs)
			added, err = added+1+more, aerr
		}
	}
	if err != nil {
		n.checkForks(s, next, recs)
	}
	if added == 0 {
		return 0, err
	}
	local := s.local
	if _, still := next.Member(n.key()); !still && !local.Left {
		local.Left = true
		local.Reason = wire.ReasonLeave
		if r, ok := next.Removed[n.key()]; ok {
			local.Reason = r.Reason
		}
	}
	for k := range local.Leaving {
		if _, ok := next.Member(k); !ok {
			delete(local.Leaving, k)
		}
	}
	from := s.state.Head.Index + 1
	if len(dropped) > 0 {
		from = min(from, cut)
		local = n.afterSupersede(next, local)
	}
	if perr := n.st.Update(func(tx *store.Tx) error {
		for i := from; i <= next.Head.Index; i++ {
			if err := tx.Put(logKey(swarmID, i), next.Records[i]); err != nil {
				return err
			}
		}
		for i := next.Head.Index + 1; i <= s.state.Head.Index; i++ {
			if err := tx.Delete(logKey(swarmID, i)); err != nil {
				return err
			}
		}
		if len(dropped) > 0 {
			if err := rewindNotices(tx, swarmID, cut-1); err != nil {
				return err
			}
		}
		return tx.Put(store.Key("w", swarmID), local)
	}); perr != nil {
		return 0, perr
	}
	s.state, s.local = next, local
	if len(dropped) > 0 {
		n.keepDropped(s, dropped)
	}
	if n.server != nil {
		go n.verifyMembers()
	}
	n.publish(Event{Kind: EventMembership, Swarm: swarmID, SwarmName: next.Settings.Name, Records: next.Records[from:]})
	n.loop(func() { n.noticeLog(swarmID) })
	n.publish(Event{Kind: EventSwarms, Swarm: swarmID, SwarmName: next.Settings.Name})
	n.log.Info().Str("swarm", swarmID).Uint64("head", next.Head.Index).Int("new", added).Msg("membership log advanced")
	return added, err
}

// pull fetches records from one member (by key) and applies them: those
// after our head, or with whole, the log from its start, which is how a
// fork is found when the peer's records do not extend ours.
func (n *Node) pull(ctx context.Context, swarmID, peerKey string, whole bool) (int, error) {
	n.mu.Lock()
	s, ok := n.swarms[swarmID]
	if !ok {
		n.mu.Unlock()
		return 0, fmt.Errorf("unknown swarm %s", swarmID)
	}
	after := s.state.Head.Index
	if whole {
		after = 0
	}
	m, ok := n.addrOf(rcpt(swarmID, peerKey))
	n.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("no address for %s", fingerprintOf(peerKey))
	}
	path := "/swarm/v1/swarms/" + swarmID + "/log"
	auth, err := wire.SignJSON(wire.PurposeRequest, wire.KeyHint(swarmID, n.key()), n.id.Key,
		wire.Request{V: wire.Version, From: n.cfg.Domain, Method: "GET", Path: path, Time: n.now().UnixMilli()})
	if err != nil {
		return 0, err
	}
	hdr := map[string][]string{"Swarm-Auth": {wire.EncodeAuth(auth)}}
	q := "?after=" + url.QueryEscape(fmt.Sprint(after))
	code, body, err := n.client.Do(ctx, transport.Peer{Addr: m.Addr, Pin: m.Pin}, "GET", path+q, nil, hdr, 16<<20)
	if err != nil {
		return 0, err
	}
	if code != 200 {
		return 0, fmt.Errorf("log pull from %s: %s", m.Domain, peerError(body))
	}
	var jr wire.JoinReply
	if err := decodeJSON(body, &jr); err != nil {
		return 0, err
	}
	added, err := n.applyRecords(swarmID, jr.Records)
	if err != nil {
		err = fmt.Errorf("%w: %w", errDidNotApply, err)
	}
	return added, err
}

// errDidNotApply marks a pull whose records do not extend this node's
// chain (not next, or signed by a key that is not master here: a
// succession this node has not seen yet): the whole log is asked for.
var errDidNotApply = errors.New("the peer's records do not apply")

// catchUp pulls a swarm's log from members until one answers, the one
// preferred (by key) first, then the master. A peer whose records do not
// extend ours is asked for its whole log, so a fork shows as proof rather
// than as a quiet failure. It runs at most once per second per swarm; a
// call within that second waits for the pull under way, if any.
func (n *Node) catchUp(ctx context.Context, swarmID string, prefer string) {
	now := time.Now()
	if last, ok := n.syncing.Load(swarmID); ok && now.Sub(last.(time.Time)) < time.Second {
		// A pull may be under way (the sync loop's, say): wait for it, so
		// the caller decides on what it brings, not on the state before
		// (a sender that a superseded record had removed is a member again).
		if run, ok := n.syncing.Load("run/" + swarmID); ok {
			select {
			case <-run.(chan struct{}):
			case <-ctx.Done():
			}
		}
		return
	}
	n.syncing.Store(swarmID, now)
	run := make(chan struct{})
	n.syncing.Store("run/"+swarmID, run)
	defer close(run)
	n.mu.Lock()
	s, ok := n.swarms[swarmID]
	if !ok {
		n.mu.Unlock()
		return
	}
	order := []string{}
	if prefer != "" {
		order = append(order, prefer)
	}
	master := s.state.MasterKey()
	if master != n.key() && master != prefer {
		order = append(order, master)
	}
	for _, m := range s.state.Sorted() {
		if m.Key != master && m.Key != prefer && m.Key != n.key() {
			order = append(order, m.Key)
		}
	}
	n.mu.Unlock()
	for _, peer := range order {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := n.pull(cctx, swarmID, peer, false)
		if errors.Is(err, errDidNotApply) {
			_, err = n.pull(cctx, swarmID, peer, true)
		}
		cancel()
		if err == nil {
			return
		}
		n.log.Debug().Err(err).Str("peer", fingerprintOf(peer)).Str("swarm", swarmID).Msg("log pull failed")
	}
}

// liveSwarmIDs lists the swarms this node is still in.
func (n *Node) liveSwarmIDs() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	ids := make([]string, 0, len(n.swarms))
	for id, s := range n.swarms {
		if !s.local.Left {
			ids = append(ids, id)
		}
	}
	return ids
}

// syncLoop is anti-entropy: at start and then periodically, each swarm's
// log is pulled from its members, so a node that was offline converges
// even while the master is away.
func (n *Node) syncLoop() {
	every := n.cfg.SyncEvery.or(60 * time.Second)
	t := time.NewTimer(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		for _, id := range n.liveSwarmIDs() {
			n.catchUp(n.ctx, id, "")
		}
		n.verifyMembers()
		t.Reset(every)
	}
}
