package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/agent-swarm/agent-swarm/node/membership"
	"github.com/agent-swarm/agent-swarm/node/transport"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/agent-swarm/agent-swarm/store"
	"github.com/google/uuid"
)

// Delivery states.
const (
	Pending   = "pending"
	Delivered = "delivered"
	Failed    = "failed"
)

// Delivery is the status of a sent message at one recipient
// (d/<id>/<recipient>, the recipient being "<swarm>:<key>").
type Delivery struct {
	Peer        string `json:"peer"`        // the name the recipient went by
	Fingerprint string `json:"fingerprint"` // the recipient's key: who it is
	To          string `json:"-"`           // recipient ID
	Status      string `json:"status"`
	Reason      string `json:"reason,omitempty"`
	Updated     int64  `json:"updated"`
}

type outItem struct {
	Expires int64 `json:"expires"`
}

// sentMessage is a message this node sent (m/<id>): the exact envelope,
// which the outbox sends to every recipient. (Records written before
// issue #17 also hold the decoded message as "msg"; nothing read it, and
// encoding it again cost every send a JSON encoding and 1 KB more to sync.)
type sentMessage struct {
	Env wire.Signed `json:"env"`
}

// message decodes the message this node signed (its own payload, so no
// window check: a sent message may have expired since).
func (sm sentMessage) message() (wire.Message, error) {
	var m wire.Message
	if err := json.Unmarshal(sm.Env.Payload, &m); err != nil {
		return wire.Message{}, fmt.Errorf("a sent message's envelope: %w", err)
	}
	return m, nil
}

// sendSpec is what a caller asks to send.
type sendSpec struct {
	To       string // wire.ToAll or the recipient's name
	ToKey    string // the recipient's key, for a direct message
	Type     string
	Event    string
	Records  []wire.Signed
	Support  *wire.Signed // a support statement (succession.go)
	Body     string
	Thread   string
	ReplyTo  string
	Priority string
	Refs     []wire.Ref
	TTL      time.Duration
}

// envelope builds and signs a message in swarm st. The sequence number is
// per sender, swarm and audience ("*" or one agent), so each reader's
// stream is gap-free when nothing is lost.
func (n *Node) envelope(st *membership.State, sp sendSpec) (wire.Signed, *wire.Message, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return wire.Signed{}, nil, err
	}
	now := n.now()
	ttl := sp.TTL
	if ttl == 0 {
		ttl = n.cfg.TTL.or(72 * time.Hour)
	}
	m := &wire.Message{
		V: wire.Version, ID: id.String(), Swarm: st.ID, From: n.cfg.Domain, To: sp.To, Type: sp.Type,
		Thread: sp.Thread, ReplyTo: sp.ReplyTo, Created: now.UnixMilli(), Expires: now.Add(ttl).UnixMilli(),
		Head: st.Head, Priority: sp.Priority, Body: sp.Body, Refs: sp.Refs,
		Event: sp.Event, Records: sp.Records, Support: sp.Support,
	}
	// Checked before a sequence number is taken: a refused send must not
	// leave readers a gap that no lost message made.
	if err := m.Check(now, n.window); err != nil {
		return wire.Signed{}, nil, Userf("%v", err)
	}
	m.Seq = n.out.nextSeq(st.ID, stream(sp.Type, sp.ToKey))
	b, err := json.Marshal(m)
	if err != nil {
		return wire.Signed{}, nil, err
	}
	return wire.Sign(wire.PurposeEnvelope, wire.KeyHint(st.ID, n.id.KeyString()), n.id.Key, b), m, nil
}

// stream names a sequence: system messages count apart, so the streams a
// reader sees (broadcast, or direct to it, by its key) have no gaps from
// traffic that never reaches its inbox.
func stream(typ, toKey string) string {
	switch {
	case typ == wire.TypeSystem:
		return "!system"
	case toKey == "":
		return wire.ToAll
	}
	return toKey
}

type outbox struct {
	n       *Node
	mu      sync.Mutex
	senders map[string]*peerSender
	seq     map[string]uint64
	changed *broadcaster
	started bool
}

func newOutbox(n *Node) *outbox {
	o := &outbox{n: n, senders: map[string]*peerSender{}, seq: map[string]uint64{}, changed: newBroadcaster()}
	n.pres.onHeard = o.heard
	return o
}

