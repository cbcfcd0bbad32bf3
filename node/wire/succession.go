package wire

import (
	"errors"
	"fmt"
	"time"
)

// Master succession (issue #19, docs/protocol.md "Succession").

// PurposeSupport signs a member's support statement: its signature can
// never be replayed as a record or an envelope.
const PurposeSupport Purpose = "support"

// Limits of succession.
const (
	MaxDeputies = 8 // deputies named in the settings
	// MaxSupport bounds the statements one succession record carries: a
	// record holds only the majority it needs, and one payload is at most
	// MaxPayload, which fits about 180 statements.
	MaxSupport = 256
	// MinSuccessionAfter is the shortest succession delay accepted (tests
	// and demos use seconds); DefaultSuccessionAfter is used when none is set.
	MinSuccessionAfter     = time.Second
	MaxSuccessionAfter     = 365 * 24 * time.Hour
	DefaultSuccessionAfter = 72 * time.Hour
)

// Support is a member's signed statement: at log head Head of Swarm, it
// has not heard the master for the succession delay and supports
// Candidate (a key) as the next master. A member signs for at most one
// candidate at one head.
type Support struct {
	V         int    `json:"v"`
	Swarm     string `json:"swarm"`
	Head      Head   `json:"head"`
	Candidate string `json:"candidate"` // the candidate's key
	Time      int64  `json:"time"`      // unix milliseconds, when it was signed
}

// ParseSupport parses a verified statement payload and checks its shape.
// Whether signer and candidate are members at that head is for package
// membership (or the node) to check against its own state.
func ParseSupport(payload []byte) (*Support, error) {
	var s Support
	if err := decodeStrict(payload, &s); err != nil {
		return nil, err
	}
	return &s, s.Check()
}

// Check validates a statement's fields.
func (s *Support) Check() error {
	if s.V != Version {
		return fmt.Errorf("unsupported statement version %d", s.V)
	}
	if err := ValidSwarmID(s.Swarm); err != nil {
		return err
	}
	if err := s.Head.check(); err != nil {
		return err
	}
	if _, err := decodeKey(s.Candidate); err != nil {
		return fmt.Errorf("candidate: %w", err)
	}
	if s.Time <= 0 {
		return errors.New("statement has no time")
	}
	return nil
}

// check validates a head named by a peer: an index and a record hash.
func (h Head) check() error {
	if len(h.Hash) != 64 {
		return errors.New("head has no valid record hash")
	}
	for i := 0; i < len(h.Hash); i++ {
		if c := h.Hash[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return errors.New("head has no valid record hash")
		}
	}
	return nil
}

// SuccessionAfter is the succession delay the settings name.
func (s *Settings) SuccessionAfter() time.Duration {
	if s.After == 0 {
		return DefaultSuccessionAfter
	}
	return time.Duration(s.After) * time.Millisecond
}

// checkSuccession validates the succession part of the settings: at most
// MaxDeputies distinct keys, and a delay in range.
func (s *Settings) checkSuccession() error {
	if len(s.Deputies) > MaxDeputies {
		return fmt.Errorf("at most %d deputies", MaxDeputies)
	}
	seen := map[string]bool{}
	for _, k := range s.Deputies {
		if _, err := decodeKey(k); err != nil {
			return fmt.Errorf("deputy: %w", err)
		}
		if seen[k] {
			return errors.New("a deputy is named twice")
		}
		seen[k] = true
	}
	if s.After != 0 {
		d := time.Duration(s.After) * time.Millisecond
		if s.After < 0 || d < MinSuccessionAfter || d > MaxSuccessionAfter {
			return fmt.Errorf("succession delay %d ms is outside [%s, %s]", s.After, MinSuccessionAfter, MaxSuccessionAfter)
		}
	}
	return nil
}

// checkSupports validates the shape of a succession record's statements;
// the statements themselves are verified against the chain by package
// membership.
func checkSupports(sup []Signed) error {
	if len(sup) == 0 {
		return errors.New("succession record carries no support statements")
	}
	if len(sup) > MaxSupport {
		return fmt.Errorf("succession record carries over %d statements", MaxSupport)
	}
	for _, s := range sup {
		if err := s.checkShape(); err != nil {
			return fmt.Errorf("support statement: %w", err)
		}
	}
	return nil
}
