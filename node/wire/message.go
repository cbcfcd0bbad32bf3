package wire

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Message types.
const (
	TypeMessage      = "message"
	TypeNotification = "notification"
	TypePresence     = "presence"
	TypeSystem       = "system"
)

// System events carried by TypeSystem envelopes.
const (
	EventLog   = "log"   // Records holds membership records the receiver may lack
	EventLeave = "leave" // the sender leaves the swarm, at once
	// EventSupport carries the sender's own support statement (Support)
	// for a master succession.
	EventSupport = "support"
)

// Priorities.
var Priorities = []string{"low", "normal", "high", "urgent"}

// ToAll addresses every member of the swarm.
const ToAll = "*"

// Head names a position in a swarm's membership log.
type Head struct {
	Index uint64 `json:"index"`
	Hash  string `json:"hash"`
}

// Ref is a typed reference to something outside the message.
type Ref struct {
	Kind   string `json:"kind"` // issue, pr, commit, url
	Repo   string `json:"repo,omitempty"`
	Number int    `json:"number,omitempty"`
	SHA    string `json:"sha,omitempty"`
	URL    string `json:"url,omitempty"`
	Action string `json:"action,omitempty"`
	Login  string `json:"login,omitempty"` // the GitHub login concerned (an assignee)
}

// Message is the payload of an envelope. Every field that means anything
// is here, under the signature.
type Message struct {
	V        int      `json:"v"`
	ID       string   `json:"id"`
	Swarm    string   `json:"swarm"`
	From     string   `json:"from"`
	To       string   `json:"to"`
	Type     string   `json:"type"`
	Thread   string   `json:"thread,omitempty"`
	ReplyTo  string   `json:"reply_to,omitempty"`
	Created  int64    `json:"created"` // unix milliseconds
	Expires  int64    `json:"expires"` // unix milliseconds
	Seq      uint64   `json:"seq"`
	Head     Head     `json:"head"`
	Priority string   `json:"priority,omitempty"`
	Body     string   `json:"body"`
	Refs     []Ref    `json:"refs,omitempty"`
	Event    string   `json:"event,omitempty"`
	Records  []Signed `json:"records,omitempty"`
	Support  *Signed  `json:"support,omitempty"`
}

// Window bounds the times a receiver accepts.
type Window struct {
	Skew   time.Duration // how far in the future Created may be
	MaxTTL time.Duration // longest Expires-Created allowed
}

// DefaultWindow: five minutes of clock skew, messages live at most a week.
var DefaultWindow = Window{Skew: 5 * time.Minute, MaxTTL: 7 * 24 * time.Hour}

// ParseMessage parses a verified envelope payload and checks every field.
// It does not know who signed it: the caller checks From against the key.
func ParseMessage(payload []byte, now time.Time, w Window) (*Message, error) {
	var m Message
	if err := decodeStrict(payload, &m); err != nil {
		return nil, err
	}
	if err := m.Check(now, w); err != nil {
		return nil, err
	}
	return &m, nil
}

