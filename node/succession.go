package node

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/agent-swarm/agent-swarm/node/membership"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/agent-swarm/agent-swarm/store"
)

// Master succession (issue #19; the rules are in docs/protocol.md
// "Succession"). Each member watches when it last heard the master; once
// the master has been silent for the swarm's succession delay, it signs
// one support statement at its log head for a candidate (the first
// deputy it can reach, else the member with the oldest add record) and
// sends it to the other members. A candidate that holds statements from
// a majority of the members other than the master appends a succession
// record carrying them; package membership checks the quorum on every
// node.

// hearing remembers when this node last heard each agent (any verified
// envelope, ping or ping answer), and when it learned who each swarm's
// master is: a master is never deemed silent for longer than this node
// has known it as master, or has been running.
type hearing struct {
	mu     sync.Mutex
	since  time.Time            // when this node started
	heard  map[string]time.Time // by key; only verified members get in
	master map[string]masterSeen
}

type masterSeen struct {
	key string
	at  time.Time
}

func newHearing(now time.Time) *hearing {
	return &hearing{since: now, heard: map[string]time.Time{}, master: map[string]masterSeen{}}
}

// hear notes that a verified message of key arrived at now.
func (h *hearing) hear(key string, now time.Time) {
	h.mu.Lock()
	if now.After(h.heard[key]) {
		h.heard[key] = now
	}
	h.mu.Unlock()
}

// last is when key was last heard, in RFC 3339, or "" if never.
func (h *hearing) last(key string) string {
	h.mu.Lock()
	t, ok := h.heard[key]
	h.mu.Unlock()
	if !ok {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// lastHeard is when this node last heard the master of swarmID (key), or
// learned it is the master, or started: whichever is latest.
func (h *hearing) lastHeard(swarmID, key string, now time.Time) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	ms := h.master[swarmID]
	if ms.key != key {
		ms = masterSeen{key: key, at: now}
		h.master[swarmID] = ms
	}
	last := h.since
	for _, t := range []time.Time{ms.at, h.heard[key]} {
		if t.After(last) {
			last = t
		}
	}
	return last
}

// heldStatement is a verified support statement as stored
// (ss/<swarm>/<signer key>): at most one per member, the one at the
// latest head it signed at.
type heldStatement struct {
	Signed    wire.Signed `json:"signed"`
	Head      wire.Head   `json:"head"`
	Candidate string      `json:"candidate"`
	Time      int64       `json:"time"`
}

func statementKey(swarmID, signer string) []byte { return store.Key("ss", swarmID, signer) }

// successionLoop checks every heartbeat whether a master has been silent
// past its swarm's delay.
func (n *Node) successionLoop() {
	t := time.NewTicker(n.heartbeat())
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		for _, id := range n.liveSwarmIDs() {
			n.considerSuccession(id)
		}
	}
}

// silentMaster returns the state of a swarm in which this node is a
// member other than the master and the master has not been heard for the
// delay; ok is false otherwise.
func (n *Node) silentMaster(swarmID string) (*membership.State, bool) {
	n.mu.Lock()
	s, ok := n.swarms[swarmID]
	if !ok || s.local.Left || n.isMaster(s) {
		n.mu.Unlock()
		return nil, false
	}
	st := s.state
	n.mu.Unlock()
	if _, member := st.Member(n.key()); !member {
		return nil, false
	}
	now := n.now()
	last := n.heard.lastHeard(swarmID, st.MasterKey(), now)
	return st, now.Sub(last) >= st.Settings.SuccessionAfter()
}

// considerSuccession signs this node's statement when the master of a
// swarm has been silent past the delay (once per head), and appends the
// succession record when this node is a candidate with a quorum.
func (n *Node) considerSuccession(swarmID string) {
	n.pruneStatements(swarmID)
	st, silent := n.silentMaster(swarmID)
	if !silent {
		return
	}
	own, _ := n.statement(swarmID, n.key())
	if own == nil || own.Head != st.Head {
		cand := n.chooseCandidate(st)
		if err := n.support(st, cand); err != nil {
			n.log.Error().Err(err).Str("swarm", swarmID).Msg("could not sign a support statement")
			return
		}
	}
	n.trySucceed(swarmID)
}

