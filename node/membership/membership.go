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
	Members  map[string]wire.Member // by domain; a domain names one key at a time
	Since    map[string]uint64      // by domain: index of the member's latest add (or create)
	Removed  map[string]Removal     // by key: who left or was kicked, and when
	Kicked   map[string]Removal     // by domain: a kick binds the name as well as the key
	Head     wire.Head
	Records  []wire.Signed
	Created  int64
	// Terms lists every key that held the master role, with the index of
	// the record that gave it; a record signed by a key after its term
	// ended is a fork (DESIGN §4).
	Terms []Term
}

// Term is one master's tenure: Key signed the records after From up to
// the record that handed the role on (the next term's From).
type Term struct {
	Key  string
	From uint64
}

// Removal remembers why and at which index a key left the swarm, and
// where it was, so the node can still tell it of its removal.
type Removal struct {
	Domain string
	Reason string
	Index  uint64
	Member wire.Member
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
		Since:    map[string]uint64{rec.Member.Domain: 0},
		Removed:  map[string]Removal{},
		Kicked:   map[string]Removal{},
		Terms:    []Term{{Key: rec.Member.Key, From: 0}},
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
	// Verify first: the signer must be the current master, or a member
	// for the one record a member signs (a succession).
	master := s.Members[s.Master]
	if _, member := s.Member(sg.KID); !member {
		return fmt.Errorf("record is not signed by the master %s", s.Master)
	}
	if err := verifyWith(sg, sg.KID); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	rec, err := wire.ParseRecord(sg.Payload)
	if err != nil {
		return err
	}
	if (rec.Type == wire.RecSuccession) == (sg.KID == master.Key) {
		if rec.Type == wire.RecSuccession {
			return errors.New("the master cannot sign a succession record")
		}
		return fmt.Errorf("record is not signed by the master %s", s.Master)
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
	if rec.Type == wire.RecSuccession {
		if err := s.checkSuccession(rec, sg.KID); err != nil {
			return err
		}
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
		if r, ok := s.KickedBefore(m, rec.InviteAt); ok {
			return fmt.Errorf("%s was kicked at record %d; an invite issued before the kick cannot readmit it, under its old key or its old name", r.Domain, r.Index)
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
		s.Since[rec.Member.Domain] = rec.Index
		delete(s.Removed, rec.Member.Key)
	case wire.RecRemove:
		m := s.Members[rec.Agent]
		delete(s.Members, rec.Agent)
		delete(s.Since, rec.Agent)
		r := Removal{Domain: m.Domain, Reason: rec.Reason, Index: rec.Index, Member: m}
		s.Removed[m.Key] = r
		if rec.Reason == wire.ReasonKick {
			s.Kicked[m.Domain] = r
		}
	case wire.RecTransfer, wire.RecSuccession:
		s.Master = rec.Agent
		s.Terms = append(s.Terms, Term{Key: s.Members[rec.Agent].Key, From: rec.Index})
	case wire.RecSettings:
		s.Settings = *rec.Settings
	}
}

// KickedBefore reports a kick of m's key or of its name that an invite
// issued at log index inviteAt (which saw a head below the kick) cannot
// undo.
func (s *State) KickedBefore(m *wire.Member, inviteAt uint64) (Removal, bool) {
	if r, ok := s.Removed[m.Key]; ok && r.Reason == wire.ReasonKick && inviteAt < r.Index {
		return r, true
	}
	if r, ok := s.Kicked[m.Domain]; ok && inviteAt < r.Index {
		return r, true
	}
	return Removal{}, false
}

// Member returns the member that holds key, by key, and whether it is one.
func (s *State) Member(key string) (wire.Member, bool) {
	d := s.KeyOwner(key)
	if d == "" {
		return wire.Member{}, false
	}
	return s.Members[d], true
}

// MasterKey is the key of the current master.
func (s *State) MasterKey() string { return s.Members[s.Master].Key }

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
	c.Kicked = make(map[string]Removal, len(s.Kicked))
	for k, v := range s.Kicked {
		c.Kicked[k] = v
	}
	c.Since = make(map[string]uint64, len(s.Since))
	for k, v := range s.Since {
		c.Since[k] = v
	}
	c.Terms = append([]Term(nil), s.Terms...)
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
