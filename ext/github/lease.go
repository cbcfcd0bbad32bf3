package github

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/agent-swarm/agent-swarm/store"
)

// Exclusive claims (docs/github.md, "Claims are leases"). A claim is a
// lease announced to the swarm before GitHub is touched: a notification
// signed by the holder, its reference {issue, repo, number, action
// "lease", login}, its signed Created the lease's time and its Expires the
// lease's end (renewed by the holder's node while it runs). Every node
// keeps the leases it hears; of the live leases on one issue the earliest
// by (time, key) holds it, so every node that heard the same leases names
// the same holder. The claimer waits a moment for competing leases, then
// writes the claim on GitHub and reads the issue back: GitHub is the
// arbiter of last resort (the assignment made first stands). The master
// lets a lease lapse when its holder is gone (offline past the grace, or
// no member), and makes the task ready again with a comment.

// Lease actions in the reference of a lease notification.
// They are the task actions an agent reads in the notification, too.
const (
	leaseClaim   = ActionClaimed   // the sender claims the issue
	leaseSteal   = "taken_over"    // the master takes it, ending earlier leases
	leaseRenew   = "claim_renewed" // the holder still holds it (a new Expires)
	leaseRelease = ActionReleased  // the holder lets it go; from the master: every lease before it ends
	leaseLapsed  = "lapsed"        // the master ended the leases before it: the holder is gone
)

var leaseActions = map[string]bool{leaseClaim: true, leaseSteal: true, leaseRenew: true, leaseRelease: true, leaseLapsed: true}

// LeaseOptions time the leases; zero values get defaults.
type LeaseOptions struct {
	TTL    time.Duration // a lease's signed life, renewed at a third of it; default 24 h
	Grace  time.Duration // how long a holder may be offline before its lease lapses; default 2 min
	Settle time.Duration // how long a claimer waits for competing leases; default 2 s
	Check  time.Duration // how often leases are renewed and checked; default 15 s
}

func (o LeaseOptions) withDefaults() LeaseOptions {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.TTL, 24*time.Hour)
	def(&o.Grace, 2*time.Minute)
	def(&o.Settle, 2*time.Second)
	def(&o.Check, 15*time.Second)
	return o
}

// Lease is one agent's claim on an issue, as this node heard it.
type Lease struct {
	Swarm   string    `json:"swarm"` // ID
	Repo    string    `json:"repo"`
	Issue   int       `json:"issue"`
	Key     string    `json:"key"`    // the holder's signing key
	Holder  string    `json:"holder"` // its agent name
	Login   string    `json:"login,omitempty"`
	At      time.Time `json:"at"` // the claim's signed time
	Expires time.Time `json:"expires"`
	Steal   bool      `json:"steal,omitempty"`
}

// before orders leases: earliest first, the key breaking ties.
func (l Lease) before(o Lease) bool {
	if !l.At.Equal(o.At) {
		return l.At.Before(o.At)
	}
	return l.Key < o.Key
}

// leaseBook serialises a node's lease changes (one claim decision at a
// time per node).
type leaseBook struct {
	mu      sync.Mutex
	offline map[string]time.Time // holder key -> when first seen gone (unknown presence)
}

func leasePrefix(swarm, repo string, issue int) []byte {
	o, n, _ := strings.Cut(strings.ToLower(repo), "/")
	return store.Key("gh", "lease", swarm, o, n, fmt.Sprint(issue), "")
}

func leaseKey(l Lease) []byte {
	return append(leasePrefix(l.Swarm, l.Repo, l.Issue), l.Key...)
}

// putLease keeps a lease until it expires: the store forgets it then, so
// the leases a member announces (on any issue) are not kept for good.
func (e *Ext) putLease(l Lease) error {
	ttl := time.Until(l.Expires)
	if ttl <= 0 {
		return e.dropLease(l)
	}
	return e.n.Store().Update(func(tx *store.Tx) error { return tx.PutTTL(leaseKey(l), l, ttl) })
}

// leasesOn are the live leases on an issue, the holder first.
func (e *Ext) leasesOn(swarm, repo string, issue int) ([]Lease, error) {
	return e.scanLeases(leasePrefix(swarm, repo, issue))
}