// chooseCandidate is the first deputy this node can reach (itself, or
// one that answers a ping now), else the member other than the master
// with the oldest add record.
func (n *Node) chooseCandidate(st *membership.State) wire.Member {
	for _, d := range st.Deputies() {
		if d.Key == n.key() {
			return d
		}
		ctx, cancel := context.WithTimeout(n.ctx, n.heartbeat())
		_, err := n.ping(ctx, d)
		cancel()
		if err == nil {
			return d
		}
	}
	m, _ := st.Oldest()
	return m
}

// support signs this node's statement for cand at st's head, keeps it,
// and sends it to every member but the master. A statement already
// signed at this head is never replaced: a member supports one candidate
// per head.
func (n *Node) support(st *membership.State, cand wire.Member) error {
	sg, err := wire.SignJSON(wire.PurposeSupport, n.key(), n.id.Key,
		wire.Support{V: wire.Version, Swarm: st.ID, Head: st.Head, Candidate: cand.Key, Time: n.now().UnixMilli()})
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	s, ok := n.swarms[st.ID]
	if !ok || s.state.Head != st.Head {
		return nil // the log moved meanwhile: the next tick looks again
	}
	if own, err := n.statement(st.ID, n.key()); err == nil && own.Head == st.Head {
		return nil // signed at this head already: that one stands
	}
	master := st.MasterKey()
	rcpts := recipients(st, n.key(), func(k string) bool { return k == master })
	var env wire.Signed
	var msg *wire.Message
	if len(rcpts) > 0 {
		if env, msg, err = n.envelope(st, sendSpec{To: wire.ToAll, Type: wire.TypeSystem, Event: wire.EventSupport, Support: &sg}); err != nil {
			return err
		}
	}
	stored := false
	err = n.st.Update(func(tx *store.Tx) error {
		var have heldStatement
		if err := tx.Get(statementKey(st.ID, n.key()), &have); err == nil && have.Head == st.Head {
			return nil
		}
		stored = true
		if err := tx.Put(statementKey(st.ID, n.key()), heldStatement{Signed: sg, Head: st.Head, Candidate: cand.Key, Time: n.now().UnixMilli()}); err != nil {
			return err
		}
		if msg == nil {
			return nil
		}
		return n.out.enqueue(tx, env, msg, "", rcpts)
	})
	if err != nil || !stored {
		return err
	}
	if msg != nil {
		n.out.kick(rcpts, msg.ID)
	}
	n.log.Warn().Str("swarm", st.ID).Str("master", st.Master).Str("candidate", cand.Domain).Uint64("head", st.Head.Index).
		Msg("the master has been silent past the succession delay: support statement signed")
	return nil
}

// onSupport keeps a member's statement that arrived in a support message
// from key. The statement must be the sender's own, verify against this
// node's membership, and be at this node's head; one at a head ahead of
// it makes this node catch up from the sender first (once).
func (n *Node) onSupport(m *wire.Message, key string, caughtUp bool) {
	sg := *m.Support
	if sg.KID != key {
		n.log.Warn().Str("from", m.From).Msg("support message carries another member's statement: ignored")
		return
	}
	n.mu.Lock()
	s, ok := n.swarms[m.Swarm]
	var st *membership.State
	if ok {
		st = s.state
	}
	n.mu.Unlock()
	if !ok {
		return
	}
	stmt, err := st.CheckStatement(sg)
	if err == nil && stmt.Support.Head.Index > st.Head.Index && !caughtUp {
		go func() {
			n.catchUp(n.ctx, m.Swarm, key)
			n.onSupport(m, key, true)
		}()
		return
	}
	if err != nil || stmt.Support.Head != st.Head {
		why := "not at this node's head"
		if err != nil {
			why = err.Error()
		}
		n.log.Info().Str("from", m.From).Str("why", why).Msg("support statement not kept")
		return
	}
	if !n.keepStatement(st.ID, stmt) {
		return
	}
	if stmt.Support.Candidate == n.key() {
		n.trySucceed(st.ID)
	}
}

