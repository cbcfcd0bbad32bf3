package node

import (
	"context"
	"sort"
	"strings"
	"sync"
)

// An operation may run in the daemon for a command of another process (a
// CLI, `swarm mcp`): the command's own credentials are in its environment,
// not the daemon's. An extension declares the environment variables of the
// caller its operations use (RegisterCallerEnv); the local API client sends
// those the caller has set with each call, the server puts them on the
// operation's context, and the extension reads them with CallerEnv. A
// command that runs the node in its own process has them in its own
// environment. Their values are secrets: never logged nor echoed.

var envRegistry struct {
	sync.Mutex
	caller map[string]bool
}

// RegisterCallerEnv declares environment variables of the calling
// command that operations may read with CallerEnv. Call it from init.
func RegisterCallerEnv(names ...string) {
	envRegistry.Lock()
	defer envRegistry.Unlock()
	if envRegistry.caller == nil {
		envRegistry.caller = map[string]bool{}
	}
	for _, name := range names {
		if name == "" || strings.ContainsAny(name, "= \t\r\n") {
			panic("node.RegisterCallerEnv: bad variable name " + name)
		}
		envRegistry.caller[name] = true
	}
}

// CallerEnvNames are the declared caller variables, sorted.
func CallerEnvNames() []string {
	envRegistry.Lock()
	defer envRegistry.Unlock()
	var out []string
	for name := range envRegistry.caller {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// IsCallerEnv reports whether name is a declared caller variable: the
// local API takes no other from a request.
func IsCallerEnv(name string) bool {
	envRegistry.Lock()
	defer envRegistry.Unlock()
	return envRegistry.caller[name]
}

// CallerEnvFrom collects the declared caller variables getenv has set (a
// command's os.Getenv): what its calls to a daemon carry.
func CallerEnvFrom(getenv func(string) string) map[string]string {
	out := map[string]string{}
	for _, name := range CallerEnvNames() {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			out[name] = v
		}
	}
	return out
}

type callerEnvKey struct{}

// WithCallerEnv returns ctx carrying the calling command's variables;
// names not declared are dropped, empty values too.
func WithCallerEnv(ctx context.Context, env map[string]string) context.Context {
	keep := map[string]string{}
	for name, v := range env {
		if v = strings.TrimSpace(v); v != "" && IsCallerEnv(name) {
			keep[name] = v
		}
	}
	if len(keep) == 0 {
		return ctx
	}
	return context.WithValue(ctx, callerEnvKey{}, keep)
}

// CallerEnv is the calling command's value of the variable name, or ""
// when the call brought none (a command running the node in its own
// process reads its own environment instead).
func CallerEnv(ctx context.Context, name string) string {
	env, _ := ctx.Value(callerEnvKey{}).(map[string]string)
	return env[name]
}