// heard wakes the senders to a peer (by key, in every swarm) that was
// silent and was just heard from: they retry at once, not at the end of
// their backoff.
func (o *outbox) heard(key string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for id, s := range o.senders {
		if _, k, err := wire.SplitKeyHint(id); err == nil && k == key {
			select {
			case s.live <- struct{}{}:
			default:
			}
		}
	}
}

func (o *outbox) nextSeq(swarm, to string) uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	k := swarm + "/" + to
	v, ok := o.seq[k]
	if !ok {
		_ = o.n.st.View(func(tx *store.Tx) error { return tx.Get(store.Key("n", swarm, o.n.key(), to), &v) })
	}
	v++
	o.seq[k] = v
	return v
}

// enqueue stores the message and one outbox entry per recipient ID in tx.
func (o *outbox) enqueue(tx *store.Tx, env wire.Signed, m *wire.Message, toKey string, recipients []string) error {
	if err := tx.Put(store.Key("m", m.ID), sentMessage{Env: env}); err != nil {
		return err
	}
	if err := tx.Put(store.Key("n", m.Swarm, o.n.key(), stream(m.Type, toKey)), m.Seq); err != nil {
		return err
	}
	now := o.n.now().UnixMilli()
	for _, r := range recipients {
		if err := tx.Put(store.Key("o", r, m.ID), outItem{Expires: m.Expires}); err != nil {
			return err
		}
		if err := tx.Put(store.Key("d", m.ID, r), Delivery{Status: Pending, Updated: now}); err != nil {
			return err
		}
	}
	return nil
}

// start resumes every queued peer after a restart. It is the only scan of
// the outbox: afterwards each sender keeps its queue in memory, because
// iterating a badger prefix that has seen many deletes walks every
// tombstone.
func (o *outbox) start() {
	queued := map[string][]string{}
	_ = o.n.st.View(func(tx *store.Tx) error {
		return tx.Scan([]byte("o/"), nil, func(k []byte, _ func(any) error) (bool, error) {
			if parts := strings.SplitN(string(k), "/", 3); len(parts) == 3 {
				queued[parts[1]] = append(queued[parts[1]], parts[2])
			}
			return true, nil
		})
	})
	o.mu.Lock()
	o.started = true
	o.mu.Unlock()
	for peer, ids := range queued {
		o.kick([]string{peer}, ids...)
	}
}

// kick hands new message IDs to the peers' senders (starting them if
// needed) and wakes them. Callers kick after the enqueue has committed.
func (o *outbox) kick(peers []string, ids ...string) { o.kickEnv(peers, nil, ids...) }

// kickEnv is kick with the envelope at hand, which the senders keep so
// they need not read it back from the store (a single id then).
func (o *outbox) kickEnv(peers []string, env *queuedEnv, ids ...string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.started {
		return
	}
	for _, p := range peers {
		s, ok := o.senders[p]
		if !ok {
			s = &peerSender{o: o, peer: p, wake: make(chan struct{}, 1), live: make(chan struct{}, 1), queued: map[string]bool{}}
			o.senders[p] = s
			o.n.loop(s.run)
		}
		s.push(ids, env)
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// pending counts queued entries (all peers).
func (o *outbox) pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := 0
	for _, s := range o.senders {
		s.mu.Lock()
		c += len(s.queue)
		s.mu.Unlock()
	}
	return c
}

type peerSender struct {
	o    *outbox
	peer string
	wake chan struct{}
	live chan struct{} // the peer, silent, was heard from: retry now

	mu     sync.Mutex
	err    string
	queue  []string        // IDs waiting for this peer, oldest first
	queued map[string]bool // the same, as a set
	// envs holds the envelopes of queued IDs when the sender had them at
	// hand, up to maxCachedEnvs; the rest are read from the store.
	envs map[string]queuedEnv
}

// queuedEnv is an envelope kept in memory for the peer senders.
type queuedEnv struct {
	env     wire.Signed
	expires int64
}

// maxCachedEnvs bounds the envelopes a sender keeps in memory (a peer
// offline for long queues many; those are read from the store).
const maxCachedEnvs = 4096

func (p *peerSender) push(ids []string, env *queuedEnv) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		if !p.queued[id] {
			p.queued[id] = true
			p.queue = append(p.queue, id)
			if env != nil && len(ids) == 1 && len(p.envs) < maxCachedEnvs {
				if p.envs == nil {
					p.envs = map[string]queuedEnv{}
				}
				p.envs[id] = *env
			}
		}
	}
}