// keepStatement stores a verified statement at the current head unless
// its signer already has one there; one for another candidate at the
// same head is refused (a member supports one candidate per head).
func (n *Node) keepStatement(swarmID string, stmt *membership.Statement) bool {
	kept := false
	err := n.st.Update(func(tx *store.Tx) error {
		k := statementKey(swarmID, stmt.Signed.KID)
		var have heldStatement
		if err := tx.Get(k, &have); err == nil && have.Head == stmt.Support.Head {
			if have.Candidate != stmt.Support.Candidate {
				n.log.Warn().Str("member", stmt.Signer.Domain).Uint64("head", have.Head.Index).Msg("a member signed for two candidates at one head: the second statement is refused")
			}
			return nil
		}
		kept = true
		return tx.Put(k, heldStatement{Signed: stmt.Signed, Head: stmt.Support.Head, Candidate: stmt.Support.Candidate, Time: stmt.Support.Time})
	})
	if err != nil {
		n.log.Error().Err(err).Msg("could not keep a support statement")
		return false
	}
	return kept
}

// statement reads the statement held from signer in a swarm, if any.
func (n *Node) statement(swarmID, signer string) (*heldStatement, error) {
	var h heldStatement
	err := n.st.View(func(tx *store.Tx) error { return tx.Get(statementKey(swarmID, signer), &h) })
	if err != nil {
		return nil, err
	}
	return &h, nil
}

// statements returns the held statements at st's head whose signers are
// still members other than the master, by signer key.
func (n *Node) statements(st *membership.State) map[string]heldStatement {
	out := map[string]heldStatement{}
	_ = n.st.View(func(tx *store.Tx) error {
		return tx.Scan(store.Key("ss", st.ID, ""), nil, func(k []byte, dec func(any) error) (bool, error) {
			var h heldStatement
			if dec(&h) != nil || h.Head != st.Head {
				return true, nil
			}
			if m, ok := st.Member(h.Signed.KID); ok && m.Domain != st.Master {
				out[h.Signed.KID] = h
			}
			return true, nil
		})
	})
	return out
}

