package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/agent-swarm/agent-swarm/node/ops"
)

// setupMachine is a user on a machine: a home directory (HOME), a bin
// directory that is all of PATH, and a swarm node in the default home
// ~/.swarm or in another one.
type setupMachine struct {
	t         *testing.T
	user, bin string
}

func newSetupMachine(t *testing.T, withSwarm, withClaude bool) setupMachine {
	m := setupMachine{t: t, user: t.TempDir(), bin: t.TempDir()}
	for name, want := range map[string]bool{"swarm": withSwarm, "claude": withClaude} {
		if want {
			if err := os.WriteFile(filepath.Join(m.bin, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Setenv("HOME", m.user)
	t.Setenv("PATH", m.bin)
	t.Setenv("SWARM_HOME", "")
	t.Setenv("CLAUDE_CONFIG_DIR", "")
	return m
}

// node inits a node in home (relative to the user's home dir).
func (m setupMachine) node(home string) string {
	p, err := freePort()
	if err != nil {
		m.t.Fatal(err)
	}
	home = filepath.Join(m.user, home)
	cli(m.t, "--home", home, "init", "--domain", "a.test", "--listen", fmt.Sprintf("127.0.0.1:%d", p))
	return home
}

// setup runs `swarm [globals] claude setup args…` and returns its output.
func (m setupMachine) setup(globals []string, args ...string) string {
	m.t.Helper()
	return cli(m.t, append(globals, append([]string{"claude", "setup"}, args...)...)...)
}

func readObj(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return obj
}

func at(obj map[string]any, path ...string) any {
	var v any = obj
	for _, k := range path {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

// TestClaudeSetupPortable: what a project commits is the same whatever
// the machine, user or home: .mcp.json runs `swarm mcp` (swarm by name,
// no --home), .claude/settings.json allows the swarm tools, and neither
// names a path. Only .claude/settings.local.json differs: it approves the
// server, holds the hooks and, for a home that is not ~/.swarm, sets
// SWARM_HOME.
func TestClaudeSetupPortable(t *testing.T) {
	shared := map[string][]byte{}
	for _, tc := range []struct {
		name     string
		home     string // under the user's home dir; .swarm is the default
		viaEnv   bool   // the home comes from SWARM_HOME, not --home
		wantHome bool   // settings.local.json sets SWARM_HOME
	}{
		{"default home", ".swarm", false, false},
		{"default home named by --home", ".swarm", false, false},
		{"other home by --home", "nodes/agent-a", false, true},
		{"other home by SWARM_HOME", "elsewhere", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newSetupMachine(t, true, true)
			home := m.node(tc.home)
			proj := filepath.Join(m.user, "proj")
			os.MkdirAll(proj, 0o755)
			var globals []string
			switch {
			case tc.viaEnv:
				t.Setenv("SWARM_HOME", home)
			case tc.name != "default home":
				globals = []string{"--home", home}
			}
			out := m.setup(globals, "--project", proj)
			if strings.Contains(out, "warning: swarm") || strings.Contains(out, "warning: claude") {
				t.Errorf("swarm and claude are on PATH, yet:\n%s", out)
			}
			for _, f := range []string{".mcp.json", ".claude/settings.json", ".claude/agents/swarm.md"} {
				b, err := os.ReadFile(filepath.Join(proj, f))
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(b, []byte(m.user)) || bytes.Contains(b, []byte(m.bin)) {
					t.Errorf("%s names a path of this machine:\n%s", f, b)
				}
				if prev, ok := shared[f]; ok && !bytes.Equal(prev, b) {
					t.Errorf("%s differs from the one set up on another machine:\n%s\nthen:\n%s", f, b, prev)
				}
				shared[f] = b
			}
			mcp := readObj(t, filepath.Join(proj, ".mcp.json"))
			if got, _ := json.Marshal(at(mcp, "mcpServers", "swarm")); string(got) != `{"args":["mcp"],"command":"swarm","type":"stdio"}` {
				t.Errorf(".mcp.json swarm server: %s", got)
			}
			var allow []string
			for _, x := range at(readObj(t, filepath.Join(proj, ".claude", "settings.json")), "permissions", "allow").([]any) {
				allow = append(allow, x.(string))
			}
			if !slices.Equal(allow, swarmTools) || !slices.Contains(allow, "mcp__swarm__swarm_inbox") || slices.Contains(allow, "mcp__swarm__swarm_leave") {
				t.Errorf("permissions.allow %v, want the swarm tools %v", allow, swarmTools)
			}
			local := readObj(t, filepath.Join(proj, ".claude", "settings.local.json"))
			if got, _ := json.Marshal(local["enabledMcpjsonServers"]); string(got) != `["swarm"]` {
				t.Errorf("enabledMcpjsonServers %s", got)
			}
			hooks, _ := json.Marshal(local["hooks"])
			for _, want := range []string{`"command":"swarm hook session-start"`, `"command":"swarm hook user-prompt-submit"`} {
				if !strings.Contains(string(hooks), want) {
					t.Errorf("hooks lack %s: %s", want, hooks)
				}
			}
			env := at(local, "env", "SWARM_HOME")
			if tc.wantHome && env != home || !tc.wantHome && env != nil {
				t.Errorf("settings.local.json env.SWARM_HOME = %v (home %s, default %v)", env, home, !tc.wantHome)
			}
			if tc.wantHome != strings.Contains(out, "note: the node's home is not ~/.swarm") {
				t.Errorf("the output does not say where the home is set:\n%s", out)
			}
			// Idempotent: a second run changes nothing.
			again := m.setup(globals, "--project", proj)
			if strings.Contains(again, "written") || strings.Contains(again, "updated") {
				t.Errorf("second setup changed something:\n%s", again)
			}
		})
	}
}

// TestClaudeSetupKeepsUserRules: rules of the user's own for the swarm
// tools (a tool they want to be asked about) are kept as they are, and
// so is a SWARM_HOME they set; other settings in the files stay.
func TestClaudeSetupKeepsUserRules(t *testing.T) {
	m := newSetupMachine(t, true, true)
	home := m.node("nodes/a")
	proj := filepath.Join(m.user, "proj")
	os.MkdirAll(filepath.Join(proj, ".claude"), 0o755)
	mine := `{"model": "opus", "permissions": {"allow": ["Bash(make:*)", "mcp__swarm__swarm_inbox"], "ask": ["mcp__swarm__swarm_send"]}}`
	os.WriteFile(filepath.Join(proj, ".claude", "settings.json"), []byte(mine), 0o644)
	os.WriteFile(filepath.Join(proj, ".claude", "settings.local.json"), []byte(`{"env": {"SWARM_HOME": "/srv/swarm", "OTHER": "1"}}`), 0o644)
	out := m.setup([]string{"--home", home}, "--project", proj)
	for _, want := range []string{"kept      " + filepath.Join(proj, ".claude", "settings.json") + " (it has its own permission rules for the swarm tools",
		"kept      " + filepath.Join(proj, ".claude", "settings.local.json") + ` (it already has a "env.SWARM_HOME" entry that differs`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(proj, ".claude", "settings.json")); string(b) != mine {
		t.Errorf("settings.json was rewritten:\n%s", b)
	}
	local := readObj(t, filepath.Join(proj, ".claude", "settings.local.json"))
	if at(local, "env", "SWARM_HOME") != "/srv/swarm" || at(local, "env", "OTHER") != "1" || local["hooks"] == nil {
		t.Errorf("settings.local.json: %v", local)
	}
}

// TestClaudeSetupChecks: what is missing (swarm or claude not on PATH, no
// daemon) is said, with what to do; the files are written all the same,
// with swarm by name, never a dead path. --json gives changes and
// warnings.
func TestClaudeSetupChecks(t *testing.T) {
	m := newSetupMachine(t, false, false)
	m.node(".swarm")
	proj := filepath.Join(m.user, "proj")
	os.MkdirAll(proj, 0o755)
	out := m.setup(nil, "--project", proj)
	for _, want := range []string{
		"warning: swarm is not on PATH: Claude Code starts `swarm mcp` and the hooks by that name; install it with `go install ./cmd/swarm`",
		"warning: claude is not on PATH: install Claude Code",
		"warning: no daemon serves " + filepath.Join(m.user, ".swarm") + ": start `swarm serve`",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if got := at(readObj(t, filepath.Join(proj, ".mcp.json")), "mcpServers", "swarm", "command"); got != "swarm" {
		t.Errorf(".mcp.json command %v", got)
	}
	var res struct {
		Changes  []setupChange `json:"changes"`
		Warnings []string      `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(m.setup([]string{"--json"}, "--project", proj)), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) != 6 || len(res.Warnings) != 3 || res.Changes[0].Action != "unchanged" {
		t.Errorf("--json: %+v", res)
	}
}

// TestSwarmToolsAreOps: every tool setup allows without asking is an MCP
// tool of the table (an operation renamed or made the user's would
// otherwise leave a dead permission, and the tool asking again).
func TestSwarmToolsAreOps(t *testing.T) {
	for _, tool := range swarmTools {
		op := ops.Find(strings.TrimPrefix(tool, "mcp__swarm__swarm_"))
		if !strings.HasPrefix(tool, "mcp__swarm__swarm_") || op == nil || op.Local {
			t.Errorf("%s names no MCP tool of the table", tool)
		}
	}
}