func (p *peerSender) cached(id string) (queuedEnv, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.envs[id]
	return e, ok
}

func (p *peerSender) head(max int) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.queue[:min(max, len(p.queue))]...)
}

// drop removes settled IDs from the queue.
func (p *peerSender) drop(ids []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	gone := map[string]bool{}
	for _, id := range ids {
		if p.queued[id] {
			gone[id] = true
			delete(p.queued, id)
			delete(p.envs, id)
		}
	}
	if len(gone) == 0 {
		return
	}
	q := p.queue[:0]
	for _, id := range p.queue {
		if !gone[id] {
			q = append(q, id)
		}
	}
	p.queue = q
}

const batchSize = 64

func (p *peerSender) run() {
	n := p.o.n
	var fails int
	for {
		ids, envs, err := p.load()
		if err != nil {
			if errors.Is(err, store.ErrClosed) {
				return
			}
			n.log.Error().Err(err).Str("peer", p.peer).Msg("outbox read failed")
		}
		if len(ids) == 0 {
			select {
			case <-n.ctx.Done():
				return
			case <-p.wake:
				continue
			}
		}
		retry := p.send(ids, envs)
		if !retry {
			fails = 0
			continue
		}
		fails++
		d := backoff(fails, n.cfg.RetryMin.or(250*time.Millisecond), n.cfg.RetryMax.or(30*time.Second))
		// A peer that misses heartbeats is offline: retry it when it is
		// heard from, or with its next heartbeat, not every RetryMax (each
		// attempt is a QUIC handshake that times out).
		if _, key, err := wire.SplitKeyHint(p.peer); err == nil {
			d = max(d, n.pres.silentUntil(key).Sub(n.now()))
		}
		if !p.sleep(d) {
			return
		}
	}
}

// backoff is exponential with full jitter between half and all of the step.
func backoff(fails int, min, max time.Duration) time.Duration {
	d := min
	for i := 1; i < fails && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func (p *peerSender) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.o.n.ctx.Done():
		return false
	case <-t.C:
		return true
	case <-p.live:
		return true
	}
}

// load reads the oldest queued envelopes for the peer, dropping expired
// ones and any that another path already settled.
func (p *peerSender) load() ([]string, []wire.Signed, error) {
	n := p.o.n
	now := n.now().UnixMilli()
	var ids, expired, gone []string
	var envs []wire.Signed
	// Take the head before the snapshot: every ID in it was committed
	// before it was queued, so the snapshot sees it. Taken inside, an ID
	// queued after the snapshot began would look settled and be dropped.
	head := p.head(batchSize)
	err := n.st.View(func(tx *store.Tx) error {
		for _, id := range head {
			// Queued and not settled (settling drops it from the queue
			// and the cache): the envelope at hand is the one stored.
			if q, ok := p.cached(id); ok {
				if q.expires <= now {
					expired = append(expired, id)
				} else {
					ids, envs = append(ids, id), append(envs, q.env)
				}
				continue
			}
			var it outItem
			err := tx.Get(store.Key("o", p.peer, id), &it)
			if errors.Is(err, store.ErrNotFound) {
				gone = append(gone, id)
				continue
			}
			if err != nil {
				return err
			}
			if it.Expires <= now {
				expired = append(expired, id)
				continue
			}
			var sm sentMessage
			if err := tx.Get(store.Key("m", id), &sm); err != nil {
				return err
			}
			ids = append(ids, id)
			envs = append(envs, sm.Env)
		}
		return nil
	})
	p.drop(gone)
	if err == nil && len(expired) > 0 {
		err = p.settle(expired, func(string) (string, string, bool) { return Failed, "expired before delivery", true })
	}
	return ids, envs, err
}

