package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/ext/github/fakegithub"
	"github.com/agent-swarm/agent-swarm/node"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// ownerEnv is a command's environment in the owner tests: the daemon may
// start (no SWARM_NO_DAEMON), and no GitHub token unless extra gives one.
func ownerEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		switch name, _, _ := strings.Cut(kv, "="); name {
		case noDaemonEnv, "GITHUB_TOKEN", "GH_TOKEN", "SWARM_HOME":
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// ownerHome is an initialised home whose daemon, whoever starts it, is
// stopped with `swarm stop` at cleanup.
type ownerHome struct {
	t    *testing.T
	exe  string
	home string
}

func newOwnerHome(t *testing.T, exe, domain string) *ownerHome {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	h := &ownerHome{t: t, exe: exe, home: filepath.Join(t.TempDir(), domain)}
	h.must(nil, "init", "--domain", domain, "--listen", fmt.Sprintf("127.0.0.1:%d", p))
	t.Cleanup(func() {
		out, err := h.run(nil, "", "stop")
		if err != nil {
			t.Errorf("swarm stop at cleanup: %v", err)
		}
		if _, err := os.Stat(filepath.Join(h.home, node.SocketFile)); err == nil {
			t.Errorf("the socket is still there after swarm stop (%s)", out)
		}
	})
	return h
}

// run runs `swarm --home H args...` with ownerEnv(env...) and stdin.
func (h *ownerHome) run(env []string, stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.exe, append([]string{"--home", h.home}, args...)...)
	cmd.Env = ownerEnv(env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("swarm %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	if args[0] == "hook" && errb.Len() > 0 {
		return out.String(), fmt.Errorf("swarm %s exited 0 but logged: %s", strings.Join(args, " "), errb.String())
	}
	return out.String(), nil
}

func (h *ownerHome) must(env []string, args ...string) string {
	h.t.Helper()
	out, err := h.run(env, "", args...)
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// mcpClient launches `swarm --home H mcp` under mcp-go's stdio client, as
// Claude Code does, and initialises the session.
func (h *ownerHome) mcpClient(env ...string) *client.Client {
	h.t.Helper()
	c, err := client.NewStdioMCPClient(h.exe, ownerEnv(append([]string{noDaemonEnv + "="}, env...)...), "--home", h.home, "--log-level", "warn", "mcp")
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ProtocolVersion: mcp.LATEST_PROTOCOL_VERSION, ClientInfo: mcp.Implementation{Name: "owner-test", Version: "1"}}}); err != nil {
		h.t.Fatalf("initialize swarm mcp: %v", err)
	}
	return c
}

func callTool(t *testing.T, c *client.Client, name string, args map[string]any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = name, args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	b, _ := json.Marshal(res)
	if res.IsError {
		t.Fatalf("%s failed: %s", name, b)
	}
	return string(b)
}

