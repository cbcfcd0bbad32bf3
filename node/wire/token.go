package wire

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Invite is the payload of an invite token, signed by the master.
type Invite struct {
	V        int    `json:"v"`
	ID       string `json:"id"`
	Swarm    string `json:"swarm"`
	Name     string `json:"name"`
	Master   Member `json:"master"`
	Expires  int64  `json:"expires"` // unix milliseconds
	Uses     int    `json:"uses"`    // how many joins it admits
	Invitee  string `json:"invitee,omitempty"`
	IssuedAt uint64 `json:"issued_at"` // log index when issued
}

const tokenPrefix = "swarm1."

// EncodeToken renders a signed invite as one copy-pasteable string:
// swarm1.<payload>.<signature>, both base64url.
func EncodeToken(s Signed) string {
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(s.Payload) + "." + base64.RawURLEncoding.EncodeToString(s.Sig)
}

// MaxToken bounds the length of a token string.
const MaxToken = 4096

// ParseToken decodes a token string, verifies it against the master key it
// names, and returns the invite. The joiner trusts the token because it got
// it from the master out of band; the master checks it again against its
// own key and its own record of the invite.
func ParseToken(tok string, now time.Time) (*Invite, Signed, error) {
	tok = strings.TrimSpace(tok)
	if len(tok) > MaxToken {
		return nil, Signed{}, errors.New("invite token is too long")
	}
	rest, ok := strings.CutPrefix(tok, tokenPrefix)
	if !ok {
		return nil, Signed{}, errors.New("not an invite token: it should start with " + tokenPrefix)
	}
	p64, s64, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, Signed{}, errors.New("invite token is truncated")
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p64)
	sig, err2 := base64.RawURLEncoding.DecodeString(s64)
	if err1 != nil || err2 != nil || len(sig) != ed25519.SignatureSize {
		return nil, Signed{}, errors.New("invite token is corrupted (bad base64 or signature length)")
	}
	// The payload names its own signing key; read just that field first.
	var inv Invite
	if err := decodeStrict(payload, &inv); err != nil {
		return nil, Signed{}, fmt.Errorf("invite token: %w", err)
	}
	s := Signed{KID: inv.Master.Key, Payload: payload, Sig: sig}
	pub, err := decodeKey(inv.Master.Key)
	if err != nil {
		return nil, Signed{}, fmt.Errorf("invite token: %w", err)
	}
	if err := s.Verify(PurposeToken, pub); err != nil {
		return nil, Signed{}, errors.New("invite token has a bad signature (forged or altered)")
	}
	if err := inv.Check(now); err != nil {
		return nil, Signed{}, err
	}
	return &inv, s, nil
}

// Check validates an invite's fields and expiry.
func (inv *Invite) Check(now time.Time) error {
	if inv.V != Version {
		return fmt.Errorf("unsupported invite version %d", inv.V)
	}
	if err := ValidID(inv.ID); err != nil {
		return fmt.Errorf("invite: %w", err)
	}
	if err := ValidSwarmID(inv.Swarm); err != nil {
		return fmt.Errorf("invite: %w", err)
	}
	if err := inv.Master.Check(); err != nil {
		return fmt.Errorf("invite: %w", err)
	}
	if inv.Invitee != "" {
		if err := ValidDomain(inv.Invitee); err != nil {
			return fmt.Errorf("invite: %w", err)
		}
	}
	if inv.Uses < 1 {
		return errors.New("invite admits no joins")
	}
	if !time.UnixMilli(inv.Expires).After(now) {
		return fmt.Errorf("invite token expired at %s", time.UnixMilli(inv.Expires).UTC().Format(time.RFC3339))
	}
	return nil
}

// decodeKey accepts only the canonical spelling of a key (identity.DecodeKey
// says why; wire cannot import identity).
func decodeKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize || base64.RawURLEncoding.EncodeToString(b) != s {
		return nil, errors.New("invalid public key: want the canonical unpadded base64url of 32 bytes")
	}
	return b, nil
}

// JoinRequest is signed by the joiner's own key: it proves possession of
// the key it asks to be admitted with.
type JoinRequest struct {
	V      int    `json:"v"`
	Swarm  string `json:"swarm"`
	Invite string `json:"invite"`
	Member Member `json:"member"`
	Time   int64  `json:"time"`
}

// Join is the body of POST /swarm/v1/join.
type Join struct {
	Token   string `json:"token"`
	Request Signed `json:"request"`
}

// JoinReply carries the swarm's whole log to the new member.
type JoinReply struct {
	Records []Signed `json:"records"`
}

