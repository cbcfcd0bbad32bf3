package membership

import (
	"errors"
	"fmt"
	"time"

	"github.com/agent-swarm/agent-swarm/node/identity"
	"github.com/agent-swarm/agent-swarm/node/wire"
)

// Master succession (issue #19, docs/protocol.md "Succession"): a member
// other than the master appends a succession record carrying support
// statements from a majority of the members other than the master, all
// signed at the head the record extends and all naming it. Every node
// checks the quorum against its own membership at that head.

// statementSkew is how far after its record a statement may be dated:
// the clocks of signer and candidate may differ this much.
const statementSkew = 5 * time.Minute

// Quorum is how many statements a succession at the current head needs:
// a majority of the members other than the master. With no other member
// there is no succession (the result exceeds who could sign).
func (s *State) Quorum() int { return (len(s.Members)-1)/2 + 1 }

// Deputies are the deputies that can take over now, in order: the keys
// the settings name that are members other than the master.
func (s *State) Deputies() []wire.Member {
	var out []wire.Member
	for _, k := range s.Settings.Deputies {
		if m, ok := s.Member(k); ok && m.Domain != s.Master {
			out = append(out, m)
		}
	}
	return out
}

// Oldest is the member other than the master with the oldest add record:
// the candidate when no deputy can be reached.
func (s *State) Oldest() (wire.Member, bool) {
	var best wire.Member
	found := false
	for d, m := range s.Members {
		if d == s.Master {
			continue
		}
		if !found || s.Since[d] < s.Since[best.Domain] {
			best, found = m, true
		}
	}
	return best, found
}

// Statement is a verified support statement and its signer.
type Statement struct {
	Signed  wire.Signed
	Signer  wire.Member
	Support *wire.Support
}

// CheckStatement verifies a statement against the current state: signed
// by a member other than the master, for this swarm, naming a candidate
// that is a member other than the master. It does not require the
// statement to be at the current head: the caller decides what a
// statement at another head means.
func (s *State) CheckStatement(sg wire.Signed) (*Statement, error) {
	signer, ok := s.Member(sg.KID)
	if !ok {
		return nil, errors.New("statement signed by a key that is not a member")
	}
	if signer.Domain == s.Master {
		return nil, errors.New("the master's own statement does not count")
	}
	if err := verifySupport(sg); err != nil {
		return nil, fmt.Errorf("statement of %s: %w", signer.Domain, err)
	}
	sup, err := wire.ParseSupport(sg.Payload)
	if err != nil {
		return nil, fmt.Errorf("statement of %s: %w", signer.Domain, err)
	}
	if sup.Swarm != s.ID {
		return nil, fmt.Errorf("statement of %s belongs to another swarm", signer.Domain)
	}
	cand, ok := s.Member(sup.Candidate)
	if !ok || cand.Domain == s.Master {
		return nil, fmt.Errorf("statement of %s names a candidate that is not a member other than the master", signer.Domain)
	}
	return &Statement{Signed: sg, Signer: signer, Support: sup}, nil
}

func verifySupport(sg wire.Signed) error {
	pub, err := identity.DecodeKey(sg.KID)
	if err != nil {
		return err
	}
	return sg.Verify(wire.PurposeSupport, pub)
}