// TestOwnerMCPFirstThenEveryoneAttaches is the issue's case: `swarm mcp`
// starts with no daemon (Claude Code's order after `claude mcp add`); the
// CLI, a hook and a second `swarm mcp` then all work at the same time,
// and exactly one daemon owns the store.
func TestOwnerMCPFirstThenEveryoneAttaches(t *testing.T) {
	h := newOwnerHome(t, swarmExe(t), "a.test")
	m1 := h.mcpClient()
	if out := callTool(t, m1, "swarm_create", map[string]any{"name": "team"}); !strings.Contains(out, "team") {
		t.Fatalf("swarm_create: %s", out)
	}
	m2 := h.mcpClient()

	// Everyone at once: two CLI commands, a hook, both MCP sessions.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	check := func(what string, f func() (string, error), want string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := f()
			if err == nil && !strings.Contains(out, want) {
				err = fmt.Errorf("%s: output lacks %q: %s", what, want, out)
			}
			errs <- err
		}()
	}
	check("status", func() (string, error) { return h.run(nil, "", "status") }, "a.test")
	check("send", func() (string, error) { return h.run(nil, "", "send", "--swarm", "team", "hello from the CLI") }, "sent")
	check("hook", func() (string, error) {
		return h.run(nil, `{"hook_event_name":"UserPromptSubmit","prompt":"hi"}`, "hook", "user-prompt-submit")
	}, "")
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if out := callTool(t, m2, "swarm_status", nil); !strings.Contains(out, "a.test") {
		t.Errorf("second swarm mcp: swarm_status: %s", out)
	}
	if out := callTool(t, m1, "swarm_list", nil); !strings.Contains(out, "team") {
		t.Errorf("first swarm mcp after the others: swarm_list: %s", out)
	}
	log, _ := os.ReadFile(filepath.Join(h.home, daemonLogFile))
	if n := strings.Count(string(log), `"message":"serving"`); n != 1 {
		t.Errorf("%d daemons served this home; want exactly 1:\n%s", n, log)
	}

	// swarm stop with both sessions open: their next calls start one
	// daemon again, and nothing fails.
	if out := h.must(nil, "stop"); !strings.Contains(out, "stopped the daemon") {
		t.Fatalf("swarm stop: %s", out)
	}
	for _, m := range []*client.Client{m1, m2} {
		if out := callTool(t, m, "swarm_status", nil); !strings.Contains(out, "a.test") {
			t.Errorf("swarm_status after swarm stop: %s", out)
		}
	}
	log, _ = os.ReadFile(filepath.Join(h.home, daemonLogFile))
	if n := strings.Count(string(log), `"message":"serving"`); n != 2 {
		t.Errorf("%d daemons served this home in all; want 2 (one before swarm stop, one after):\n%s", n, log)
	}
}

// TestOwnerCallerGitHubToken: a daemon started without a GitHub token
// serves a command's GitHub operations with the token of that command:
// reads (github status, task list) and queued writes (task create). A
// command without one is told so; the token shows in no output or log.
func TestOwnerCallerGitHubToken(t *testing.T) {
	const token = "ghp_caller0000000000000000000000000000x"
	fake := fakegithub.New(token)
	defer fake.Close()
	fake.AddRepo("acme/app")
	fake.CreateIssue("acme/app", "octo", "first task", "do it", "status:ready")

	h := newOwnerHome(t, swarmExe(t), "a.test")
	cfg, err := node.LoadConfig(h.home)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Ext = map[string]json.RawMessage{"github": json.RawMessage(`{"api_url":"` + fake.URL + `","sync":"off"}`)}
	if err := node.SaveConfig(h.home, cfg); err != nil {
		t.Fatal(err)
	}
	h.must(nil, "create", "--name", "team") // starts the daemon, with no token
	h.must(nil, "github", "link", "--swarm", "team", "--repo", "acme/app")

	withToken := []string{"GITHUB_TOKEN=" + token}
	var outs []string
	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{withToken, []string{"github", "status"}, "token found (this command's)"},
		{withToken, []string{"task", "list", "--swarm", "team"}, "first task"},
		{[]string{"GH_TOKEN=" + token}, []string{"task", "list", "--swarm", "team"}, "first task"},
		{withToken, []string{"task", "create", "--swarm", "team", "--title", "made with the caller's token"}, "created"},
	} {
		out := h.must(tc.env, tc.args...)
		if !strings.Contains(out, tc.want) {
			t.Errorf("%v: want %q in:\n%s", tc.args, tc.want, out)
		}
		outs = append(outs, out)
	}
	found := false
	for _, is := range fake.Issues("acme/app") {
		found = found || is.Title == "made with the caller's token"
	}
	if !found {
		t.Errorf("the task was not created on GitHub: %+v", fake.Issues("acme/app"))
	}
	if _, err := exec.LookPath("gh"); err != nil { // else gh's login would be the daemon's token
		if _, err := h.run(nil, "", "task", "list", "--swarm", "team"); err == nil || !strings.Contains(err.Error(), "no GitHub token") {
			t.Errorf("a command without a token, daemon without one: %v; want no GitHub token", err)
		}
	}
	if _, err := h.run([]string{"GITHUB_TOKEN=ghp_wrong"}, "", "task", "list", "--swarm", "team"); err == nil {
		t.Error("a wrong token listed tasks: the daemon used another")
	} else if strings.Contains(err.Error(), "ghp_wrong") {
		t.Errorf("the error shows the token: %v", err)
	}
	log, _ := os.ReadFile(filepath.Join(h.home, daemonLogFile))
	for _, s := range append(outs, string(log)) {
		if strings.Contains(s, token) {
			t.Fatalf("the token is shown:\n%s", s)
		}
	}
}

