package github

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/agent-swarm/agent-swarm/store"
)

// One notification per event, to every member (docs/github.md, "Sync
// bot"):
//
//   - swarm writes are not relayed: their writer announced them. A write
//     is known by the marker in its comment or issue body, whoever's
//     token made it, and its author is then remembered as a swarm writer
//     of the repository, so that write's label, assignment and state
//     events (which carry no marker) are known too; members also name
//     their token's user in their task notifications (writerRef);
//   - the relay reaches the master's own agent (Node.KeepOwn);
//   - the record of what was relayed is every member's: each relay names
//     what it announced (relayRef), every member marks it in its own Seen,
//     so a node that takes the master role over dedupes against what the
//     old master told, and starts reading from the last relay it heard of.

// relayRef is the reference a relay carries. Its URL is GitHub's link to
// the object; for activity other than openings and comments, the
// fragment names the event as Seen does (what, on which issue, by whom,
// in which second), so that every member can record it.
func relayRef(ev Event) wire.Ref {
	kind := "issue"
	if ev.PR {
		kind = "pr"
	}
	ref := wire.Ref{Kind: kind, Repo: ev.Repo, Number: ev.Issue, URL: ev.URL, Action: ev.Action, Login: ev.Assignee}
	if _, mark := ev.keys(); len(mark) > 1 {
		base, _, _ := strings.Cut(ev.URL, "#")
		ref.URL = base + "#" + actFragment + url.QueryEscape(strings.TrimPrefix(mark[1], "act:"))
	}
	return ref
}

const actFragment = "swarm-act-"

// relayKeys are the Seen keys a received relay's reference stands for.
func relayKeys(r wire.Ref) []string {
	switch {
	case r.Action == "opened" && r.Number > 0:
		return []string{fmt.Sprintf("issue:%d", r.Number)}
	case r.Action == "commented":
		if _, frag, ok := strings.Cut(r.URL, "#issuecomment-"); ok {
			if id, err := strconv.ParseInt(frag, 10, 64); err == nil {
				return []string{fmt.Sprintf("comment:%d", id)}
			}
		}
	default:
		if _, frag, ok := strings.Cut(r.URL, "#"+actFragment); ok {
			if k, err := url.QueryUnescape(frag); err == nil && k != "" {
				return []string{"act:" + k}
			}
		}
	}
	return nil
}

// relayed is where a relay was last heard of for a repository:
// gh/relayat/<owner>/<name>.
func relayedKey(repo string) []byte {
	o, n, _ := strings.Cut(strings.ToLower(repo), "/")
	return store.Key("gh", "relayat", o, n)
}

// relayMark is the horizon of a repository's relays: when the last was
// made or heard, or (Link) when this node learned of the link.
type relayMark struct {
	At   time.Time `json:"at"`
	Link bool      `json:"link,omitempty"`
}

func (e *Ext) noteRelayed(repo string, at time.Time) {
	_ = e.n.Store().UpdateLazy(func(tx *store.Tx) error {
		var last relayMark
		if err := tx.Get(relayedKey(repo), &last); err == nil && last.At.After(at) {
			return nil
		}
		return tx.Put(relayedKey(repo), relayMark{At: at})
	})
}

// noteLinked records that repo is synced from now, unless a relay or an
// earlier link was noted.
func (e *Ext) noteLinked(repo string) {
	_ = e.n.Store().UpdateLazy(func(tx *store.Tx) error {
		if ok, err := tx.Has(relayedKey(repo)); err != nil || ok {
			return err
		}
		return tx.Put(relayedKey(repo), relayMark{At: time.Now(), Link: true})
	})
}

// lastRelayed is the repository's relay horizon (zero: never synced in
// this node's sight).
func (e *Ext) lastRelayed(repo string) relayMark {
	var m relayMark
	_ = e.n.Store().View(func(tx *store.Tx) error { return tx.Get(relayedKey(repo), &m) })
	return m
}

// forgetRepo drops what was read and relayed of a repository: a new
// link starts from the repository as it stands.
func (e *Ext) forgetRepo(repo string) {
	o, n, _ := strings.Cut(strings.ToLower(repo), "/")
	_ = e.n.Store().Update(func(tx *store.Tx) error {
		if err := tx.Delete(relayedKey(repo)); err != nil {
			return err
		}
		return tx.Delete(store.Key("gh", "poll", o, n))
	})
}

// Swarm writers: gh/writer/<owner>/<name>/<login>, kept 30 days past the
// last sight.
const writerTTL = 30 * 24 * time.Hour

func writerKey(repo, login string) []byte {
	o, n, _ := strings.Cut(strings.ToLower(repo), "/")
	return store.Key("gh", "writer", o, n, strings.ToLower(login))
}

func (e *Ext) learnWriter(repo, login string) {
	if login == "" {
		return
	}
	_ = e.n.Store().UpdateLazy(func(tx *store.Tx) error { return tx.PutTTL(writerKey(repo, login), true, writerTTL) })
}

func (e *Ext) isWriter(repo, login string) bool {
	if login == "" {
		return false
	}
	var ok bool
	_ = e.n.Store().View(func(tx *store.Tx) error {
		var err error
		ok, err = tx.Has(writerKey(repo, login))
		return err
	})
	return ok
}

// writerAction marks the reference naming the GitHub user whose token
// made a swarm write (writerRef).
const writerAction = "writer"

