package testclients

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestClaudeSetupPortableProject: a project set up by `swarm claude setup`
// on one machine works on another. Machine 1 runs setup with a node home
// that is not ~/.swarm; the project's committed files (.mcp.json,
// .claude/settings.json, the subagent) are copied to another path on
// machine 2, and machine 1 is deleted. There, with `swarm` on PATH from a
// bin dir of its own and the node in that user's default home, the real
// Claude Code connects to the swarm server (`claude mcp list`) and a
// `claude -p` whose model calls mcp__swarm__swarm_inbox gets the inbox:
// no --allowedTools, no bypass mode, no permission prompt; the project's
// settings allow it. The user's own steps are Claude Code's: trusting the
// workspace and approving the project's server.
func TestClaudeSetupPortableProject(t *testing.T) {
	needClients(t)
	root := t.TempDir()
	cp := func(src, dst string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(dst), 0o755)
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// Machine 1: set up the project.
	m1 := filepath.Join(root, "machine1")
	cp(swarmBin, filepath.Join(m1, "bin", "swarm"))
	home1 := filepath.Join(m1, "nodes", "agent-a")
	swarm(t, home1, "init", "--domain", "a.test", "--listen", "127.0.0.1:7443")
	proj1 := filepath.Join(m1, "src", "app")
	os.MkdirAll(proj1, 0o755)
	env1 := []string{"HOME=" + m1, "SWARM_HOME=", "PATH=" + filepath.Join(m1, "bin") + ":" + os.Getenv("PATH")}
	out, err := run(t, time.Minute, env1, proj1, filepath.Join(m1, "bin", "swarm"), "--home", home1, "claude", "setup")
	if err != nil || !strings.Contains(out, "written") || strings.Contains(out, "warning: swarm") {
		t.Fatalf("setup on machine 1: %v\n%s", err, out)
	}
	committed := []string{".mcp.json", ".claude/settings.json", ".claude/agents/swarm.md"}
	m2 := filepath.Join(root, "machine2")
	user2 := filepath.Join(m2, "home", "dev")
	proj2 := filepath.Join(user2, "work", "app-clone")
	for _, f := range committed {
		b, _ := os.ReadFile(filepath.Join(proj1, f))
		if strings.Contains(string(b), m1) {
			t.Errorf("%s names a path of machine 1:\n%s", f, b)
		}
		cp(filepath.Join(proj1, f), filepath.Join(proj2, f))
	}
	if err := os.RemoveAll(m1); err != nil {
		t.Fatal(err)
	}

	// Machine 2: its own swarm on PATH, its node in ~/.swarm; a peer has
	// sent it a message.
	bin2 := filepath.Join(m2, "bin")
	cp(swarmBin, filepath.Join(bin2, "swarm"))
	a := startDaemonAt(t, filepath.Join(user2, ".swarm"), "a.test")
	b := startDaemon(t, "b.test")
	swarm(t, a.home, "create", "--name", "dev-team")
	tok := swarm(t, a.home, "invite", "--swarm", "dev-team")
	swarm(t, b.home, "join", "--token", tok)
	swarm(t, b.home, "send", "--swarm", "dev-team", "--to", "a.test", "--wait", "10s", "the portable hello")

	// Claude Code's own prompts, answered by the user: trust the
	// workspace, approve the project's MCP server.
	trusted, _ := json.Marshal(map[string]any{"projects": map[string]any{proj2: map[string]any{"hasTrustDialogAccepted": true}}})
	os.MkdirAll(filepath.Join(user2, ".claude"), 0o700)
	if err := os.WriteFile(filepath.Join(user2, ".claude", ".claude.json"), trusted, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(proj2, ".claude", "settings.local.json"), []byte(`{"enabledMcpjsonServers": ["swarm"]}`), 0o644); err != nil {
		t.Fatal(err)
	}

	api := &fakeMessagesAPI{toolName: "mcp__swarm__swarm_inbox", input: map[string]any{"unread": true}}
	srv := api.start(t)
	path2 := bin2 + ":" + os.Getenv("PATH")
	if p, err := exec.LookPath("swarm"); err == nil {
		t.Logf("note: %s is on this machine's PATH too; machine 2's bin dir comes first", p)
	}
	env2 := claudeEnv(t, user2, "ANTHROPIC_BASE_URL="+srv.URL, "SWARM_HOME=", "PATH="+path2)
	claude := filepath.Join(binDir, "claude")
	list, err := run(t, 2*time.Minute, env2, proj2, claude, "mcp", "list")
	if err != nil || !regexp.MustCompile(`(?m)^swarm: swarm mcp - .*Connected`).MatchString(list) {
		t.Fatalf("claude mcp list on machine 2 does not show `swarm mcp` connected: %v\n%s", err, list)
	}
	out, err = run(t, 3*time.Minute, env2, proj2, claude, "-p", "What is in my swarm inbox?",
		"--output-format", "stream-json", "--verbose", "--model", "claude-sonnet-4-5")
	if err != nil {
		t.Fatalf("claude -p: %v\n%s", err, out)
	}
	if strings.Contains(out, "permission_denied") || strings.Contains(out, "haven't granted") {
		t.Fatalf("the swarm_inbox call was refused for want of a permission:\n%s", out)
	}
	api.mu.Lock()
	results := strings.Join(api.results, "\n")
	api.mu.Unlock()
	if !strings.Contains(results, "the portable hello") || !strings.Contains(results, "untrusted") {
		t.Fatalf("the model's swarm_inbox did not return machine 2's inbox: %q\n%s", results, out)
	}
}

