package node

import (
	"bytes"
	"encoding/json"
	"strings"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	return dec.Decode(v)
}

// apiError is the body of every error reply of the peer API.
type apiError struct {
	Error string `json:"error"`
}

// peerError extracts the reason from a peer's error reply, as untrusted
// text (peerText).
func peerError(b []byte) string {
	var e apiError
	msg := string(b)
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	msg = peerText(msg)
	if msg == "" {
		msg = "(no reason given)"
	}
	return msg
}

// peerText makes a short string a peer chose (an error, a verdict's
// reason) fit to show a user or a model: one line, clipped, with
// invisible characters and trusted-looking tags escaped as in frames.
func peerText(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if len(s) <= 300 {
		return EscapePeer(s)
	}
	return EscapePeer(strings.ToValidUTF8(s[:300], "")) + "…"
}