// TestOwnerOptOutServesSocket: with SWARM_NO_DAEMON=1, `swarm mcp` runs
// the node in its own process and serves the socket while it lives: the
// CLI attaches (with or without the opt-out), `swarm serve` and `swarm
// stop` name it rather than fight it, and when it ends it leaves the
// home free, with no daemon started.
func TestOwnerOptOutServesSocket(t *testing.T) {
	h := newOwnerHome(t, swarmExe(t), "a.test")
	m := h.mcpClient(noDaemonEnv + "=1")
	callTool(t, m, "swarm_create", map[string]any{"name": "team"})
	for _, env := range [][]string{nil, {noDaemonEnv + "=1"}} {
		if out := h.must(env, "list"); !strings.Contains(out, "team") {
			t.Errorf("list with env %v: %s", env, out)
		}
	}
	for _, args := range [][]string{{"serve"}, {"stop"}} {
		_, err := h.run(nil, "", args...)
		if err == nil || !strings.Contains(err.Error(), "`swarm mcp` (pid ") || !strings.Contains(err.Error(), "exit status 2") {
			t.Errorf("swarm %s beside the opt-out swarm mcp: %v; want exit 2 naming it", args[0], err)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(h.home, node.SocketFile)); err == nil {
		t.Error("the socket outlived the swarm mcp that served it")
	}
	if _, err := os.Stat(filepath.Join(h.home, daemonLogFile)); err == nil {
		t.Error("a daemon was started although every process opted out or attached")
	}
}

// TestDaemonEnv: an auto-started daemon gets what it needs of the
// starting command's environment and nothing else.
func TestDaemonEnv(t *testing.T) {
	cfg := &node.Config{
		Ext: map[string]json.RawMessage{
			"wake":   json.RawMessage(`{"env":["AWS_PROFILE","FIXED=1"]}`),
			"github": json.RawMessage(`{"webhook_secret_env":"MY_HOOK_SECRET"}`),
		},
	}
	base := []string{
		"PATH=/bin", "HOME=/home/u", "LC_ALL=C", "ANTHROPIC_API_KEY=k", "CLAUDE_CONFIG_DIR=/c",
		"SWARM_FOO=1", "GITHUB_TOKEN=t", "GH_CONFIG_DIR=/g", "MY_HOOK_SECRET=s", "AWS_PROFILE=p", "SSL_CERT_FILE=/ca", "SWARM_GITHUB_WEBHOOK_SECRET=w",
		// not passed:
		"SWARM_HOME=/elsewhere", "SWARM_WAKE=1", "SWARM_NO_DAEMON=1", "SWARM_AUTOSTARTED=1",
		"AWS_SECRET_ACCESS_KEY=x", "OPENAI_API_KEY=y", "FIXED=2", "GHOST=1",
	}
	got := strings.Join(daemonEnv(base, cfg), " ")
	want := "PATH=/bin HOME=/home/u LC_ALL=C ANTHROPIC_API_KEY=k CLAUDE_CONFIG_DIR=/c SWARM_FOO=1 GITHUB_TOKEN=t GH_CONFIG_DIR=/g MY_HOOK_SECRET=s AWS_PROFILE=p SSL_CERT_FILE=/ca SWARM_GITHUB_WEBHOOK_SECRET=w"
	if got != want {
		t.Errorf("daemon environment:\n got %s\nwant %s", got, want)
	}
}