// TestClaudeSetupUserScope: `swarm claude setup --scope user` registers
// `swarm mcp` through Claude Code itself (no --home for the default home)
// and allows the swarm tools in the user's settings: `claude mcp list`
// shows it connected from any directory, a `claude -p` there calls
// swarm_inbox without a prompt, and a second setup changes nothing.
func TestClaudeSetupUserScope(t *testing.T) {
	needClients(t)
	user := t.TempDir()
	bin := filepath.Join(user, "bin")
	os.MkdirAll(bin, 0o755)
	for name, target := range map[string]string{"swarm": swarmBin, "claude": filepath.Join(binDir, "claude")} {
		if err := os.Symlink(target, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	a := startDaemonAt(t, filepath.Join(user, ".swarm"), "a.test")
	swarm(t, a.home, "create", "--name", "dev-team")
	api := &fakeMessagesAPI{toolName: "mcp__swarm__swarm_inbox", input: map[string]any{}}
	srv := api.start(t)
	env := claudeEnv(t, user, "ANTHROPIC_BASE_URL="+srv.URL, "SWARM_HOME=", "PATH="+bin+":"+os.Getenv("PATH"))
	anywhere := filepath.Join(user, "somewhere")
	os.MkdirAll(anywhere, 0o755)

	out, err := run(t, 2*time.Minute, env, anywhere, filepath.Join(bin, "swarm"), "claude", "setup", "--scope", "user")
	if err != nil || !strings.Contains(out, "written   claude mcp (user scope)") || !strings.Contains(out, "updated   "+filepath.Join(user, ".claude", "settings.json")) {
		t.Fatalf("setup --scope user: %v\n%s", err, out)
	}
	list, err := run(t, 2*time.Minute, env, anywhere, filepath.Join(bin, "claude"), "mcp", "list")
	if err != nil || !regexp.MustCompile(`(?m)^swarm: swarm mcp - .*Connected`).MatchString(list) {
		t.Fatalf("claude mcp list: %v\n%s", err, list)
	}
	out, err = run(t, 3*time.Minute, env, anywhere, filepath.Join(bin, "claude"), "-p", "Inbox?", "--output-format", "stream-json", "--verbose", "--model", "claude-sonnet-4-5")
	if err != nil || strings.Contains(out, "permission_denied") {
		t.Fatalf("claude -p: %v\n%s", err, out)
	}
	api.mu.Lock()
	results := strings.Join(api.results, "\n")
	api.mu.Unlock()
	// The node's answer for an empty inbox, not Claude Code's refusal.
	if !strings.Contains(results, "no messages") || strings.Contains(results, "haven't granted") {
		t.Fatalf("swarm_inbox did not run: %q", results)
	}
	again, err := run(t, 2*time.Minute, env, anywhere, filepath.Join(bin, "swarm"), "claude", "setup", "--scope", "user")
	if err != nil || !strings.Contains(again, "unchanged claude mcp (user scope)") || strings.Contains(again, "written") || strings.Contains(again, "updated") {
		t.Fatalf("second setup --scope user: %v\n%s", err, again)
	}
}
