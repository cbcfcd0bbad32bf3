package wire

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

var (
	domainRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)
	swarmRE  = regexp.MustCompile(`^[a-z2-7]{24}$`)
	idRE     = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	threadRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
)

// ValidThread checks a thread: a short name such as "design" or
// "pr-12.review" (1 to 64 lower-case letters, digits, '.', '_' and '-',
// starting with a letter or digit), or a message ID, which is one of them.
// It is peer input shown to users and used in store keys: bounded, with no
// spaces, slashes, control or look-alike characters.
func ValidThread(s string) error {
	if !threadRE.MatchString(s) {
		return fmt.Errorf("invalid thread %q: want a name of 1 to 64 lower-case letters, digits, '.', '_' or '-' starting with a letter or digit (e.g. design), or a message ID", clip(s))
	}
	return nil
}

// ValidDomain reports whether d can name an agent: a lower-case DNS name.
func ValidDomain(d string) error {
	if len(d) == 0 || len(d) > 253 || !domainRE.MatchString(d) {
		return fmt.Errorf("invalid agent name %q: want a lower-case DNS name such as agent-a.example.com", clip(d))
	}
	return nil
}

// ValidSwarmID reports whether s has the shape of a swarm ID.
func ValidSwarmID(s string) error {
	if !swarmRE.MatchString(s) {
		return fmt.Errorf("invalid swarm id %q", clip(s))
	}
	return nil
}

// ValidID reports whether s has the shape of a UUID.
func ValidID(s string) error {
	if !idRE.MatchString(s) {
		return fmt.Errorf("invalid id %q: want a UUID", clip(s))
	}
	return nil
}

// ValidSwarmName checks a human swarm name: 1–64 printable characters, no
// path separators or control characters, not a swarm ID (so names and IDs
// never collide when a user names a swarm).
func ValidSwarmName(n string) error {
	switch {
	case n == "" || utf8.RuneCountInString(n) > 64:
		return fmt.Errorf("invalid swarm name %q: want 1 to 64 characters", clip(n))
	case !utf8.ValidString(n):
		return fmt.Errorf("invalid swarm name: not valid UTF-8")
	case strings.ContainsAny(n, "/\\") || n == "." || n == "..":
		return fmt.Errorf("invalid swarm name %q: no slashes or dot names", clip(n))
	case swarmRE.MatchString(n):
		return fmt.Errorf("invalid swarm name %q: it looks like a swarm id", n)
	case strings.TrimSpace(n) != n:
		return fmt.Errorf("invalid swarm name %q: no leading or trailing spaces", clip(n))
	}
	for _, r := range n {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("invalid swarm name %q: control or unprintable character", clip(n))
		}
	}
	return nil
}

// ValidAddr checks a peer address: host:port, or https://host[:port].
func ValidAddr(a string) error {
	if strings.HasPrefix(a, "https://") {
		h := strings.TrimPrefix(a, "https://")
		if h == "" || strings.ContainsAny(h, "/?#@ ") {
			return fmt.Errorf("invalid address %q", clip(a))
		}
		return nil
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" || port == "" || strings.ContainsAny(a, "/?#@ ") {
		return fmt.Errorf("invalid address %q: want host:port or https://host", clip(a))
	}
	return nil
}

// CleanText checks a free-text field (body, status line) for limits and
// characters that have no place in it. Newlines and tabs are allowed.
func CleanText(field, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s of %d bytes exceeds the limit of %d", field, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", field)
	}
	for _, r := range s {
		if r == '\n' || r == '\t' || r == '\r' {
			continue
		}
		if unicode.IsControl(r) {
			return fmt.Errorf("%s holds control character %U", field, r)
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

var repoRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$`)