// Check validates a message's fields against limits and the time window.
func (m *Message) Check(now time.Time, w Window) error {
	if m.V != Version {
		return fmt.Errorf("unsupported version %d (this node speaks %d)", m.V, Version)
	}
	if err := ValidID(m.ID); err != nil {
		return err
	}
	if err := ValidSwarmID(m.Swarm); err != nil {
		return err
	}
	if err := ValidDomain(m.From); err != nil {
		return fmt.Errorf("from: %w", err)
	}
	if m.To != ToAll {
		if err := ValidDomain(m.To); err != nil {
			return fmt.Errorf("to: %w", err)
		}
	}
	switch m.Type {
	case TypeMessage, TypeNotification, TypePresence:
		if m.Event != "" || len(m.Records) > 0 || m.Support != nil {
			return errors.New("event, records and support belong to system messages only")
		}
	case TypeSystem:
		if m.Event != EventLog && m.Event != EventLeave && m.Event != EventSupport {
			return fmt.Errorf("unknown system event %q", clip(m.Event))
		}
		if (m.Event == EventSupport) != (m.Support != nil) {
			return errors.New("a support message carries exactly one statement, and only it does")
		}
		if m.Support != nil {
			if err := m.Support.checkShape(); err != nil {
				return fmt.Errorf("support statement: %w", err)
			}
		}
		if len(m.Records) > MaxRecordsBatch {
			return errors.New("too many records")
		}
	default:
		return fmt.Errorf("unknown message type %q", clip(m.Type))
	}
	if m.Thread != "" {
		if err := ValidThread(m.Thread); err != nil {
			return err
		}
	}
	if m.ReplyTo != "" {
		if err := ValidID(m.ReplyTo); err != nil {
			return fmt.Errorf("reply_to: %w", err)
		}
	}
	if m.Priority != "" && !oneOf(m.Priority, Priorities) {
		return fmt.Errorf("unknown priority %q: want one of %s", clip(m.Priority), strings.Join(Priorities, ", "))
	}
	if err := CleanText("body", m.Body, MaxBody); err != nil {
		return err
	}
	if len(m.Refs) > 32 {
		return errors.New("too many references (limit 32)")
	}
	for _, r := range m.Refs {
		if err := r.Check(); err != nil {
			return err
		}
	}
	created, expires := time.UnixMilli(m.Created), time.UnixMilli(m.Expires)
	switch {
	case created.After(now.Add(w.Skew)):
		return fmt.Errorf("created time %s is in the future", created.UTC().Format(time.RFC3339))
	case !expires.After(now):
		return fmt.Errorf("message expired at %s", expires.UTC().Format(time.RFC3339))
	case !expires.After(created) || expires.Sub(created) > w.MaxTTL:
		return fmt.Errorf("lifetime %s is outside (0, %s]", expires.Sub(created), w.MaxTTL)
	}
	return nil
}

// Check validates a reference.
func (r Ref) Check() error {
	switch r.Kind {
	case "issue", "pr", "commit", "url":
	default:
		return fmt.Errorf("unknown reference kind %q: want issue, pr, commit or url", clip(r.Kind))
	}
	for _, f := range []string{r.Repo, r.SHA, r.URL, r.Action, r.Login} {
		if err := CleanText("reference", f, 2048); err != nil {
			return err
		}
	}
	return nil
}

func oneOf(s string, set []string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

// KeyHint is the envelope's key hint: the swarm and the signing key, so a
// receiver knows which membership to look the key up in.
func KeyHint(swarm, key string) string { return swarm + ":" + key }

// SplitKeyHint splits a hint made by KeyHint.
func SplitKeyHint(kid string) (swarm, key string, err error) {
	swarm, key, ok := strings.Cut(kid, ":")
	if !ok || ValidSwarmID(swarm) != nil {
		return "", "", fmt.Errorf("malformed key hint %q", clip(kid))
	}
	if _, err := decodeKey(key); err != nil {
		return "", "", fmt.Errorf("malformed key hint %q: %v", clip(kid), err)
	}
	return swarm, key, nil
}

// Batch is the body of POST /swarm/v1/messages.
type Batch struct {
	Envelopes []Signed `json:"envelopes"`
}

// Result is the receiver's verdict on one envelope, in batch order.
type Result struct {
	ID     string `json:"id,omitempty"`
	Status string `json:"status"` // accepted, duplicate, rejected
	Reason string `json:"reason,omitempty"`
	Retry  bool   `json:"retry,omitempty"` // rejected for now; the sender may try again later
}

// BatchReply is the reply to POST /swarm/v1/messages.
type BatchReply struct {
	Results []Result `json:"results"`
	Head    []Head   `json:"-"`
}

// Verdicts.
const (
	Accepted  = "accepted"
	Duplicate = "duplicate"
	Rejected  = "rejected"
)

// DecodeBatch parses a POST /messages body.
func DecodeBatch(b []byte) (*Batch, error) {
	var bt Batch
	if err := decodeOuter(b, &bt); err != nil {
		return nil, err
	}
	if len(bt.Envelopes) == 0 {
		return nil, errors.New("empty batch")
	}
	if len(bt.Envelopes) > MaxBatch {
		return nil, fmt.Errorf("batch of %d envelopes exceeds the limit of %d", len(bt.Envelopes), MaxBatch)
	}
	return &bt, nil
}

// DecodeBatchReply parses the reply to POST /messages.
func DecodeBatchReply(b []byte, want int) (*BatchReply, error) {
	var r BatchReply
	if err := decodeOuter(b, &r); err != nil {
		return nil, err
	}
	if len(r.Results) != want {
		return nil, fmt.Errorf("reply has %d results for %d envelopes", len(r.Results), want)
	}
	return &r, nil
}
