package membership

import (
	"fmt"

	"github.com/agent-swarm/agent-swarm/node/wire"
)

// Fork is proof that someone who held the master role signed a record the
// chain cannot contain: a second record at an index the chain already
// fills (equivocation), or a record at an index after its term ended.
// Both records verify under Signer's key, so anyone can check the proof.
type Fork struct {
	Swarm  string      `json:"swarm"`
	Index  uint64      `json:"index"`
	Signer string      `json:"signer"`         // the key that signed Other
	Reason string      `json:"reason"`         // what the proof shows, in words
	Held   wire.Signed `json:"held,omitempty"` // the record this node follows at Index, if it has one
	Other  wire.Signed `json:"other"`          // the record that conflicts with the chain
}

// CheckFork reports whether sg, a record this node did not apply, proves a
// fork of the chain it holds. Only records verified under a key that held
// the master role count: anything else is just a bad record.
func (s *State) CheckFork(sg wire.Signed) (*Fork, bool) {
	term, next, ok := s.term(sg.KID)
	if !ok {
		return nil, false
	}
	if verifyWith(sg, sg.KID) != nil {
		return nil, false
	}
	rec, err := wire.ParseRecord(sg.Payload)
	if err != nil || rec.Index == 0 || rec.Swarm != s.ID {
		return nil, false
	}
	f := &Fork{Swarm: s.ID, Index: rec.Index, Signer: sg.KID, Other: sg}
	ended := next != nil
	switch {
	case rec.Index <= s.Head.Index:
		held := s.Records[rec.Index]
		if wire.RecordHash(held) == wire.RecordHash(sg) {
			return nil, false
		}
		f.Held = held
		switch {
		case held.KID == sg.KID:
			f.Reason = fmt.Sprintf("the master signed two different records at index %d", rec.Index)
		case ended && rec.Index >= next.From && isSuccession(s.Records[next.From]):
			f.Reason = fmt.Sprintf("a master the members replaced (succession at index %d) signed record %d after it", next.From, rec.Index)
		case ended && rec.Index > next.From:
			f.Reason = fmt.Sprintf("a former master signed record %d after handing the role on at index %d", rec.Index, next.From)
		default:
			f.Reason = fmt.Sprintf("a master signed record %d outside its term (from index %d)", rec.Index, term.From)
		}
	case ended && isSuccession(s.Records[next.From]):
		f.Reason = fmt.Sprintf("a master the members replaced (succession at index %d) signed record %d after it", next.From, rec.Index)
	case ended:
		f.Reason = fmt.Sprintf("a former master signed record %d after handing the role on at index %d", rec.Index, next.From)
	default:
		// The current master extending past our head: a gap, not a fork.
		return nil, false
	}
	return f, true
}

// term finds the last term key held and the term after it (nil when key
// is the current master).
func (s *State) term(key string) (Term, *Term, bool) {
	for i := len(s.Terms) - 1; i >= 0; i-- {
		if s.Terms[i].Key == key {
			if i+1 < len(s.Terms) {
				return s.Terms[i], &s.Terms[i+1], true
			}
			return s.Terms[i], nil, true
		}
	}
	return Term{}, nil, false
}

// isSuccession reports whether a held record is a succession record.
func isSuccession(sg wire.Signed) bool {
	r, err := wire.ParseRecord(sg.Payload)
	return err == nil && r.Type == wire.RecSuccession
}