// checkSuccession checks a succession record signed by signer against the
// state it extends: the candidate signed it, and a majority of the
// members other than the master support it at this very head.
func (s *State) checkSuccession(rec *wire.Record, signer string) error {
	cand, ok := s.Members[rec.Agent]
	switch {
	case !ok:
		return fmt.Errorf("%s is not a member", rec.Agent)
	case rec.Agent == s.Master:
		return fmt.Errorf("%s is already the master", rec.Agent)
	case cand.Key != signer:
		return errors.New("a succession record must be signed by its candidate")
	}
	need := s.Quorum()
	if len(s.Members) < 2 || len(rec.Support) > len(s.Members)-1 {
		return fmt.Errorf("succession carries %d statements; the swarm has %d members besides the master", len(rec.Support), len(s.Members)-1)
	}
	seen := map[string]bool{}
	for _, sg := range rec.Support {
		st, err := s.CheckStatement(sg)
		if err != nil {
			return err
		}
		sup := st.Support
		switch {
		case seen[sg.KID]:
			return fmt.Errorf("%s's statement appears twice", st.Signer.Domain)
		case sup.Head != s.Head:
			return fmt.Errorf("statement of %s was signed at head %d, not at the head %d the succession extends", st.Signer.Domain, sup.Head.Index, s.Head.Index)
		case sup.Candidate != cand.Key:
			return fmt.Errorf("statement of %s supports another candidate", st.Signer.Domain)
		case time.UnixMilli(sup.Time).After(time.UnixMilli(rec.Time).Add(statementSkew)):
			return fmt.Errorf("statement of %s is dated after the succession record", st.Signer.Domain)
		}
		seen[sg.KID] = true
	}
	if len(seen) < need {
		return fmt.Errorf("succession carries %d statements; a majority of the %d members besides the master is %d", len(seen), len(s.Members)-1, need)
	}
	return nil
}

// ErrNoSupersede says a record does not replace the records this chain
// holds after the head it names (the caller goes on to its fork rules).
var ErrNoSupersede = errors.New("record does not supersede the chain")

// Supersede tries sg, a succession record at an index this chain already
// fills, against the chain as it was at the head sg extends. A valid
// succession replaces what the old master signed after that head (the
// earliest succession wins; a succession this chain already holds at that
// index is kept). It returns the new state, without touching s, and the
// records it drops.
func (s *State) Supersede(sg wire.Signed) (*State, []wire.Signed, error) {
	// The candidate may be a member here or removed by the records that
	// the succession replaces: look its key up in both before verifying.
	if _, member := s.Member(sg.KID); !member {
		if _, removed := s.Removed[sg.KID]; !removed {
			return nil, nil, ErrNoSupersede
		}
	}
	if verifyWith(sg, sg.KID) != nil {
		return nil, nil, ErrNoSupersede
	}
	rec, err := wire.ParseRecord(sg.Payload)
	if err != nil || rec.Type != wire.RecSuccession || rec.Swarm != s.ID || rec.Index == 0 || rec.Index > s.Head.Index {
		return nil, nil, ErrNoSupersede
	}
	held := s.Records[rec.Index]
	if wire.RecordHash(held) == wire.RecordHash(sg) {
		return nil, nil, ErrNoSupersede
	}
	if hr, err := wire.ParseRecord(held.Payload); err != nil || hr.Type == wire.RecSuccession {
		return nil, nil, ErrNoSupersede
	}
	base, err := Replay(s.Records[:rec.Index])
	if err != nil {
		return nil, nil, err
	}
	if err := base.Apply(sg); err != nil {
		return nil, nil, fmt.Errorf("succession record %d: %w", rec.Index, err)
	}
	dropped := append([]wire.Signed(nil), s.Records[rec.Index:]...)
	return base, dropped, nil
}

// Succession describes the last succession in the chain, if any.
type Succession struct {
	Index  uint64 `json:"index"`
	Master string `json:"master"` // the new master
	From   string `json:"from"`   // the master it replaced
	Time   int64  `json:"time"`
	Votes  int    `json:"votes"`
}

// LastSuccession finds the latest succession record of the chain.
func (s *State) LastSuccession() (Succession, bool) {
	for i := len(s.Terms) - 1; i > 0; i-- {
		t := s.Terms[i]
		rec, err := wire.ParseRecord(s.Records[t.From].Payload)
		if err != nil || rec.Type != wire.RecSuccession {
			continue
		}
		prev, _ := wire.ParseRecord(s.Records[s.Terms[i-1].From].Payload)
		from := ""
		if prev != nil {
			from = termHolder(prev)
		}
		return Succession{Index: t.From, Master: rec.Agent, From: from, Time: rec.Time, Votes: len(rec.Support)}, true
	}
	return Succession{}, false
}

// termHolder is the domain a record that starts a term gives the role to.
func termHolder(r *wire.Record) string {
	if r.Type == wire.RecCreate {
		return r.Member.Domain
	}
	return r.Agent
}