// pruneStatements deletes statements signed at a head before the
// current one: they can never count again.
func (n *Node) pruneStatements(swarmID string) {
	n.mu.Lock()
	s, ok := n.swarms[swarmID]
	var head wire.Head
	if ok {
		head = s.state.Head
	}
	n.mu.Unlock()
	if !ok {
		return
	}
	var stale [][]byte
	_ = n.st.View(func(tx *store.Tx) error {
		return tx.Scan(store.Key("ss", swarmID, ""), nil, func(k []byte, dec func(any) error) (bool, error) {
			var h heldStatement
			if dec(&h) != nil || h.Head.Index < head.Index {
				stale = append(stale, append([]byte(nil), k...))
			}
			return true, nil
		})
	})
	if len(stale) == 0 {
		return
	}
	_ = n.st.Update(func(tx *store.Tx) error {
		for _, k := range stale {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// trySucceed appends the succession record when this node is the
// candidate of statements from a majority of the members other than the
// master at the current head, and has not heard the master for the
// delay itself.
func (n *Node) trySucceed(swarmID string) {
	st, silent := n.silentMaster(swarmID)
	if !silent {
		return
	}
	var mine []wire.Signed
	for _, h := range n.statements(st) {
		if h.Candidate == n.key() {
			mine = append(mine, h.Signed)
		}
	}
	if len(mine) < st.Quorum() {
		return
	}
	// The record carries just the quorum, in a stable order: a payload is
	// bounded, and a majority is all anyone checks.
	sort.Slice(mine, func(i, j int) bool { return mine[i].KID < mine[j].KID })
	mine = mine[:st.Quorum()]
	n.mu.Lock()
	s, ok := n.swarms[swarmID]
	if !ok || s.state.Head != st.Head {
		n.mu.Unlock()
		return
	}
	old := st.Master
	err := n.signRecord(s, wire.Record{Type: wire.RecSuccession, Agent: n.cfg.Domain, Support: mine}, nil)
	n.mu.Unlock()
	if err != nil {
		n.log.Error().Err(err).Str("swarm", swarmID).Msg("could not append the succession record")
		return
	}
	n.log.Warn().Str("swarm", swarmID).Str("old_master", old).Int("statements", len(mine)).Msg("succession: this node is now the master")
	n.publish(Event{Kind: EventSwarms, Swarm: swarmID, SwarmName: st.Settings.Name})
}

// supersede tries the first record of recs that st does not hold as a
// succession that replaces st's records after the head it names. Caller
// holds n.mu.
func (n *Node) supersede(st *membership.State, recs []wire.Signed) (*membership.State, []wire.Signed, bool) {
	r, ok := firstUnheld(st, recs)
	if !ok {
		return nil, nil, false
	}
	// Checking a succession replays the log up to the index it names,
	// verifying every record again: a signer whose record failed waits a
	// minute before its next one is tried (the map holds at most one entry
	// per member or removed key of the node's swarms).
	k := st.ID + "/" + r.KID
	if t, failed := n.supersedeFailed[k]; failed && n.now().Sub(t) < supersedeRetry {
		return nil, nil, false
	}
	next, dropped, err := st.Supersede(r)
	if err != nil {
		// Only a record that cost the replay counts: one refused at sight
		// (not a succession, not at a held index) cost nothing, and the
		// signer's real succession may come right after it.
		_, member := st.Member(r.KID)
		if _, removed := st.Removed[r.KID]; (member || removed) && !errors.Is(err, membership.ErrNoSupersede) {
			n.noteSupersedeFailed(k)
		}
		return nil, nil, false
	}
	delete(n.supersedeFailed, k)
	n.log.Warn().Str("swarm", st.ID).Uint64("index", next.Head.Index).Int("dropped", len(dropped)).Str("master", next.Master).
		Msg("a succession record replaced the old master's later records")
	return next, dropped, true
}

// supersedeRetry is how long a signer whose succession record failed
// waits before the next is checked.
const supersedeRetry = time.Minute

// noteSupersedeFailed records a failed succession check. Caller holds n.mu.
func (n *Node) noteSupersedeFailed(k string) {
	if n.supersedeFailed == nil {
		n.supersedeFailed = map[string]time.Time{}
	}
	now := n.now()
	for old, t := range n.supersedeFailed {
		if now.Sub(t) >= supersedeRetry {
			delete(n.supersedeFailed, old)
		}
	}
	n.supersedeFailed[k] = now
}

// afterSupersede: a node that the replaced records removed is a member
// again if the chain it follows now says so.
func (n *Node) afterSupersede(next *membership.State, local localSwarm) localSwarm {
	if _, member := next.Member(n.key()); member && local.Left && local.Reason != wire.ReasonLeave && local.Reason != "dissolved" {
		local.Left, local.Reason = false, ""
	}
	return local
}

// keepDropped keeps what the old master signed after the succession as
// fork proof (others' nodes; this node's own records need no proof, its
// user is told by the succession notice). Caller holds n.mu.
func (n *Node) keepDropped(s *swarm, dropped []wire.Signed) {
	if len(dropped) == 0 || dropped[0].KID == n.key() {
		return
	}
	n.checkForks(s, s.state, dropped)
}

// rewindNotices makes the notice pass tell records after index again: a
// succession replaced the records it had told of.
func rewindNotices(tx *store.Tx, swarmID string, index uint64) error {
	var done uint64
	if err := tx.Get(noticeKey(swarmID), &done); err != nil || done <= index {
		return nil
	}
	return tx.Put(noticeKey(swarmID), index)
}

// SuccessionInfo is a swarm's succession state as this node sees it.
type SuccessionInfo struct {
	Swarm string `json:"swarm"`
	Name  string `json:"name"`
	// Master and when this node last heard it (any signed message, ping
	// or ping answer), or learned it is master, or started.
	Master          string   `json:"master"`
	MasterLastHeard string   `json:"master_last_heard,omitempty"`
	Silent          bool     `json:"master_silent,omitempty"` // past the delay
	After           string   `json:"after"`                   // the succession delay
	Deputies        []string `json:"deputies,omitempty"`      // current deputies, in order
	// Statements held at the current head, and how many a succession needs.
	Statements []StatementInfo `json:"statements,omitempty"`
	Quorum     int             `json:"quorum"`
	// Last is the latest succession in the log, if any.
	Last *membership.Succession `json:"last_succession,omitempty"`
}

// StatementInfo is one support statement held.
type StatementInfo struct {
	From      string `json:"from"`
	Candidate string `json:"candidate"`
	Time      string `json:"time"`
}

// Succession reports the succession state of the live swarms this node
// is in (all of them for ref "", else the one named).
func (n *Node) Succession(ref string) ([]SuccessionInfo, error) {
	n.mu.Lock()
	var states []*membership.State
	if ref != "" {
		s, err := n.live(ref)
		if err != nil {
			n.mu.Unlock()
			return nil, err
		}
		states = append(states, s.state)
	} else {
		for _, s := range n.swarms {
			if !s.local.Left {
				states = append(states, s.state)
			}
		}
	}
	n.mu.Unlock()
	out := make([]SuccessionInfo, 0, len(states))
	for _, st := range states {
		out = append(out, n.successionOf(st))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (n *Node) successionOf(st *membership.State) SuccessionInfo {
	now := n.now()
	si := SuccessionInfo{Swarm: st.ID, Name: st.Settings.Name, Master: st.Master, After: st.Settings.SuccessionAfter().String(), Quorum: st.Quorum()}
	if st.MasterKey() != n.key() {
		last := n.heard.lastHeard(st.ID, st.MasterKey(), now)
		si.MasterLastHeard = last.UTC().Format(time.RFC3339)
		si.Silent = now.Sub(last) >= st.Settings.SuccessionAfter()
	}
	for _, d := range st.Deputies() {
		si.Deputies = append(si.Deputies, d.Domain)
	}
	for key, h := range n.statements(st) {
		from, _ := st.Member(key)
		cand, _ := st.Member(h.Candidate)
		si.Statements = append(si.Statements, StatementInfo{From: from.Domain, Candidate: cand.Domain, Time: time.UnixMilli(h.Time).UTC().Format(time.RFC3339)})
	}
	sort.Slice(si.Statements, func(i, j int) bool { return si.Statements[i].From < si.Statements[j].From })
	if last, ok := st.LastSuccession(); ok {
		si.Last = &last
	}
	return si
}

// DeputiesInfo is the result of setting a swarm's deputies.
type DeputiesInfo struct {
	Swarm    string   `json:"swarm"`
	Name     string   `json:"name"`
	Deputies []string `json:"deputies"`
	After    string   `json:"after"`
	Warning  string   `json:"warning,omitempty"`
}

// SetDeputies names a swarm's deputies, in order, and the succession
// delay (0 is the default, 72 h), in a settings record; master only.
func (n *Node) SetDeputies(ref string, after time.Duration, agents []string) (DeputiesInfo, error) {
	switch {
	case after < 0 || after > 0 && after < wire.MinSuccessionAfter:
		return DeputiesInfo{}, Userf("succession delay %s is too short: at least %s", after, wire.MinSuccessionAfter)
	case after > wire.MaxSuccessionAfter:
		return DeputiesInfo{}, Userf("succession delay %s is too long: at most %s", after, wire.MaxSuccessionAfter)
	case len(agents) > wire.MaxDeputies:
		return DeputiesInfo{}, Userf("%d deputies named: at most %d", len(agents), wire.MaxDeputies)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	s, err := n.live(ref)
	if err != nil {
		return DeputiesInfo{}, err
	}
	if !n.isMaster(s) {
		return DeputiesInfo{}, Userf("only the master (%s) can name the deputies of %q", s.state.Master, s.state.Settings.Name)
	}
	set := s.state.Settings
	set.Deputies, set.After = nil, after.Milliseconds()
	var names []string
	for _, a := range agents {
		m, err := n.agentIn(s, a)
		if err != nil {
			return DeputiesInfo{}, err
		}
		if m.Key == n.key() {
			return DeputiesInfo{}, Userf("the master cannot be its own deputy")
		}
		if contains(set.Deputies, m.Key) {
			return DeputiesInfo{}, Userf("%s is named twice", m.Domain)
		}
		set.Deputies, names = append(set.Deputies, m.Key), append(names, m.Domain)
	}
	if err := set.Check(); err != nil {
		return DeputiesInfo{}, Userf("%v", err)
	}
	if err := n.appendRecord(s, wire.Record{Type: wire.RecSettings, Settings: &set}, nil); err != nil {
		return DeputiesInfo{}, err
	}
	out := DeputiesInfo{Swarm: s.state.ID, Name: s.state.Settings.Name, Deputies: names, After: set.SuccessionAfter().String()}
	if out.Deputies == nil {
		out.Deputies = []string{}
	}
	if d := set.SuccessionAfter(); d < time.Hour {
		out.Warning = fmt.Sprintf("a succession delay of %s is short: a master that is offline for %s (a laptop asleep, a restart) is replaced; use it for tests and demos", d, d)
	}
	return out, nil
}

// supportsOf maps each member's key to the domain of the candidate it
// supports at st's head, for the member list.
func (n *Node) supportsOf(st *membership.State) map[string]string {
	out := map[string]string{}
	for key, h := range n.statements(st) {
		if c, ok := st.Member(h.Candidate); ok {
			out[key] = c.Domain
		}
	}
	return out
}

// deputyRank is a member's place among the deputies (1 is first), or 0.
func deputyRank(st *membership.State, key string) int {
	for i, d := range st.Deputies() {
		if d.Key == key {
			return i + 1
		}
	}
	return 0
}

// successionNotice is the notice a succession record gives: to the new
// master, to the old one, and to the other members. keys and master are
// as of the record before it.
func (n *Node) successionNotice(st *membership.State, r *wire.Record, keys map[string]string, master string) memberNotice {
	name := st.Settings.Name
	switch {
	case keys[r.Agent] == n.key():
		return memberNotice{event: NoticeSuccession, body: fmt.Sprintf(
			"This node is now the master of swarm %q by succession: %d members supported it after the master %s was not heard for the succession delay. It invites, kicks, and can hand the role on.",
			name, len(r.Support), master)}
	case keys[master] == n.key():
		return memberNotice{event: NoticeSuccession, body: fmt.Sprintf(
			"This node is no longer the master of swarm %q: %d members made %s master by succession (record %d) after not hearing from this node for the succession delay. This node stays a member; records it signed after index %d are a fork that nobody follows.",
			name, len(r.Support), r.Agent, r.Index, r.Index-1)}
	}
	return memberNotice{event: NoticeSuccession, about: keys[r.Agent], body: fmt.Sprintf(
		"%s (key %s) is now the master of swarm %q by succession: %d members supported it after the master %s was not heard for the succession delay.",
		r.Agent, fingerprintOf(keys[r.Agent]), name, len(r.Support), master)}
}