// writerRef names this node's token user with its task notifications, so
// the master's bot knows that user's events for the swarm's own.
func (e *Ext) writerRef(repo string) []wire.Ref {
	login := e.tokenLogin()
	if login == "" {
		return nil
	}
	return []wire.Ref{{Kind: "url", Repo: repo, URL: "https://github.com/" + url.PathEscape(login), Action: writerAction, Login: login}}
}

// tokenLogin is the user of this node's own token when known; asked in
// the background (GET /user), never on a webhook's or a write's path. An
// App's installation token has none to ask (403): its writes are known
// by their markers.
func (e *Ext) tokenLogin() string {
	e.loginMu.Lock()
	defer e.loginMu.Unlock()
	if e.login == "" && !e.loginAsked {
		e.loginAsked = true
		e.n.Go(func(context.Context) { e.askLogin() })
	}
	return e.login
}

func (e *Ext) askLogin() {
	l, err := e.githubLayer(e.ctx)
	if err != nil || !l.own {
		e.loginMu.Lock()
		e.loginAsked = false // a token may come later
		e.loginMu.Unlock()
		return
	}
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	login, err := l.client.Login(ctx)
	if err != nil {
		e.log.Debug().Err(err).Msg("the token's user is unknown; its writes are known by their markers")
		return
	}
	e.loginMu.Lock()
	e.login = login
	e.loginMu.Unlock()
}

// learnOwn: a write of this node names its token's user, which GET /user
// does not for an App's installation token.
func (e *Ext) learnOwn(ev Event) {
	if _, own := e.ownWrites.Load(ev.WriteID); !own || ev.Actor == "" {
		return
	}
	e.loginMu.Lock()
	if e.login == "" {
		e.login = ev.Actor
	}
	e.loginMu.Unlock()
}

// ghEvent relays one GitHub event to every swarm this node syncs for its
// repository, and to this node's own agent. Swarm writes are dropped.
func (e *Ext) ghEvent(ctx context.Context, ev Event) error {
	repo := strings.ToLower(ev.Repo)
	if ev.WriteID != "" {
		e.learnWriter(repo, ev.Actor)
		e.learnOwn(ev)
		return nil
	}
	if e.isWriter(repo, ev.Actor) || (ev.Actor != "" && strings.EqualFold(ev.Actor, e.tokenLogin())) {
		return nil
	}
	swarms := e.wantBots()[repo]
	if len(swarms) == 0 {
		return errNotSynced
	}
	sort.Strings(swarms)
	body := eventText(ev)
	for _, id := range swarms {
		res, err := e.n.Send(ctx, node.SendArgs{Swarm: id, Type: wire.TypeNotification, Body: body, Refs: []wire.Ref{relayRef(ev)}})
		if err != nil {
			return fmt.Errorf("notify swarm %s: %w", id, err)
		}
		if err := e.n.KeepOwn(res.ID); err != nil {
			e.log.Warn().Err(err).Msg("relay not kept for this node's own agent")
		}
	}
	e.noteRelayed(repo, time.Now())
	return nil
}

var errNotSynced = errors.New("github: this node does not sync the repository")

// heard is a message from a member: a relay of the master's bot (every
// member records what it announced) or a task notification naming its
// writer. Run off the receive path (HandleEvent queues it).
func (e *Ext) heard(ev node.Event) {
	m := ev.Message
	if m == nil || m.Type != wire.TypeNotification {
		return
	}
	if strings.HasPrefix(m.Body, Relay) {
		e.heardRelay(ev)
		return
	}
	// Only the swarm's linked repository: a member cannot make the node
	// keep writers (and so drop the events of GitHub users) of any
	// repository it names.
	if s, err := e.n.LiveSwarm(ev.Swarm); err == nil && s.Repo != "" {
		for _, r := range m.Refs {
			if r.Action == writerAction && r.Kind == "url" && strings.EqualFold(r.Repo, s.Repo) {
				e.learnWriter(r.Repo, r.Login)
			}
		}
	}
	e.heardLease(ev)
}

// heardRelay records what a master's relay announced. Only the swarm's
// master relays: another member's look-alike is not believed (it could
// otherwise silence real events).
func (e *Ext) heardRelay(ev node.Event) {
	s, err := e.n.LiveSwarm(ev.Swarm)
	if err != nil {
		return
	}
	// A relay the old master sent just before a transfer may arrive
	// after it: masters this node has known count.
	// By key: a member that took the master's name is not believed.
	fp := node.FingerprintOf(ev.SenderKey)
	if _, was := e.masters.Load(s.ID + "/" + fp); fp != s.MasterFingerprint && !was {
		return
	}
	for _, r := range ev.Message.Refs {
		// The swarm's own repository only: what it records of others
		// (a horizon per repository, kept for good) no relay needs.
		if r.Repo == "" || !strings.EqualFold(r.Repo, s.Repo) {
			continue
		}
		if keys := relayKeys(r); len(keys) > 0 {
			if err := e.ghSeen().Mark(r.Repo, keys); err != nil {
				e.log.Warn().Err(err).Msg("record a relay")
			}
		}
		e.noteRelayed(r.Repo, time.UnixMilli(ev.Message.Created))
	}
}

// heardLoop takes members' messages off the receive path.
func (e *Ext) heardLoop() {
	for {
		select {
		case <-e.ctx.Done():
			return
		case ev := <-e.inbound:
			e.heard(ev)
		}
	}
}
