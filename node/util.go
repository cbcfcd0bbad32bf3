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
// text: clipped and stripped of control characters.
func peerError(b []byte) string {
	var e apiError
	msg := string(b)
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	msg = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(msg, "?"))
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	if msg == "" {
		msg = "(no reason given)"
	}
	return msg
}
