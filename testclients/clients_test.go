package testclients

import (
	"encoding/json"
	"github.com/agent-swarm/agent-swarm/node/ops"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// allTools is every tool the server must list: one per operation of the
// table that is not local-only.
var allTools = func() []string {
	var out []string
	for _, op := range ops.All() {
		if !op.Local {
			out = append(out, "swarm_"+op.Name)
		}
	}
	return out
}()

// TestInspectorCLI: the MCP Inspector CLI lists and calls tools of
// `swarm mcp` on stdio, attached to a running daemon.
func TestInspectorCLI(t *testing.T) {
	needClients(t)
	d := startDaemon(t, "insp.test")
	base := []string{"--cli", swarmBin, "--home", d.home, "--log-file", filepath.Join(d.home, "mcp.log"), "mcp"}
	out, err := run(t, 2*time.Minute, nil, ".", nodeBin(), append([]string{filepath.Join(binDir, "mcp-inspector")}, append(base, "--method", "tools/list")...)...)
	if err != nil {
		t.Fatalf("inspector tools/list: %v\n%s", err, out)
	}
	for _, name := range allTools {
		if !strings.Contains(out, `"name": "`+name+`"`) {
			t.Errorf("tools/list lacks %s", name)
		}
	}
	out, err = run(t, 2*time.Minute, nil, ".", nodeBin(), append([]string{filepath.Join(binDir, "mcp-inspector")},
		append(base, "--method", "tools/call", "--tool-name", "swarm_create", "--tool-arg", "name=inspected")...)...)
	if err != nil || !strings.Contains(out, `"is_master": true`) {
		t.Fatalf("inspector tools/call swarm_create: %v\n%s", err, out)
	}
	// The daemon, not a second in-process node, made the swarm.
	if got := swarm(t, d.home, "list"); !strings.Contains(got, "inspected") {
		t.Fatalf("daemon does not list the swarm made through the Inspector: %s", got)
	}
}

type sdkOut struct {
	Tools  []string `json:"tools"`
	Result struct {
		IsError           bool           `json:"isError"`
		StructuredContent map[string]any `json:"structuredContent"`
		Content           []struct{ Text string }
	} `json:"result"`
}

func sdk(t *testing.T, args ...string) sdkOut {
	t.Helper()
	out, err := run(t, 2*time.Minute, nil, ".", nodeBin(), append([]string{"sdk-client.mjs"}, args...)...)
	if err != nil {
		t.Fatalf("sdk client %v: %v\n%s", args[:2], err, out)
	}
	var o sdkOut
	ls := lines(out)
	if err := json.Unmarshal([]byte(ls[len(ls)-1]), &o); err != nil {
		t.Fatalf("sdk client output: %v\n%s", err, out)
	}
	return o
}

// TestTypeScriptSDK: the official TypeScript SDK over stdio and over
// streamable HTTP with the bearer token.
func TestTypeScriptSDK(t *testing.T) {
	needClients(t)
	d := startDaemon(t, "sdk.test")
	o := sdk(t, "stdio", "swarm_create", `{"name":"over-stdio"}`, "--", swarmBin, "--home", d.home, "--log-file", filepath.Join(d.home, "mcp.log"), "mcp")
	if len(o.Tools) != len(allTools) || o.Result.IsError || o.Result.StructuredContent["name"] != "over-stdio" {
		t.Fatalf("stdio: %+v", o)
	}
	o = sdk(t, "http", "swarm_list", `{}`, d.mcpURL, d.token)
	if len(o.Tools) != len(allTools) || o.Result.IsError {
		t.Fatalf("http: %+v", o)
	}
	items, _ := o.Result.StructuredContent["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["name"] != "over-stdio" {
		t.Fatalf("http swarm_list does not show the swarm made over stdio: %+v", o.Result.StructuredContent)
	}
	o = sdk(t, "http", "swarm_kick", `{"swarm":"over-stdio","agent":"nobody.test"}`, d.mcpURL, d.token)
	if !o.Result.IsError || !strings.Contains(o.Result.Content[0].Text, "not a member") {
		t.Fatalf("a user mistake must be a readable tool error: %+v", o.Result)
	}
	if _, err := run(t, time.Minute, nil, ".", nodeBin(), "sdk-client.mjs", "http", "swarm_list", "{}", d.mcpURL, "wrong-token"); err == nil {
		t.Fatal("the HTTP endpoint accepted a wrong bearer token")
	}
}

// claudeEnv keeps Claude Code offline: its own home, no telemetry, and any
// stray HTTPS through a closed loopback port.
func claudeEnv(t *testing.T, home string, extra ...string) []string {
	return append([]string{
		"HOME=" + home,
		"CLAUDE_CONFIG_DIR=" + filepath.Join(home, ".claude"),
		"HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9", "NO_PROXY=127.0.0.1,localhost",
		"DISABLE_TELEMETRY=1", "DISABLE_ERROR_REPORTING=1", "DISABLE_AUTOUPDATER=1",
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "ANTHROPIC_API_KEY=sk-ant-test-not-a-real-key",
		"IS_SANDBOX=1", "ENABLE_TOOL_SEARCH=false",
	}, extra...)
}

// TestClaudeMCPList: `claude mcp list` reports the server connected over
// stdio and over HTTP. It exits 0 even when a server fails, so the output
// is parsed.
func TestClaudeMCPList(t *testing.T) {
	needClients(t)
	d := startDaemon(t, "cc.test")
	home := t.TempDir()
	env := claudeEnv(t, home)
	claude := filepath.Join(binDir, "claude")
	if out, err := run(t, time.Minute, env, home, claude, "mcp", "add", "--scope", "user", "swarm", "--", swarmBin, "--home", d.home, "--log-file", filepath.Join(d.home, "mcp.log"), "mcp"); err != nil {
		t.Fatalf("claude mcp add (stdio): %v\n%s", err, out)
	}
	if out, err := run(t, time.Minute, env, home, claude, "mcp", "add", "--scope", "user", "--transport", "http", "swarm-http", d.mcpURL, "--header", "Authorization: Bearer "+d.token); err != nil {
		t.Fatalf("claude mcp add (http): %v\n%s", err, out)
	}
	out, err := run(t, 2*time.Minute, env, home, claude, "mcp", "list")
	if err != nil {
		t.Fatalf("claude mcp list: %v\n%s", err, out)
	}
	for _, name := range []string{"swarm", "swarm-http"} {
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `: .*Connected`)
		if !re.MatchString(out) {
			t.Errorf("claude mcp list does not show %s connected:\n%s", name, out)
		}
	}
	if strings.Contains(out, d.token) {
		t.Error("claude mcp list printed the bearer token")
	}
}

