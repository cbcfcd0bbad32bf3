// Package identity holds an agent's long-term Ed25519 key: how it is made,
// stored (PEM, mode 0600) and shown to humans (a short fingerprint).
package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Identity is an agent: a domain name and the key that speaks for it.
type Identity struct {
	Domain string
	Key    ed25519.PrivateKey
}

// Generate makes a fresh identity for domain.
func Generate(domain string) (*Identity, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return &Identity{Domain: domain, Key: priv}, nil
}

// Public returns the public half of the key.
func (id *Identity) Public() ed25519.PublicKey { return id.Key.Public().(ed25519.PublicKey) }

// KeyString is the public key as the wire carries it.
func (id *Identity) KeyString() string { return EncodeKey(id.Public()) }

// EncodeKey renders a public key as unpadded base64url (43 characters).
func EncodeKey(pub ed25519.PublicKey) string { return base64.RawURLEncoding.EncodeToString(pub) }

// DecodeKey parses a public key written by EncodeKey. Only the one
// canonical spelling is accepted: base64 leaves two spare bits in the last
// character of 32 bytes, so a lax decoder would take four strings for one
// key, and every map keyed by the string would hold four agents.
func DecodeKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize || base64.RawURLEncoding.EncodeToString(b) != s {
		return nil, fmt.Errorf("invalid public key %q: want the canonical unpadded base64url of %d bytes", trunc(s), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// Fingerprint is the short form of a key shown to humans:
// four groups of four base32 characters of SHA-256(key).
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	s := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:10]))
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
}

// Save writes the private key as PKCS#8 PEM with mode 0600. It refuses to
// overwrite an existing key: losing a key loses the agent's identity.
func (id *Identity) Save(path string) error {
	der, err := x509.MarshalPKCS8PrivateKey(id.Key)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Load reads a key written by Save. It refuses a key file that others can
// read, as ssh does.
func Load(path, domain string) (*Identity, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s has mode %o: it must be readable by its owner only (chmod 600)", path, st.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("key file holds no PEM PRIVATE KEY block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse key: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("key file holds a key that is not Ed25519")
	}
	return &Identity{Domain: domain, Key: priv}, nil
}

func trunc(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
