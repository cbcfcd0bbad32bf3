package node

import (
	"encoding/binary"
	"fmt"

	"github.com/agent-swarm/agent-swarm/node/membership"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/agent-swarm/agent-swarm/store"
	"github.com/google/uuid"
)

// maxForkProofs bounds the proofs kept per swarm: one is enough to know,
// a few show a pattern, and a former master must not fill the disk.
const maxForkProofs = 16

func forkKey(swarmID string, index uint64, hash string) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], index)
	k := append(store.Key("f", swarmID, ""), b[:]...)
	return append(k, "/"+hash...)
}

// checkForks looks for proof of a fork among records that did not apply.
// A proof is kept (f/<swarm>/<index>/<hash>), the swarm is marked, and the
// user is told once per proof in the inbox; the node keeps the chain it
// has (st, which may have advanced by the records before the failure) and
// follows neither the fork nor its signer's later records.
// Caller holds n.mu.
//
// Only the first record the chain does not hold is examined: it is where a
// peer's log leaves ours, so it is the proof if there is one, and a batch
// of records under a master's key hint costs one verification, not one
// per record.
func (n *Node) checkForks(s *swarm, st *membership.State, recs []wire.Signed) {
	r, ok := firstUnheld(st, recs)
	if !ok {
		return
	}
	f, ok := st.CheckFork(r)
	if !ok {
		return
	}
	key := forkKey(f.Swarm, f.Index, wire.RecordHash(f.Other))
	fresh := false
	local := s.local
	local.Fork = f.Reason
	err := n.st.Update(func(tx *store.Tx) error {
		if had, err := tx.Has(key); err != nil || had {
			return err
		}
		count := 0
		if err := tx.Scan(store.Key("f", f.Swarm, ""), nil, func([]byte, func(any) error) (bool, error) {
			count++
			return count < maxForkProofs, nil
		}); err != nil {
			return err
		}
		if count >= maxForkProofs {
			return nil
		}
		fresh = true
		if err := tx.Put(key, f); err != nil {
			return err
		}
		return tx.Put(store.Key("w", f.Swarm), local)
	})
	if err != nil {
		n.log.Error().Err(err).Msg("could not keep a fork proof")
		return
	}
	if !fresh {
		return
	}
	s.local = local
	signer := fingerprintOf(f.Signer)
	n.log.Warn().Str("swarm", f.Swarm).Uint64("index", f.Index).Str("signer", signer).Str("why", f.Reason).Msg("membership log fork: proof kept, fork not followed")
	body := fmt.Sprintf("The membership log of swarm %q forked: %s (signer's key %s). This node keeps the chain it had at index %d and does not follow the fork; the proof (both signed records) is kept. Ask the members which chain they hold before you trust that key with the swarm again.",
		st.Settings.Name, f.Reason, signer, st.Head.Index)
	n.loop(func() { n.notice(f.Swarm, "fork", body) })
}

// firstUnheld returns the first record of recs that the chain does not
// hold (by hash), or none.
func firstUnheld(st *membership.State, recs []wire.Signed) (wire.Signed, bool) {
	held := make(map[string]bool, len(st.Records))
	for _, r := range st.Records {
		held[wire.RecordHash(r)] = true
	}
	for _, r := range recs {
		if !held[wire.RecordHash(r)] {
			return r, true
		}
	}
	return wire.Signed{}, false
}

// Forks returns the fork proofs kept for a swarm.
func (n *Node) Forks(ref string) ([]membership.Fork, error) {
	n.mu.Lock()
	s, err := n.resolve(ref)
	n.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out := []membership.Fork{}
	err = n.st.View(func(tx *store.Tx) error {
		return tx.Scan(store.Key("f", s.state.ID, ""), nil, func(_ []byte, dec func(any) error) (bool, error) {
			var f membership.Fork
			if err := dec(&f); err != nil {
				return false, err
			}
			out = append(out, f)
			return true, nil
		})
	})
	return out, err
}

// notice puts a message from this node itself into its own inbox: what
// the user must know about a swarm (a fork), shown like any message but
// marked as coming from the node, not a peer.
func (n *Node) notice(swarmID, event, body string) {
	id, err := uuid.NewV7()
	if err != nil {
		return
	}
	now := n.now()
	m := wire.Message{V: wire.Version, ID: id.String(), Swarm: swarmID, From: n.cfg.Domain, To: n.cfg.Domain,
		Type: wire.TypeSystem, Event: event, Created: now.UnixMilli(), Expires: now.Add(n.window.MaxTTL).UnixMilli(),
		Priority: "high", Body: body}
	n.recvMu.Lock()
	defer n.recvMu.Unlock()
	arrival := n.arrival + 1
	if err := n.st.Update(func(tx *store.Tx) error {
		return n.putInbox(tx, InboxItem{Msg: m, Received: now.UnixMilli(), Arrival: arrival, Key: n.key(), Local: true})
	}); err != nil {
		n.log.Error().Err(err).Msg("could not store a notice")
		return
	}
	n.arrival = arrival
	n.events.Notify()
}
