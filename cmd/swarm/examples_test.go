package main

import (
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agent-swarm/agent-swarm/angie"
	"github.com/agent-swarm/agent-swarm/node"
)

var updateExamples = flag.Bool("update-examples", false, "rewrite examples/ from the generators")

// TestAngieExampleIsWhatInitWrites: examples/angie holds exactly the site
// `swarm init --domain agent-a.example.com --angie` writes.
func TestAngieExampleIsWhatInitWrites(t *testing.T) {
	cfg := &node.Config{Domain: "agent-a.example.com", Listen: "127.0.0.1:7080", Angie: &node.AngieSettings{ACMEHTTPPort: 80}}
	got, err := angie.Render(siteFor(cfg))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join("..", "..", "examples", "angie", "agent-a.example.com.conf")
	if *updateExamples {
		os.WriteFile(p, []byte(got), 0o644)
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("%s is stale; rerun with -update-examples", p)
	}
}

// TestSystemdUnitVerifies runs systemd-analyze verify on the example unit
// (with ExecStart pointed at an executable that exists here).
func TestSystemdUnitVerifies(t *testing.T) {
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed: skipping the unit check")
	}
	unit, err := os.ReadFile(filepath.Join("..", "..", "examples", "systemd", "swarm.service"))
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	dir := t.TempDir()
	p := filepath.Join(dir, "swarm.service")
	os.WriteFile(p, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/swarm", self)), 0o644)
	out, err := exec.Command(bin, "verify", p).CombinedOutput()
	if err != nil || strings.Contains(string(out), "swarm.service") {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestClaudeExamplesAreWhatSetupWrites: examples/claude holds what
// `swarm claude setup` writes, for the default home and swarm on PATH.
func TestClaudeExamplesAreWhatSetupWrites(t *testing.T) {
	mcpFile, _ := json.MarshalIndent(map[string]any{"mcpServers": map[string]any{"swarm": mcpEntry("swarm", "")}}, "", "  ")
	settings, _ := json.MarshalIndent(map[string]any{"hooks": map[string]any{
		"SessionStart":     []any{hookEntry("swarm", "", "session-start")},
		"UserPromptSubmit": []any{hookEntry("swarm", "", "user-prompt-submit")},
	}}, "", "  ")
	dir := filepath.Join("..", "..", "examples", "claude")
	for name, want := range map[string][]byte{
		".mcp.json":       append(mcpFile, '\n'),
		"settings.json":   append(settings, '\n'),
		"agents/swarm.md": []byte(swarmAgent),
	} {
		p := filepath.Join(dir, name)
		if *updateExamples {
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, want, 0o644)
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s is stale; rerun with -update-examples", p)
		}
	}
}