// TestClaudeToolLoop: a headless `claude -p` session whose model (a fake
// Messages API on loopback) calls mcp__swarm__swarm_send; afterwards the
// second node's inbox holds the message, from the first node.
func TestClaudeToolLoop(t *testing.T) {
	needClients(t)
	a, b := startDaemon(t, "a.test"), startDaemon(t, "b.test")
	swarm(t, a.home, "create", "--name", "dev-team")
	tok := swarm(t, a.home, "invite", "--swarm", "dev-team")
	swarm(t, b.home, "join", "--token", tok)

	api := &fakeMessagesAPI{toolName: "mcp__swarm__swarm_send",
		input: map[string]any{"swarm": "dev-team", "to": "b.test", "body": "hello from claude", "wait": "10s"}}
	srv := api.start(t)
	home := t.TempDir()
	cfg := filepath.Join(home, "mcp.json")
	b1, _ := json.Marshal(map[string]any{"mcpServers": map[string]any{"swarm": map[string]any{
		"command": swarmBin, "args": []string{"--home", a.home, "--log-file", filepath.Join(a.home, "mcp.log"), "mcp"}}}})
	if err := os.WriteFile(cfg, b1, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, 3*time.Minute, claudeEnv(t, home, "ANTHROPIC_BASE_URL="+srv.URL), home, filepath.Join(binDir, "claude"),
		"-p", "Tell b.test hello.", "--mcp-config", cfg, "--strict-mcp-config",
		"--allowedTools", "mcp__swarm__swarm_send", "--output-format", "stream-json", "--verbose", "--model", "claude-sonnet-4-5")
	if err != nil {
		t.Fatalf("claude -p: %v\n%s", err, out)
	}
	api.mu.Lock()
	results := append([]string(nil), api.results...)
	api.mu.Unlock()
	if len(results) == 0 || !strings.Contains(results[0], "delivered") {
		t.Fatalf("the tool result the model saw does not report delivery: %v\n%s", results, out)
	}
	inbox := swarm(t, b.home, "inbox", "--json")
	var msgs []map[string]any
	if err := json.Unmarshal([]byte(inbox), &msgs); err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0]["body"] != "hello from claude" || msgs[0]["from"] != "a.test" || msgs[0]["direct"] != true {
		t.Fatalf("b's inbox after the Claude session: %s", inbox)
	}
}
