package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/node/wake"
	"github.com/rs/zerolog"
)

// fakeClaude records each run (argv, stdin) under dir/run-N and prints
// stream-json as claude -p does.
func fakeClaude(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "claude")
	script := `#!/bin/sh
d=$(mktemp -d "` + dir + `/run-XXXXXX")
printf '%s\n' "$@" > "$d/argv"
cat > "$d/stdin"
echo '{"type":"system","subtype":"init","session_id":"sess-'"$(basename $d)"'"}'
echo '{"type":"result","subtype":"success","is_error":false,"session_id":"sess-'"$(basename $d)"'","total_cost_usd":0.01,"result":"ok"}'
`
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func runs(t *testing.T, dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, "run-*"))
	return m
}

// TestWakeOnDirectMessage: B's rule "direct" starts a headless session for
// A's direct message, with B's MCP config, the swarm tools and the framed
// message on stdin; a broadcast does not wake it; a burst of 100 direct
// messages makes at most two wakes; each wake is in the history.
func TestWakeOnDirectMessage(t *testing.T) {
	dir := t.TempDir()
	a := scNode(t, "a.test")
	bHome := directWakeHome(t, dir, "300ms", "5s")
	b, err := Open(bHome, Options{Serve: true, Log: zerolog.Nop(), Wake: WakeOptions{Run: true, Swarm: "/usr/local/bin/swarm"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	scSwarm(t, a, b)
	ctx := context.Background()

	must[SendResult](t)(a.Send(ctx, SendArgs{Swarm: "team", Body: "to everyone", Wait: 5 * time.Second}))
	must[SendResult](t)(a.Send(ctx, SendArgs{Swarm: "team", To: "b.test", Body: "review PR 7 please", Wait: 5 * time.Second}))
	scWait(t, "one wake recorded", func() bool { return len(must[[]wake.Record](t)(b.WakeHistory(0))) == 1 })
	h := must[[]wake.Record](t)(b.WakeHistory(0))[0]
	if h.Status != "ok" || h.Trigger != "direct" || len(h.Messages) != 1 || h.CostUSD != 0.01 || !strings.HasPrefix(h.SessionID, "sess-") {
		t.Fatalf("history %+v", h)
	}
	rs := runs(t, dir)
	if len(rs) != 1 {
		t.Fatalf("%d runs of claude, want 1 (the broadcast must not wake)", len(rs))
	}
	argv, _ := os.ReadFile(filepath.Join(rs[0], "argv"))
	stdin, _ := os.ReadFile(filepath.Join(rs[0], "stdin"))
	mcpCfg, _ := os.ReadFile(filepath.Join(bHome, "wake-mcp.json"))
	if !strings.Contains(string(argv), filepath.Join(bHome, "wake-mcp.json")) || !strings.Contains(string(argv), "mcp__swarm__swarm_send") ||
		!strings.Contains(string(argv), "\n--tools\n\n") {
		t.Fatalf("argv: %s", argv)
	}
	if !strings.Contains(string(mcpCfg), "/usr/local/bin/swarm") || !strings.Contains(string(mcpCfg), bHome) {
		t.Fatalf("wake MCP config: %s", mcpCfg)
	}
	if !strings.Contains(string(stdin), "review PR 7 please") || !strings.Contains(string(stdin), "Message from agent a.test (claimed name: only the key is proven") ||
		!strings.Contains(string(stdin), "verified by signature) directly to you") ||
		strings.Contains(string(stdin), "to everyone") {
		t.Fatalf("prompt: %s", stdin)
	}

	// A muted agent never wakes B.
	must[MuteInfo](t)(b.Mute(MuteArgs{Agent: "a.test"}))
	must[SendResult](t)(a.Send(ctx, SendArgs{Swarm: "team", To: "b.test", Body: "muted one", Wait: 5 * time.Second}))
	must[MuteInfo](t)(b.Unmute(MuteArgs{Agent: "a.test"}))

	// A burst: 100 direct messages, at most two wakes (one may already
	// have started with the first few when the rest arrive).
	for i := range 100 {
		must[SendResult](t)(a.Send(ctx, SendArgs{Swarm: "team", To: "b.test", Body: fmt.Sprintf("burst %d", i)}))
	}
	scWait(t, "the burst delivered", func() bool { return len(bodies(t, b)) >= 103 })
	scWait(t, "the burst handled", func() bool {
		n := 0
		for _, r := range must[[]wake.Record](t)(b.WakeHistory(0)) {
			n += len(r.Messages)
		}
		return n == 101
	})
	time.Sleep(5500 * time.Millisecond) // past the cooldown: nothing more may start
	if n := len(runs(t, dir)) - 1; n < 1 || n > 2 {
		t.Fatalf("a burst of 100 made %d wakes, want 1 or 2", n)
	}
	for _, r := range must[[]wake.Record](t)(b.WakeHistory(0)) {
		for _, id := range r.Messages {
			if m := bodies(t, b)["muted one"]; m.ID == id {
				t.Fatal("a muted message was handed to a wake")
			}
		}
	}
}

// TestNoWakeWithoutDaemon: a node opened without Wake.Run (what `swarm
// mcp` does when no daemon serves the home) serves peers but runs no
// wakes, even for a message that matches an enabled rule.
func TestNoWakeWithoutDaemon(t *testing.T) {
	dir := t.TempDir()
	a := scNode(t, "a.test")
	bHome := directWakeHome(t, dir, "50ms", "0s")
	b := scOpen(t, bHome) // Serve, no Wake.Run
	scSwarm(t, a, b)
	if w := must[WakeInfo](t)(b.WakeRules()); w.Daemon || !w.Enabled {
		t.Fatalf("wake info %+v: want enabled, no daemon", w)
	}
	must[SendResult](t)(a.Send(context.Background(), SendArgs{Swarm: "team", To: "b.test", Body: "wake up", Wait: 5 * time.Second}))
	scWait(t, "delivered", func() bool { _, ok := bodies(t, b)["wake up"]; return ok })
	if d := must[wake.Decision](t)(b.WakeTest(WakeTestArgs{Swarm: "team", From: "a.test", Direct: true, Body: "wake up"})); !d.Wake {
		t.Fatalf("the rule should match (%+v), or this test proves nothing", d)
	}
	time.Sleep(500 * time.Millisecond) // ten times the gather
	if rs := runs(t, dir); len(rs) != 0 {
		t.Fatalf("%d runs of claude without a daemon", len(rs))
	}
	if h := must[[]wake.Record](t)(b.WakeHistory(0)); len(h) != 0 {
		t.Fatalf("wake history without a daemon: %+v", h)
	}
	if _, err := os.Stat(filepath.Join(bHome, wakeMCPFile)); err == nil {
		t.Error("wake-mcp.json written without a daemon")
	}
}

// TestWakeRelativeHome: a relative home is made absolute once, at Open,
// so the woken session (run in another directory) finds the MCP config
// and its `swarm mcp --home` finds the node.
func TestWakeRelativeHome(t *testing.T) {
	dir := t.TempDir()
	bHome := scHome(t, "b.test")
	cfg := must[*Config](t)(LoadConfig(bHome))
	cfg.Wake = &wake.Config{Claude: fakeClaude(t, dir), Dir: dir}
	if err := SaveConfig(bHome, cfg); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Dir(bHome))
	b, err := Open(filepath.Base(bHome), Options{Serve: true, Log: zerolog.Nop(), Wake: WakeOptions{Run: true, Swarm: "/usr/local/bin/swarm"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if b.Home() != bHome {
		t.Fatalf("home %q, want %q", b.Home(), bHome)
	}
	w := must[WakeInfo](t)(b.WakeRules())
	if w.MCPConfig != filepath.Join(bHome, wakeMCPFile) {
		t.Fatalf("MCP config %q", w.MCPConfig)
	}
	mcpCfg, _ := os.ReadFile(w.MCPConfig)
	if !strings.Contains(string(mcpCfg), `"`+bHome+`"`) {
		t.Fatalf("wake MCP config lacks the absolute home %s:\n%s", bHome, mcpCfg)
	}
}

// directWakeHome is a home for b.test whose wakes are on, with one rule
// (direct messages) and a fake claude in dir.
func directWakeHome(t *testing.T, dir, gather, cooldown string) string {
	t.Helper()
	home := scHome(t, "b.test")
	cfg := must[*Config](t)(LoadConfig(home))
	cfg.Wake = &wake.Config{Enabled: true, Rules: []wake.Rule{{On: "direct"}}, Claude: fakeClaude(t, dir), Gather: gather, Cooldown: cooldown}
	if err := SaveConfig(home, cfg); err != nil {
		t.Fatal(err)
	}
	return home
}

// TestWakeEnableNeedsClaude: turning wakes on, or naming another claude
// while they are on, is refused (exit 2, settings unchanged) when that
// claude cannot run here; with one on PATH or by absolute path it works,
// and turning wakes off never needs one.
func TestWakeEnableNeedsClaude(t *testing.T) {
	bin := t.TempDir()
	fake := filepath.Join(bin, "claude")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	n, err := Open(scHome(t, "b.test"), Options{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	on, off := true, false
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name    string
		path    string
		set     WakeSetArgs
		wantErr string
		enabled bool // after the step
	}{
		{"enable, no claude on PATH", t.TempDir(), WakeSetArgs{Enabled: &on}, `wakes not turned on: claude command "claude" is not on PATH`, false},
		{"enable, a missing absolute claude", bin, WakeSetArgs{Enabled: &on, Claude: str(filepath.Join(bin, "nope"))}, "not an executable file", false},
		{"enable, claude on PATH", bin, WakeSetArgs{Enabled: &on}, "", true},
		{"while on, a relative claude", bin, WakeSetArgs{Claude: str("tools/claude")}, "give an absolute path", true},
		{"while on, an absolute claude", t.TempDir(), WakeSetArgs{Claude: str(fake)}, "", true},
		{"while on, other settings need no check", t.TempDir(), WakeSetArgs{Cooldown: str("5m")}, "", true},
		{"disable never checks", t.TempDir(), WakeSetArgs{Enabled: &off, Claude: str("claude-missing")}, "", false},
	} {
		t.Setenv("PATH", tc.path)
		_, err := n.WakeSet(tc.set)
		if (err == nil) != (tc.wantErr == "") || (err != nil && (!strings.Contains(err.Error(), tc.wantErr) || !IsUser(err))) {
			t.Errorf("%s: error %v, want %q (a user error)", tc.name, err, tc.wantErr)
		}
		w := must[WakeInfo](t)(n.WakeRules())
		if w.Enabled != tc.enabled {
			t.Errorf("%s: enabled %v after it, want %v", tc.name, w.Enabled, tc.enabled)
		}
	}
	cfg := must[*Config](t)(LoadConfig(n.home))
	if cfg.Wake.Claude != "claude-missing" || cfg.Wake.Cooldown != "5m" {
		t.Errorf("saved wake settings %+v", cfg.Wake)
	}
}