func (e *Ext) scanLeases(prefix []byte) ([]Lease, error) {
	var out []Lease
	now := time.Now()
	err := e.n.Store().View(func(tx *store.Tx) error {
		return tx.Scan(prefix, nil, func(_ []byte, decode func(any) error) (bool, error) {
			var l Lease
			if err := decode(&l); err != nil {
				return false, err
			}
			if l.Expires.After(now) {
				out = append(out, l)
			}
			return true, nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].before(out[j]) })
	return out, err
}

// endLeases removes the leases on an issue made at or before t (all of
// them but keep's, when keep is set).
func (e *Ext) endLeases(swarm, repo string, issue int, t time.Time, keep string) error {
	ls, err := e.leasesOn(swarm, repo, issue)
	if err != nil {
		return err
	}
	return e.n.Store().Update(func(tx *store.Tx) error {
		for _, l := range ls {
			if l.Key != keep && !l.At.After(t) {
				if err := tx.Delete(leaseKey(l)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func (e *Ext) dropLease(l Lease) error {
	return e.n.Store().Update(func(tx *store.Tx) error { return tx.Delete(leaseKey(l)) })
}

// announce sends a lease notification and returns the message as signed.
func (e *Ext) announce(ctx context.Context, swarm, repo string, issue int, action, login, text string, ttl time.Duration) (wire.Message, error) {
	ref := wire.Ref{Kind: "issue", Repo: repo, Number: issue, Action: action, Login: login}
	res, err := e.n.Send(ctx, node.SendArgs{Swarm: swarm, Type: wire.TypeNotification, Body: text,
		Refs: append([]wire.Ref{ref}, e.writerRef(repo)...), TTL: ttl})
	if err != nil {
		return wire.Message{}, err
	}
	return e.n.SentMessage(res.ID)
}

// heardLease applies a member's lease notification.
func (e *Ext) heardLease(ev node.Event) {
	m := ev.Message
	for _, r := range m.Refs {
		if r.Kind != "issue" || r.Number <= 0 {
			continue
		}
		if r.Action == ActionCompleted {
			// A closed task is nobody's: its leases end with it.
			if s, err := e.n.LiveSwarm(ev.Swarm); err == nil {
				e.leases.mu.Lock()
				_ = e.endLeases(s.ID, r.Repo, r.Number, time.UnixMilli(m.Created), "")
				e.leases.mu.Unlock()
			}
			continue
		}
		if !leaseActions[r.Action] {
			continue
		}
		if err := e.applyLease(ev, m, r); err != nil {
			e.log.Warn().Err(err).Str("id", m.ID).Msg("lease notification not applied")
		}
	}
}

func (e *Ext) applyLease(ev node.Event, m *wire.Message, r wire.Ref) error {
	s, err := e.n.LiveSwarm(ev.Swarm)
	if err != nil || !strings.EqualFold(r.Repo, s.Repo) {
		return nil // a lease on a repository the swarm does not link holds nothing
	}
	// The role is held by a key: a member that took the master's name
	// (names can clash) is not the master.
	fromMaster := node.FingerprintOf(ev.SenderKey) == s.MasterFingerprint
	l := Lease{Swarm: s.ID, Repo: r.Repo, Issue: r.Number, Key: ev.SenderKey, Holder: m.From, Login: r.Login,
		At: time.UnixMilli(m.Created), Expires: time.UnixMilli(m.Expires)}
	e.leases.mu.Lock()
	defer e.leases.mu.Unlock()
	switch r.Action {
	case leaseClaim:
		return e.putLease(l)
	case leaseSteal:
		if !fromMaster {
			return nil // only the master may take a task over
		}
		l.Steal = true
		if err := e.endLeases(s.ID, r.Repo, r.Number, l.At, l.Key); err != nil {
			return err
		}
		return e.putLease(l)
	case leaseRenew:
		ls, err := e.leasesOn(s.ID, r.Repo, r.Number)
		if err != nil {
			return err
		}
		for _, old := range ls {
			if old.Key == l.Key {
				old.Expires = l.Expires
				return e.putLease(old)
			}
		}
		return e.putLease(l) // a renewal heard first stands for the claim
	case leaseRelease, leaseLapsed:
		if fromMaster {
			return e.endLeases(s.ID, r.Repo, r.Number, l.At, "")
		}
		if r.Action == leaseRelease {
			return e.dropLease(l)
		}
	}
	return nil
}

// leaseLoop renews the leases this node holds and, on a master's node,
// lets those of gone holders lapse.
func (e *Ext) leaseLoop() {
	t := time.NewTicker(e.opt.Lease.Check)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
		e.renewLeases()
		e.lapseLeases()
	}
}

func (e *Ext) renewLeases() {
	ls, err := e.scanLeases(store.Key("gh", "lease", ""))
	if err != nil {
		return
	}
	me, key := e.n.Domain(), e.n.Key()
	for _, l := range ls {
		// Held by this node's key: a member going by the same name does
		// not hold this node's leases.
		if l.Key != key || time.Until(l.Expires) > e.opt.Lease.TTL*2/3 {
			continue
		}
		text := fmt.Sprintf("%s still holds %s#%d (lease renewed)", me, l.Repo, l.Issue)
		m, err := e.announce(e.ctx, l.Swarm, l.Repo, l.Issue, leaseRenew, l.Login, text, e.opt.Lease.TTL)
		if err != nil {
			e.log.Warn().Err(err).Msg("lease not renewed")
			continue
		}
		e.leases.mu.Lock()
		l.Expires = time.UnixMilli(m.Expires)
		_ = e.putLease(l)
		e.leases.mu.Unlock()
	}
}

// lapseLeases ends, on the master's node, the leases whose holder is gone:
// no longer a member, or offline (three missed heartbeats) for longer than
// the grace, or never heard from for that long since this node looked.
func (e *Ext) lapseLeases() {
	for _, s := range e.n.Swarms() {
		if !s.IsMaster || s.Left || s.Repo == "" {
			continue
		}
		ls, err := e.scanLeases(store.Key("gh", "lease", s.ID, ""))
		if err != nil || len(ls) == 0 {
			continue
		}
		members, err := e.n.Members(s.ID)
		if err != nil {
			continue
		}
		for _, l := range ls {
			if since, gone := e.gone(l, members); gone {
				e.lapse(s, l, since)
			}
		}
	}
}

// gone reports whether a lease's holder is gone, and since when.
func (e *Ext) gone(l Lease, members []node.MemberInfo) (time.Time, bool) {
	now := time.Now()
	e.leases.mu.Lock()
	defer e.leases.mu.Unlock()
	if e.leases.offline == nil {
		e.leases.offline = map[string]time.Time{}
	}
	fp := node.FingerprintOf(l.Key)
	for _, m := range members {
		if m.Fingerprint != fp { // by key: a namesake's presence is not the holder's
			continue
		}
		if m.Self || (m.State != "offline" && m.State != "unknown") {
			delete(e.leases.offline, l.Key)
			return time.Time{}, false
		}
		since, ok := e.leases.offline[l.Key]
		if !ok {
			since = now
			if t, err := time.Parse(time.RFC3339, m.LastSeen); err == nil {
				since = t
			}
			e.leases.offline[l.Key] = since
		}
		return since, now.Sub(since) >= e.opt.Lease.Grace
	}
	return now, true // no longer a member
}

// lapse ends a gone holder's lease: every member hears it, and the task
// is ready again on GitHub, with a comment saying why.
func (e *Ext) lapse(s node.SwarmInfo, l Lease, since time.Time) {
	text := fmt.Sprintf("the claim of %s on %s#%d lapsed: %s has been gone since %s; the task is ready again",
		l.Holder, l.Repo, l.Issue, l.Holder, since.UTC().Format(time.RFC3339))
	m, err := e.announce(e.ctx, s.ID, l.Repo, l.Issue, leaseLapsed, l.Login, text, 0)
	if err != nil {
		e.log.Warn().Err(err).Msg("lapsed lease not announced")
		return
	}
	e.leases.mu.Lock()
	err = e.endLeases(s.ID, l.Repo, l.Issue, time.UnixMilli(m.Created), "")
	delete(e.leases.offline, l.Key)
	e.leases.mu.Unlock()
	if err != nil {
		e.log.Warn().Err(err).Msg("lapsed lease not removed")
	}
	body := fmt.Sprintf("The claim of %s lapsed: its agent has been gone since %s. The task is ready again.",
		l.Holder, since.UTC().Format(time.RFC3339))
	w := Write{Kind: WriteRelease, Issue: l.Issue, Login: l.Login, Body: body}
	if _, err := e.quietWrite(e.ctx, s.ID, w); err != nil {
		e.log.Warn().Err(err).Int("issue", l.Issue).Msg("lapsed task not made ready on GitHub")
	}
}
