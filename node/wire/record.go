package wire

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
)

// Record types of the membership log.
const (
	RecCreate   = "create"
	RecAdd      = "add"
	RecRemove   = "remove"
	RecTransfer = "transfer"
	RecSettings = "settings"
	// RecSuccession is signed by the new master, not the old one: it
	// carries support statements from a majority of the members.
	RecSuccession = "succession"
)

// Removal reasons.
const (
	ReasonKick  = "kick"
	ReasonLeave = "leave"
)

// Member is how a swarm knows an agent: its name, key and where to reach it.
type Member struct {
	Domain string `json:"domain"`
	Key    string `json:"key"`           // base64url Ed25519 public key
	Addr   string `json:"addr"`          // host:port (standalone) or https://domain
	Pin    string `json:"pin,omitempty"` // base64 SHA-256 of the TLS SPKI, for self-signed certificates
}

// Settings are the swarm's mutable settings.
type Settings struct {
	Name          string `json:"name"`
	Repo          string `json:"repo,omitempty"`
	MembersInvite bool   `json:"members_invite,omitempty"`
	// Deputies are the keys, in order, that members support first when
	// the master has been silent for After (milliseconds; 0 is 72 h).
	Deputies []string `json:"deputies,omitempty"`
	After    int64    `json:"succession_after,omitempty"`
}

// Record is one entry of a swarm's hash-chained membership log.
type Record struct {
	V        int       `json:"v"`
	Swarm    string    `json:"swarm,omitempty"` // empty in the genesis record, whose hash makes the ID
	Index    uint64    `json:"index"`
	Prev     string    `json:"prev,omitempty"` // hash of the record before
	Type     string    `json:"type"`
	Time     int64     `json:"time"` // unix milliseconds
	Member   *Member   `json:"member,omitempty"`
	Agent    string    `json:"agent,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Invite   string    `json:"invite,omitempty"`
	InviteAt uint64    `json:"invite_at,omitempty"` // log index the invite was issued at
	Settings *Settings `json:"settings,omitempty"`
	Nonce    string    `json:"nonce,omitempty"`
	Support  []Signed  `json:"support,omitempty"` // succession only: the statements of a majority
}

// RecordHash is the chain hash of a signed record: it covers the exact
// payload bytes and the signature.
func RecordHash(s Signed) string {
	h := sha256.New()
	h.Write([]byte("agent-swarm/v1/record-hash\x00"))
	h.Write(s.Payload)
	h.Write(s.Sig)
	return hex.EncodeToString(h.Sum(nil))
}

// SwarmID derives a swarm's ID from its signed genesis record.
func SwarmID(genesis Signed) string {
	sum, _ := hex.DecodeString(RecordHash(genesis))
	return toLowerB32(sum[:15])
}

func toLowerB32(b []byte) string {
	s := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)
	out := make([]byte, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return string(out)
}

// ParseRecord parses a verified record payload and checks its shape. The
// chain rules (who may append what) live in package membership.
func ParseRecord(payload []byte) (*Record, error) {
	var r Record
	if err := decodeStrict(payload, &r); err != nil {
		return nil, err
	}
	return &r, r.Check()
}

// Check validates a record's fields.
func (r *Record) Check() error {
	if r.V != Version {
		return fmt.Errorf("unsupported record version %d", r.V)
	}
	if r.Index == 0 {
		if r.Type != RecCreate || r.Swarm != "" || r.Prev != "" {
			return errors.New("record 0 must be a create record with no swarm and no prev")
		}
	} else {
		if err := ValidSwarmID(r.Swarm); err != nil {
			return err
		}
		if len(r.Prev) != 64 {
			return errors.New("record has no valid prev hash")
		}
	}
	if r.Type != RecSuccession && len(r.Support) > 0 {
		return errors.New("only a succession record carries support statements")
	}
	switch r.Type {
	case RecCreate:
		if r.Index != 0 {
			return errors.New("create record must be record 0")
		}
		if r.Member == nil || r.Settings == nil {
			return errors.New("create record needs the creator and the settings")
		}
		if err := r.Member.Check(); err != nil {
			return err
		}
		return r.Settings.Check()
	case RecAdd:
		if r.Member == nil {
			return errors.New("add record needs a member")
		}
		return r.Member.Check()
	case RecRemove:
		if r.Reason != ReasonKick && r.Reason != ReasonLeave {
			return fmt.Errorf("unknown removal reason %q", clip(r.Reason))
		}
		return ValidDomain(r.Agent)
	case RecTransfer:
		return ValidDomain(r.Agent)
	case RecSettings:
		if r.Settings == nil {
			return errors.New("settings record needs settings")
		}
		return r.Settings.Check()
	case RecSuccession:
		if err := ValidDomain(r.Agent); err != nil {
			return err
		}
		return checkSupports(r.Support)
	}
	return fmt.Errorf("unknown record type %q", clip(r.Type))
}

// Check validates a member description.
func (m *Member) Check() error {
	if err := ValidDomain(m.Domain); err != nil {
		return err
	}
	if _, err := decodeKey(m.Key); err != nil {
		return fmt.Errorf("member %s: %w", m.Domain, err)
	}
	if err := ValidAddr(m.Addr); err != nil {
		return fmt.Errorf("member %s: %w", m.Domain, err)
	}
	if m.Pin != "" && len(m.Pin) != 44 {
		return fmt.Errorf("member %s: invalid certificate pin", m.Domain)
	}
	return nil
}

// Check validates settings.
func (s *Settings) Check() error {
	if err := ValidSwarmName(s.Name); err != nil {
		return err
	}
	if s.Repo != "" && !repoRE.MatchString(s.Repo) {
		return fmt.Errorf("invalid repository %q: want owner/name", clip(s.Repo))
	}
	return s.checkSuccession()
}
