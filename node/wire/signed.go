// Package wire is the swarm protocol's bytes: the signed container shared
// by envelopes, membership records, invite tokens and requests, and the
// payloads inside it. It verifies before it parses: nothing in a payload is
// looked at until its signature has been checked against a key the caller
// chose from its own state.
package wire

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Purpose separates signatures of different kinds, so that bytes signed as
// one kind can never be replayed as another.
type Purpose string

const (
	PurposeEnvelope Purpose = "envelope"
	PurposeRecord   Purpose = "record"
	PurposeToken    Purpose = "invite"
	PurposeJoin     Purpose = "join"
	PurposeRequest  Purpose = "request"
	PurposePresence Purpose = "presence"
)

// Version is the protocol version carried in every payload.
const Version = 1

// Limits on what a peer may send.
const (
	MaxBody         = 64 << 10 // bytes of message body
	MaxPayload      = 96 << 10 // bytes of one signed payload
	MaxBatch        = 256      // envelopes in one POST
	MaxBatchBytes   = 4 << 20  // bytes of one POST /messages body
	MaxRecordsBatch = 1024     // records in one log reply
)

// Signed is the outer form: opaque payload bytes, the signature over them,
// and a hint naming the signing key. The hint is never trusted; it only
// says which key to look up.
type Signed struct {
	KID     string `json:"kid"`
	Payload []byte `json:"payload"`
	Sig     []byte `json:"sig"`
}

func signingInput(p Purpose, payload []byte) []byte {
	b := make([]byte, 0, len("agent-swarm/v1/")+len(p)+1+len(payload))
	b = append(b, "agent-swarm/v1/"...)
	b = append(b, p...)
	b = append(b, 0)
	return append(b, payload...)
}

// Sign signs payload for purpose p.
func Sign(p Purpose, kid string, key ed25519.PrivateKey, payload []byte) Signed {
	return Signed{KID: kid, Payload: payload, Sig: ed25519.Sign(key, signingInput(p, payload))}
}

// ErrBadSignature is returned when a signature does not verify.
var ErrBadSignature = errors.New("bad signature")

// Verify checks the signature against pub for purpose p.
func (s Signed) Verify(p Purpose, pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize || len(s.Sig) != ed25519.SignatureSize {
		return ErrBadSignature
	}
	if !ed25519.Verify(pub, signingInput(p, s.Payload), s.Sig) {
		return ErrBadSignature
	}
	return nil
}

// SignJSON marshals v and signs it.
func SignJSON(p Purpose, kid string, key ed25519.PrivateKey, v any) (Signed, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Signed{}, err
	}
	return Sign(p, kid, key, b), nil
}

// decodeStrict parses a verified payload: valid UTF-8, one JSON object,
// no unknown fields, within the size limit.
func decodeStrict(b []byte, v any) error {
	if len(b) > MaxPayload {
		return fmt.Errorf("payload of %d bytes exceeds the limit of %d", len(b), MaxPayload)
	}
	if !utf8.Valid(b) {
		return errors.New("payload is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed payload: %w", err)
	}
	if dec.More() {
		return errors.New("malformed payload: trailing data after the JSON object")
	}
	// encoding/json keeps the last of repeated keys; another parser may
	// keep the first. A signed payload must mean one thing to everyone.
	return noDuplicateKeys(b)
}

// noDuplicateKeys refuses a JSON text in which an object repeats a key.
func noDuplicateKeys(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		keys  map[string]bool
		isObj bool
		want  bool // next string token in this object is a key
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("malformed payload: %w", err)
		}
		top := len(stack) - 1
		if top >= 0 && stack[top].isObj && stack[top].want {
			if k, ok := tok.(string); ok {
				// encoding/json matches keys without regard to case (and
				// folds ſ and K), so "BODY" would fill Body and "body"
				// and "BODY" would be one key to it and two to another
				// parser. Every key of the protocol is lower-case ASCII.
				if !lowerASCII(k) {
					return fmt.Errorf("malformed payload: key %q is not lower-case ASCII", clip(k))
				}
				if stack[top].keys[k] {
					return fmt.Errorf("malformed payload: key %q appears twice", clip(k))
				}
				stack[top].keys[k] = true
				stack[top].want = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{keys: map[string]bool{}, isObj: true, want: true})
			continue
		case json.Delim('['):
			stack = append(stack, frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:top]
		}
		// A value ended: the enclosing object expects a key next.
		if n := len(stack) - 1; n >= 0 && stack[n].isObj {
			stack[n].want = true
		}
	}
}

func lowerASCII(k string) bool {
	for i := 0; i < len(k); i++ {
		if c := k[i]; c >= 0x80 || (c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// DecodeSigned parses the outer form from untrusted bytes.
func DecodeSigned(b []byte) (Signed, error) {
	var s Signed
	if err := decodeOuter(b, &s); err != nil {
		return Signed{}, err
	}
	return s, s.checkShape()
}

func (s Signed) checkShape() error {
	switch {
	case s.KID == "" || len(s.KID) > 256:
		return errors.New("missing or oversize key hint (kid)")
	case len(s.Payload) == 0:
		return errors.New("empty payload")
	case len(s.Payload) > MaxPayload:
		return fmt.Errorf("payload of %d bytes exceeds the limit of %d", len(s.Payload), MaxPayload)
	case len(s.Sig) != ed25519.SignatureSize:
		return fmt.Errorf("signature must be %d bytes, got %d", ed25519.SignatureSize, len(s.Sig))
	}
	return nil
}

// decodeOuter parses an untrusted JSON document of a known shape.
func decodeOuter(b []byte, v any) error {
	if !utf8.Valid(b) {
		return errors.New("body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	if dec.More() {
		return errors.New("malformed JSON: trailing data")
	}
	return nil
}