// send posts one batch and settles what the reply decides. It reports
// whether to back off and retry.
func (p *peerSender) send(ids []string, envs []wire.Signed) bool {
	n := p.o.n
	n.mu.Lock()
	m, ok := n.addrOf(p.peer)
	n.mu.Unlock()
	if !ok {
		_ = p.settle(ids, func(string) (string, string, bool) {
			return Failed, "no address known for this recipient in its swarm", true
		})
		return false
	}
	body, _ := json.Marshal(wire.Batch{Envelopes: envs})
	ctx, cancel := context.WithTimeout(n.ctx, 20*time.Second)
	code, reply, err := n.client.Do(ctx, transport.Peer{Addr: m.Addr, Pin: m.Pin}, "POST", "/swarm/v1/messages", body, nil, 1<<20)
	cancel()
	if err == nil && code != 200 {
		err = errors.New(peerError(reply))
	}
	var br *wire.BatchReply
	if err == nil {
		br, err = wire.DecodeBatchReply(reply, len(ids))
	}
	if err != nil {
		p.setErr(err.Error())
		n.log.Debug().Err(err).Str("peer", p.peer).Int("queued", len(ids)).Msg("delivery attempt failed")
		return true
	}
	p.setErr("")
	retry := false
	byID := map[string]wire.Result{}
	for i, r := range br.Results {
		byID[ids[i]] = r
		if r.Status == wire.Rejected && r.Retry {
			retry = true
			p.setErr(peerText(r.Reason))
		}
	}
	if err := p.settle(ids, func(id string) (string, string, bool) {
		r := byID[id]
		switch {
		case r.Status == wire.Accepted || r.Status == wire.Duplicate:
			return Delivered, "", true
		case r.Status == wire.Rejected && !r.Retry:
			return Failed, peerText(r.Reason), true
		}
		return "", "", false
	}); err != nil {
		n.log.Error().Err(err).Msg("outbox settle failed")
		return true
	}
	return retry
}

// settle removes finished entries and records their status in one commit.
func (p *peerSender) settle(ids []string, verdict func(id string) (status, reason string, done bool)) error {
	n := p.o.n
	now := n.now().UnixMilli()
	var settled, statuses []string
	// Lazy: if this record is lost in a crash, the message is sent again
	// and the receiver answers duplicate.
	// Essential: the node's own sends work near a full disk (store doc).
	err := n.st.UpdateLazyEssential(func(tx *store.Tx) error {
		settled, statuses = settled[:0], statuses[:0]
		for _, id := range ids {
			st, reason, done := verdict(id)
			if !done {
				continue
			}
			if err := tx.Delete(store.Key("o", p.peer, id)); err != nil {
				return err
			}
			if err := tx.Put(store.Key("d", id, p.peer), Delivery{Status: st, Reason: reason, Updated: now}); err != nil {
				return err
			}
			settled, statuses = append(settled, id), append(statuses, st)
		}
		return nil
	})
	if err == nil {
		p.drop(settled)
		for i, id := range settled {
			n.stats.settled(id, statuses[i], n.now())
		}
		p.o.changed.Notify()
	}
	return err
}

func (p *peerSender) setErr(s string) { p.mu.Lock(); p.err = s; p.mu.Unlock() }

func (p *peerSender) lastErr() string { p.mu.Lock(); defer p.mu.Unlock(); return p.err }

// Deliveries returns the per-recipient status of a sent message.
func (n *Node) Deliveries(id string) ([]Delivery, error) {
	ds, err := n.deliveries(id)
	n.nameDeliveries(ds)
	return ds, err
}

// nameDeliveries fills in who each recipient is, for people: its name and
// key fingerprint (a hash per recipient, so done once, not per poll).
func (n *Node) nameDeliveries(ds []Delivery) {
	for i := range ds {
		ds[i].Peer, ds[i].Fingerprint = n.nameOf(ds[i].To)
	}
}

// deliveries reads the per-recipient status of a sent message, without
// names.
func (n *Node) deliveries(ref string) ([]Delivery, error) {
	id, err := n.resolveID("", ref, "was sent by this node", inSent)
	if err != nil {
		return nil, err
	}
	out := []Delivery{}
	found := false
	err = n.st.View(func(tx *store.Tx) error {
		ok, err := tx.Has(store.Key("m", id))
		if err != nil {
			return err
		}
		found = ok
		prefix := store.Key("d", id, "")
		return tx.Scan(prefix, nil, func(k []byte, dec func(any) error) (bool, error) {
			var d Delivery
			if err := dec(&d); err != nil {
				return false, err
			}
			d.To = string(k[len(prefix):])
			out = append(out, d)
			return true, nil
		})
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, NotFoundf("no message %s was sent by this node", id)
	}
	n.out.mu.Lock()
	for i := range out {
		if s, ok := n.out.senders[out[i].To]; ok && out[i].Status == Pending {
			out[i].Reason = s.lastErr()
		}
	}
	n.out.mu.Unlock()
	return out, nil
}
