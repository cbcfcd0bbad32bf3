package node

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
)

// LoadOrCreateToken returns the bearer token kept in path (a local
// endpoint's: MCP over HTTP, the web page), making one the first time:
// 32 random bytes in hex, in a file of mode 0600. A file holding less
// than 32 characters is replaced.
func LoadOrCreateToken(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		if t := strings.TrimSpace(string(b)); len(t) >= 32 {
			return t, nil
		}
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	t := hex.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(t+"\n"), 0o600); err != nil {
		return "", err
	}
	return t, nil
}
