// Package membership holds a swarm's membership state and the rules of its
// hash-chained log: only the current master appends, every record is
// checked against the whole chain before it is applied.
package membership

import (
	"errors"
	"fmt"
	"sort"

	"github.com/agent-swarm/agent-swarm/node/identity"
	"github.com/agent-swarm/agent-swarm/node/wire"
)

// State is a swarm's membership as of its log head.
type State struct {
	ID       string
	Settings wire.Settings
	Master   string                 // domain of the master
	Members  map[string]wire.Member // by domain
	Removed  map[string]Removal     // by key: who left or was kicked, and when
	Head     wire.Head
	Records  []wire.Signed
	Created  int64
}

// Removal remembers why and at which index a key left the swarm.
type Removal struct {
	Domain string
	Reason string
	Index  uint64
}

// ErrNotNext is returned for a record that does not extend the head: the
// caller may be behind (a gap) or it may be old (already applied).
var ErrNotNext = errors.New("record does not extend the log head")

// New starts a state from a signed genesis record.
func New(genesis wire.Signed) (*State, error) {
	// The genesis record is signed by its creator: verify against the key
	// the hint names, then check the record names that same key.
	if err := verifyWith(genesis, genesis.KID); err != nil {
		return nil, fmt.Errorf("genesis record: %w", err)
	}
	rec, err := wire.ParseRecord(genesis.Payload)
	if err != nil {
		return nil, err
	}
	if rec.Type != wire.RecCreate || rec.Member == nil || genesis.KID != rec.Member.Key {
		return nil, errors.New("genesis record: not a create record signed by its creator")
	}
	if rec.Type != wire.RecCreate || rec.Index != 0 {
		return nil, errors.New("the first record must be a create record")
	}
	s := &State{
		ID:       wire.SwarmID(genesis),
		Settings: *rec.Settings,
		Master:   rec.Member.Domain,
		Members:  map[string]wire.Member{rec.Member.Domain: *rec.Member},
		Removed:  map[string]Removal{},
		Head:     wire.Head{Index: 0, Hash: wire.RecordHash(genesis)},
		Records:  []wire.Signed{genesis},
		Created:  rec.Time,
	}
	return s, nil
}

// Replay rebuilds a state from a whole log.
func Replay(records []wire.Signed) (*State, error) {
	if len(records) == 0 {
		return nil, errors.New("empty membership log")
	}
	s, err := New(records[0])
	if err != nil {
		return nil, err
	}
	for _, r := range records[1:] {
		if err := s.Apply(r); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func verifyWith(sg wire.Signed, key string) error {
	pub, err := identity.DecodeKey(key)
	if err != nil {
		return err
	}
	return sg.Verify(wire.PurposeRecord, pub)
}

// Apply checks rec against the state and the rules and, if it passes,
// applies it. A failed Apply leaves the state unchanged.
func (s *State) Apply(sg wire.Signed) error {
	// Verify first: the signer must be the current master.
	master := s.Members[s.Master]
	if sg.KID != master.Key {
		return fmt.Errorf("record is not signed by the master %s", s.Master)
	}
	if err := verifyWith(sg, master.Key); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	rec, err := wire.ParseRecord(sg.Payload)
	if err != nil {
		return err
	}
	if rec.Swarm != s.ID {
		return errors.New("record belongs to another swarm")
	}
	if rec.Index != s.Head.Index+1 || rec.Prev != s.Head.Hash {
		return fmt.Errorf("%w: record %d, head %d", ErrNotNext, rec.Index, s.Head.Index)
	}
	if err := s.check(rec); err != nil {
		return err
	}
	s.apply(rec)
	s.Head = wire.Head{Index: rec.Index, Hash: wire.RecordHash(sg)}
	s.Records = append(s.Records, sg)
	return nil
}

// check enforces the membership rules of DESIGN §4.
func (s *State) check(rec *wire.Record) error {
	switch rec.Type {
	case wire.RecCreate:
		return errors.New("a swarm has only one create record")
	case wire.RecAdd:
		m := rec.Member
		if _, ok := s.Members[m.Domain]; ok {
			return fmt.Errorf("%s is already a member", m.Domain)
		}
		if s.KeyOwner(m.Key) != "" {
			return errors.New("that key already belongs to a member")
		}
		// An invite issued before the kick saw a head below the kick's index.
		if r, ok := s.Removed[m.Key]; ok && r.Reason == wire.ReasonKick && rec.InviteAt < r.Index {
			return fmt.Errorf("%s was kicked; an invite issued before the kick cannot readmit it", m.Domain)
		}
	case wire.RecRemove:
		if _, ok := s.Members[rec.Agent]; !ok {
			return fmt.Errorf("%s is not a member", rec.Agent)
		}
		if rec.Agent == s.Master {
			return errors.New("the master cannot be removed; transfer the master role first")
		}
	case wire.RecTransfer:
		if _, ok := s.Members[rec.Agent]; !ok {
			return fmt.Errorf("%s is not a member", rec.Agent)
		}
		if rec.Agent == s.Master {
			return fmt.Errorf("%s is already the master", rec.Agent)
		}
	}
	return nil
}

func (s *State) apply(rec *wire.Record) {
	switch rec.Type {
	case wire.RecAdd:
		s.Members[rec.Member.Domain] = *rec.Member
		delete(s.Removed, rec.Member.Key)
	case wire.RecRemove:
		m := s.Members[rec.Agent]
		delete(s.Members, rec.Agent)
		s.Removed[m.Key] = Removal{Domain: m.Domain, Reason: rec.Reason, Index: rec.Index}
	case wire.RecTransfer:
		s.Master = rec.Agent
	case wire.RecSettings:
		s.Settings = *rec.Settings
	}
}

// KeyOwner returns the member domain that holds key, or "".
func (s *State) KeyOwner(key string) string {
	for d, m := range s.Members {
		if m.Key == key {
			return d
		}
	}
	return ""
}

// IsMember reports whether domain is a member.
func (s *State) IsMember(domain string) bool { _, ok := s.Members[domain]; return ok }

// Sorted returns the members ordered by domain, master first.
func (s *State) Sorted() []wire.Member {
	out := make([]wire.Member, 0, len(s.Members))
	for _, m := range s.Members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Domain == s.Master) != (out[j].Domain == s.Master) {
			return out[i].Domain == s.Master
		}
		return out[i].Domain < out[j].Domain
	})
	return out
}

// Clone returns a deep copy, so a caller can try records without touching s.
func (s *State) Clone() *State {
	c := *s
	c.Members = make(map[string]wire.Member, len(s.Members))
	for k, v := range s.Members {
		c.Members[k] = v
	}
	c.Removed = make(map[string]Removal, len(s.Removed))
	for k, v := range s.Removed {
		c.Removed[k] = v
	}
	c.Records = append([]wire.Signed(nil), s.Records...)
	return &c
}

// After returns the records after index n.
func (s *State) After(n uint64) []wire.Signed {
	if n+1 >= uint64(len(s.Records)) {
		return nil
	}
	return s.Records[n+1:]
}

// ApplyAll applies records in order, skipping those already applied, and
// returns how many were new. It stops at the first record that fails; a
// record that differs from the one held at its index fails as not-next.
func (s *State) ApplyAll(records []wire.Signed) (int, error) {
	held := make(map[string]bool, len(s.Records))
	for _, r := range s.Records {
		held[wire.RecordHash(r)] = true
	}
	n := 0
	for _, r := range records {
		if held[wire.RecordHash(r)] {
			continue
		}
		if err := s.Apply(r); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
