package node

import (
	"context"
	"time"

	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/agent-swarm/agent-swarm/store"
)

// SendArgs are the arguments of Send.
type SendArgs struct {
	Swarm    string
	To       string // "" or "*" for all members, else one agent
	Body     string
	Type     string // message (default) or notification
	Thread   string
	ReplyTo  string
	Priority string
	Refs     []wire.Ref
	TTL      time.Duration
	Wait     time.Duration // wait this long for acks; 0 returns at once
}

// SendResult says what happened to a send.
type SendResult struct {
	ID         string     `json:"id"`
	Swarm      string     `json:"swarm"`
	Seq        uint64     `json:"seq"`
	Recipients []string   `json:"recipients"`
	Deliveries []Delivery `json:"deliveries,omitempty"`
}

// Send stores a message, queues it for each recipient and returns once it
// is durably queued (or, with Wait, once every recipient acked or failed).
func (n *Node) Send(ctx context.Context, a SendArgs) (SendResult, error) {
	if a.Type == "" {
		a.Type = wire.TypeMessage
	}
	if a.Type != wire.TypeMessage && a.Type != wire.TypeNotification {
		return SendResult{}, Userf("type must be message or notification, not %q", a.Type)
	}
	if a.Body == "" {
		return SendResult{}, Userf("the message body is empty")
	}
	if a.To == "" {
		a.To = wire.ToAll
	}
	if a.TTL < 0 || a.TTL > n.window.MaxTTL {
		return SendResult{}, Userf("ttl %s is outside (0, %s]", a.TTL, n.window.MaxTTL)
	}
	if a.ReplyTo != "" {
		// The message answered is one this node received or sent.
		id, err := n.resolveID("reply_to", a.ReplyTo, "in the inbox or among the messages sent", inAny)
		if err != nil {
			return SendResult{}, err
		}
		a.ReplyTo = id
	}
	n.mu.Lock()
	s, err := n.live(a.Swarm)
	if err != nil {
		n.mu.Unlock()
		return SendResult{}, err
	}
	var rcpts, names []string
	var toKey string
	if a.To == wire.ToAll {
		rcpts = recipients(s.state, n.key(), func(k string) bool { return s.local.Leaving[k] })
		for _, m := range s.state.Sorted() {
			if m.Key != n.key() && !s.local.Leaving[m.Key] {
				names = append(names, m.Domain)
			}
		}
	} else {
		// Within one swarm a name is one key; a fingerprint works too.
		m, err := n.agentIn(s, a.To)
		if err != nil {
			n.mu.Unlock()
			return SendResult{}, err
		}
		if m.Key == n.key() {
			n.mu.Unlock()
			return SendResult{}, Userf("cannot send a direct message to this node itself")
		}
		if s.local.Leaving[m.Key] {
			n.mu.Unlock()
			return SendResult{}, Userf("%s has left %q", m.Domain, s.state.Settings.Name)
		}
		a.To, toKey = m.Domain, m.Key
		rcpts, names = []string{rcpt(s.state.ID, m.Key)}, []string{m.Domain}
	}
	env, msg, err := n.envelope(s.state, sendSpec{To: a.To, ToKey: toKey, Type: a.Type, Body: a.Body, Thread: a.Thread,
		ReplyTo: a.ReplyTo, Priority: a.Priority, Refs: a.Refs, TTL: a.TTL})
	n.mu.Unlock()
	if err != nil {
		return SendResult{}, err
	}
	// Delivery starts once the write is visible and overlaps the sync; Send
	// returns only when the message is durable. A crash before that loses
	// nothing promised: the caller never saw an ID.
	if err := n.st.UpdateThenEssential(func(tx *store.Tx) error { return n.out.enqueue(tx, env, msg, toKey, rcpts) },
		func() { n.out.kickEnv(rcpts, &queuedEnv{env: env, expires: msg.Expires}, msg.ID) }); err != nil {
		return SendResult{}, err
	}
	n.stats.sent.Add(1)
	res := SendResult{ID: msg.ID, Swarm: s.state.Settings.Name, Seq: msg.Seq, Recipients: names}
	if a.Wait > 0 {
		res.Deliveries, err = n.waitDelivered(ctx, msg.ID, a.Wait)
	}
	return res, err
}

// waitDelivered blocks until no recipient is pending or the wait ends.
func (n *Node) waitDelivered(ctx context.Context, id string, wait time.Duration) ([]Delivery, error) {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		ch := n.out.changed.Wait()
		ds, err := n.deliveries(id)
		if err != nil {
			return nil, err
		}
		pending := false
		for _, d := range ds {
			pending = pending || d.Status == Pending
		}
		done := !pending
		if !done {
			select {
			case <-ch:
			case <-t.C:
				done = true
			case <-ctx.Done():
				done = true
			case <-n.closed:
				done = true
			}
		}
		if done {
			n.nameDeliveries(ds)
			return ds, nil
		}
	}
}

// Flush waits until the outbox is empty or the wait ends; it reports how
// many entries are still queued. A one-shot CLI node uses it before exit.
func (n *Node) Flush(ctx context.Context, wait time.Duration) int {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		ch := n.out.changed.Wait()
		left := n.out.pending()
		if left == 0 {
			return 0
		}
		select {
		case <-ch:
		case <-t.C:
			return left
		case <-ctx.Done():
			return left
		}
	}
}
