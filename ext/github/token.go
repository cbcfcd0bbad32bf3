package github

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
)

// ErrNoToken says where a token may come from; it never says what one is.
var ErrNoToken = errors.New("no GitHub token: set GITHUB_TOKEN or GH_TOKEN, or log in with `gh auth login`")

// TokenSource resolves the GitHub token. The token comes from the
// environment or the gh CLI, never from the config file (DESIGN §7).
// Fields are injectable so tests need neither a real environment nor gh.
type TokenSource struct {
	// Host is the GitHub host the token is for (API.Host): "" or
	// github.com, or an Enterprise host, for which gh's
	// GH_ENTERPRISE_TOKEN and GITHUB_ENTERPRISE_TOKEN come first and gh
	// is asked for that host's login.
	Host     string
	Getenv   func(string) string
	LookPath func(string) (string, error)
	// Run runs a command and returns its standard output.
	Run func(ctx context.Context, name string, args ...string) ([]byte, error)
}

// Token resolves the token: the calling command's (WithToken), else this
// process's environment and gh.
func Token(ctx context.Context) (string, error) { return TokenSource{}.Token(ctx) }

// callerKey is the context key of the calling command's token.
type callerKey struct{}

// WithToken returns ctx carrying the token of the command an operation
// runs for (a CLI or `swarm mcp` attached to the daemon). Token and the
// Client prefer it over the daemon's own, so the caller's GITHUB_TOKEN
// is the one used even when the daemon was started without one. ""
// leaves ctx as it is.
func WithToken(ctx context.Context, token string) context.Context {
	if token = strings.TrimSpace(token); token == "" {
		return ctx
	}
	return context.WithValue(ctx, callerKey{}, token)
}

// tokenEnv are the variables a token is read from, in order: the
// daemon's own, and a calling command's (node.RegisterCallerEnv).
var tokenEnv = []string{"GITHUB_TOKEN", "GH_TOKEN"}

// CallerToken is the calling command's token: the one WithToken put in
// ctx, else the first of its token variables the local API brought
// (node.CallerEnv); "" when it brought none.
func CallerToken(ctx context.Context) string {
	if t, _ := ctx.Value(callerKey{}).(string); t != "" {
		return t
	}
	for _, name := range tokenEnv {
		if t := node.CallerEnv(ctx, name); t != "" {
			return t
		}
	}
	return ""
}

// Token tries the calling command's token (WithToken), GITHUB_TOKEN,
// GH_TOKEN, then `gh auth token`.
func (s TokenSource) Token(ctx context.Context) (string, error) {
	if t := CallerToken(ctx); t != "" {
		return t, nil
	}
	return s.Own(ctx)
}

// Own is this process's own token, ignoring any caller's in ctx:
// GITHUB_TOKEN, GH_TOKEN, then `gh auth token --hostname HOST`; for an
// Enterprise host GH_ENTERPRISE_TOKEN and GITHUB_ENTERPRISE_TOKEN first.
func (s TokenSource) Own(ctx context.Context) (string, error) {
	getenv := s.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	names := tokenEnv
	if s.enterprise() {
		names = append([]string{"GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN"}, tokenEnv...)
	}
	for _, name := range names {
		if t := strings.TrimSpace(getenv(name)); t != "" {
			return t, nil
		}
	}
	if t := s.fromGH(ctx); t != "" {
		return t, nil
	}
	return "", ErrNoToken
}

// fromGH asks the gh CLI. Any failure (not installed, not logged in) just
// means "no token from here": the caller reports ErrNoToken, which tells
// the user every option, rather than gh's own message.
func (s TokenSource) fromGH(ctx context.Context) string {
	look := s.LookPath
	if look == nil {
		look = exec.LookPath
	}
	path, err := look("gh")
	if err != nil {
		return ""
	}
	run := s.Run
	if run == nil {
		run = runCmd
	}
	// gh may hang waiting on a keyring prompt; do not hang with it.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The host always: without it gh answers for its default host
	// (GH_HOST or github.com), which is another host's token for an
	// Enterprise user.
	out, err := run(ctx, path, "auth", "token", "--hostname", s.host())
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func (s TokenSource) host() string {
	if h := strings.TrimSpace(s.Host); h != "" {
		return h
	}
	return "github.com"
}

// enterprise: a GitHub Enterprise Server host, whose tokens gh keeps in
// its own variables (github.com and GHE.com tenants use GH_TOKEN).
func (s TokenSource) enterprise() bool {
	h := strings.ToLower(s.host())
	return h != "github.com" && !strings.HasSuffix(h, ".ghe.com")
}

func runCmd(ctx context.Context, name string, args ...string) ([]byte, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = &out // stderr dropped: it may echo host names or hints, never needed
	err := cmd.Run()
	return out.Bytes(), err
}