// DecodeJoin parses a POST /join body and the joiner's request in it,
// verifying the request against the key it names.
func DecodeJoin(b []byte, now time.Time, w Window) (*Join, *JoinRequest, error) {
	var j Join
	if err := decodeOuter(b, &j); err != nil {
		return nil, nil, err
	}
	if err := j.Request.checkShape(); err != nil {
		return nil, nil, fmt.Errorf("join request: %w", err)
	}
	pub, err := decodeKey(j.Request.KID)
	if err != nil {
		return nil, nil, fmt.Errorf("join request: %w", err)
	}
	if err := j.Request.Verify(PurposeJoin, pub); err != nil {
		return nil, nil, fmt.Errorf("join request: %w", err)
	}
	var req JoinRequest
	if err := decodeStrict(j.Request.Payload, &req); err != nil {
		return nil, nil, fmt.Errorf("join request: %w", err)
	}
	if req.V != Version {
		return nil, nil, fmt.Errorf("unsupported join version %d", req.V)
	}
	if req.Member.Key != j.Request.KID {
		return nil, nil, errors.New("join request is signed by a key other than the member's")
	}
	if err := req.Member.Check(); err != nil {
		return nil, nil, fmt.Errorf("join request: %w", err)
	}
	t := time.UnixMilli(req.Time)
	if t.After(now.Add(w.Skew)) || t.Before(now.Add(-w.Skew)) {
		return nil, nil, errors.New("join request time is outside the allowed clock skew")
	}
	return &j, &req, nil
}

// Presence is the payload of a ping or heartbeat.
type Presence struct {
	V      int    `json:"v"`
	From   string `json:"from"`
	To     string `json:"to"`
	State  string `json:"state"`
	Status string `json:"status,omitempty"`
	Time   int64  `json:"time"`
	Nonce  string `json:"nonce"`
}

// PresenceStates are the states an agent may announce.
var PresenceStates = []string{"active", "busy", "idle", "away"}

// ParsePresence parses a verified presence payload.
func ParsePresence(payload []byte, now time.Time, w Window) (*Presence, error) {
	var p Presence
	if err := decodeStrict(payload, &p); err != nil {
		return nil, err
	}
	if p.V != Version {
		return nil, fmt.Errorf("unsupported presence version %d", p.V)
	}
	if err := ValidDomain(p.From); err != nil {
		return nil, err
	}
	if err := ValidDomain(p.To); err != nil {
		return nil, err
	}
	if !oneOf(p.State, PresenceStates) {
		return nil, fmt.Errorf("unknown presence state %q", clip(p.State))
	}
	if err := CleanText("status", p.Status, 200); err != nil {
		return nil, err
	}
	if len(p.Nonce) == 0 || len(p.Nonce) > 64 {
		return nil, errors.New("presence needs a nonce")
	}
	t := time.UnixMilli(p.Time)
	if t.After(now.Add(w.Skew)) || t.Before(now.Add(-w.Skew)) {
		return nil, errors.New("presence time is outside the allowed clock skew")
	}
	return &p, nil
}

// Request authenticates a GET from a member (the log pull).
type Request struct {
	V      int    `json:"v"`
	From   string `json:"from"`
	Method string `json:"method"`
	Path   string `json:"path"`
	Time   int64  `json:"time"`
}

// ParseRequest parses a verified request payload and checks it matches the
// request it came with.
func ParseRequest(payload []byte, method, path string, now time.Time, w Window) (*Request, error) {
	var r Request
	if err := decodeStrict(payload, &r); err != nil {
		return nil, err
	}
	if r.V != Version || r.Method != method || r.Path != path {
		return nil, errors.New("request signature does not match this request")
	}
	t := time.UnixMilli(r.Time)
	if t.After(now.Add(w.Skew)) || t.Before(now.Add(-w.Skew)) {
		return nil, errors.New("request time is outside the allowed clock skew")
	}
	return &r, ValidDomain(r.From)
}

// EncodeAuth renders a signed request for the Swarm-Auth header.
func EncodeAuth(s Signed) string {
	return s.KID + "." + base64.RawURLEncoding.EncodeToString(s.Payload) + "." + base64.RawURLEncoding.EncodeToString(s.Sig)
}

// DecodeAuth parses a Swarm-Auth header.
func DecodeAuth(h string) (Signed, error) {
	parts := strings.Split(h, ".")
	if len(parts) != 3 || len(h) > 2048 {
		return Signed{}, errors.New("malformed Swarm-Auth header")
	}
	p, err1 := base64.RawURLEncoding.DecodeString(parts[1])
	s, err2 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil {
		return Signed{}, errors.New("malformed Swarm-Auth header")
	}
	sg := Signed{KID: parts[0], Payload: p, Sig: s}
	return sg, sg.checkShape()
}
