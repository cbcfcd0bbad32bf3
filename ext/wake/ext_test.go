package wake

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/ops"
	"github.com/agent-swarm/agent-swarm/node/transport"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/rs/zerolog"
)

// Real nodes on 127.0.0.1 with the wake extension, as the daemon and the
// in-process nodes run it.

func scHome(t *testing.T, domain string) string {
	t.Helper()
	port, err := transport.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if _, err := node.Init(home, node.InitOptions{Domain: domain, Listen: fmt.Sprintf("127.0.0.1:%d", port)}); err != nil {
		t.Fatal(err)
	}
	cfg := must[*node.Config](t)(node.LoadConfig(home))
	cfg.RetryMin, cfg.RetryMax = node.Duration(20*time.Millisecond), node.Duration(200*time.Millisecond)
	cfg.Heartbeat, cfg.SyncEvery = node.Duration(200*time.Millisecond), node.Duration(300*time.Millisecond)
	cfg.JoinRate, cfg.JoinBurst = 100, 100
	if err := node.SaveConfig(home, cfg); err != nil {
		t.Fatal(err)
	}
	return home
}

// openNode opens a serving node on home; Close runs at cleanup.
func openNode(t *testing.T, home string, o node.Options) *node.Node {
	t.Helper()
	o.Serve, o.Log = true, zerolog.Nop()
	n, err := node.Open(home, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func scOpen(t *testing.T, home string) *node.Node { return openNode(t, home, node.Options{}) }

func scNode(t *testing.T, domain string) *node.Node { return scOpen(t, scHome(t, domain)) }

// daemonOpts are what `swarm serve` opens its node with, the woken
// session's MCP config naming a fixed swarm binary.
var daemonOpts = node.Options{Daemon: true, Ext: map[string]any{Name: Options{Swarm: "/usr/local/bin/swarm"}}}

func scWait(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// scSwarm makes the swarm "team" on master and joins the others.
func scSwarm(t *testing.T, master *node.Node, others ...*node.Node) {
	joinSwarm(t, "team", master, others...)
}

// joinSwarm makes a swarm on master and joins the others.
func joinSwarm(t *testing.T, name string, master *node.Node, others ...*node.Node) {
	t.Helper()
	must[node.SwarmInfo](t)(master.Create(node.CreateArgs{Name: name}))
	for _, o := range others {
		inv := must[node.InviteInfo](t)(master.Invite(node.InviteArgs{Swarm: name}))
		must[node.SwarmInfo](t)(o.Join(context.Background(), inv.Token))
	}
	for _, n := range append(others, master) {
		scWait(t, n.Domain()+" sees every member", func() bool {
			return len(must[[]node.MemberInfo](t)(n.Members(name))) == len(others)+1
		})
	}
}

// bodies returns the bodies of peers' messages in the inbox (including
// muted; the node's own notices aside) and fails on a duplicate.
func bodies(t *testing.T, n *node.Node) map[string]node.InboxMessage {
	t.Helper()
	out := map[string]node.InboxMessage{}
	for _, m := range must[[]node.InboxMessage](t)(n.Inbox(node.InboxArgs{IncludeMuted: true, Limit: 1000})) {
		if m.Local {
			continue // the node's own notices
		}
		if _, dup := out[m.Body]; dup {
			t.Fatalf("%s holds %q twice", n.Domain(), m.Body)
		}
		out[m.Body] = m
	}
	return out
}

// wakeOf is the node's wake extension.
func wakeOf(t *testing.T, n *node.Node) *ext {
	t.Helper()
	return must[*ext](t)(of(n))
}

// setConfig writes the wake section of home's config.json.
func setConfig(t *testing.T, home string, c Config) {
	t.Helper()
	cfg := must[*node.Config](t)(node.LoadConfig(home))
	if cfg.Ext == nil {
		cfg.Ext = map[string]json.RawMessage{}
	}
	cfg.Ext[Name] = must[[]byte](t)(json.Marshal(c))
	if err := node.SaveConfig(home, cfg); err != nil {
		t.Fatal(err)
	}
}

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
	b := openNode(t, bHome, daemonOpts)
	scSwarm(t, a, b)
	ctx := context.Background()

	must[node.SendResult](t)(a.Send(ctx, node.SendArgs{Swarm: "team", Body: "to everyone", Wait: 5 * time.Second}))
	must[node.SendResult](t)(a.Send(ctx, node.SendArgs{Swarm: "team", To: "b.test", Body: "review PR 7 please", Wait: 5 * time.Second}))
	scWait(t, "one wake recorded", func() bool { return len(must[[]Record](t)(wakeOf(t, b).history(0))) == 1 })
	if got := metricValue(wakeOf(t, b).Metrics(), "swarm_wakes_total", "ok"); got != 1 {
		t.Fatalf("swarm_wakes_total{status=ok} = %v after one wake", got)
	}
	h := must[[]Record](t)(wakeOf(t, b).history(0))[0]
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
	must[node.MuteInfo](t)(b.Mute(node.MuteArgs{Agent: "a.test"}))
	must[node.SendResult](t)(a.Send(ctx, node.SendArgs{Swarm: "team", To: "b.test", Body: "muted one", Wait: 5 * time.Second}))
	must[node.MuteInfo](t)(b.Unmute(node.MuteArgs{Agent: "a.test"}))

	// A burst: 100 direct messages, at most two wakes (one may already
	// have started with the first few when the rest arrive).
	for i := range 100 {
		must[node.SendResult](t)(a.Send(ctx, node.SendArgs{Swarm: "team", To: "b.test", Body: fmt.Sprintf("burst %d", i)}))
	}
	scWait(t, "the burst delivered", func() bool { return len(bodies(t, b)) >= 103 })
	scWait(t, "the burst handled", func() bool {
		n := 0
		for _, r := range must[[]Record](t)(wakeOf(t, b).history(0)) {
			n += len(r.Messages)
		}
		return n == 101
	})
	time.Sleep(5500 * time.Millisecond) // past the cooldown: nothing more may start
	if n := len(runs(t, dir)) - 1; n < 1 || n > 2 {
		t.Fatalf("a burst of 100 made %d wakes, want 1 or 2", n)
	}
	for _, r := range must[[]Record](t)(wakeOf(t, b).history(0)) {
		for _, id := range r.Messages {
			if m := bodies(t, b)["muted one"]; m.ID == id {
				t.Fatal("a muted message was handed to a wake")
			}
		}
	}
}

// TestNoWakeWithoutDaemon: a node opened without Options.Daemon (what `swarm
// mcp` does when no daemon serves the home) serves peers but runs no
// wakes, even for a message that matches an enabled rule.
func TestNoWakeWithoutDaemon(t *testing.T) {
	dir := t.TempDir()
	a := scNode(t, "a.test")
	bHome := directWakeHome(t, dir, "50ms", "0s")
	b := scOpen(t, bHome) // Serve, not the daemon
	scSwarm(t, a, b)
	if w := must[Info](t)(wakeOf(t, b).rules()); w.Daemon || !w.Enabled {
		t.Fatalf("wake info %+v: want enabled, no daemon", w)
	}
	must[node.SendResult](t)(a.Send(context.Background(), node.SendArgs{Swarm: "team", To: "b.test", Body: "wake up", Wait: 5 * time.Second}))
	scWait(t, "delivered", func() bool { _, ok := bodies(t, b)["wake up"]; return ok })
	if d := must[Decision](t)(wakeOf(t, b).test(TestArgs{Swarm: "team", From: "a.test", Direct: true, Body: "wake up"})); !d.Wake {
		t.Fatalf("the rule should match (%+v), or this test proves nothing", d)
	}
	time.Sleep(500 * time.Millisecond) // ten times the gather
	if rs := runs(t, dir); len(rs) != 0 {
		t.Fatalf("%d runs of claude without a daemon", len(rs))
	}
	if h := must[[]Record](t)(wakeOf(t, b).history(0)); len(h) != 0 {
		t.Fatalf("wake history without a daemon: %+v", h)
	}
	if _, err := os.Stat(filepath.Join(bHome, mcpFile)); err == nil {
		t.Error("wake-mcp.json written without a daemon")
	}
}

// TestWakeRelativeHome: a relative home is made absolute once, at Open,
// so the woken session (run in another directory) finds the MCP config
// and its `swarm mcp --home` finds the node.
func TestWakeRelativeHome(t *testing.T) {
	dir := t.TempDir()
	bHome := scHome(t, "b.test")
	setConfig(t, bHome, Config{Claude: fakeClaude(t, dir), Dir: dir})
	t.Chdir(filepath.Dir(bHome))
	b := openNode(t, filepath.Base(bHome), daemonOpts)
	if b.Home() != bHome {
		t.Fatalf("home %q, want %q", b.Home(), bHome)
	}
	w := must[Info](t)(wakeOf(t, b).rules())
	if w.MCPConfig != filepath.Join(bHome, mcpFile) {
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
	setConfig(t, home, Config{Enabled: true, Rules: []Rule{{On: "direct"}}, Claude: fakeClaude(t, dir), Gather: gather, Cooldown: cooldown})
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
	n, err := node.Open(scHome(t, "b.test"), node.Options{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	on, off := true, false
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name    string
		path    string
		set     SetArgs
		wantErr string
		enabled bool // after the step
	}{
		{"enable, no claude on PATH", t.TempDir(), SetArgs{Enabled: &on}, `wakes not turned on: claude command "claude" is not on PATH`, false},
		{"enable, a missing absolute claude", bin, SetArgs{Enabled: &on, Claude: str(filepath.Join(bin, "nope"))}, "not an executable file", false},
		{"enable, claude on PATH", bin, SetArgs{Enabled: &on}, "", true},
		{"while on, a relative claude", bin, SetArgs{Claude: str("tools/claude")}, "give an absolute path", true},
		{"while on, an absolute claude", t.TempDir(), SetArgs{Claude: str(fake)}, "", true},
		{"while on, other settings need no check", t.TempDir(), SetArgs{Cooldown: str("5m")}, "", true},
		{"disable never checks", t.TempDir(), SetArgs{Enabled: &off, Claude: str("claude-missing")}, "", false},
	} {
		t.Setenv("PATH", tc.path)
		_, err := wakeOf(t, n).set(tc.set)
		if (err == nil) != (tc.wantErr == "") || (err != nil && (!strings.Contains(err.Error(), tc.wantErr) || !node.IsUser(err))) {
			t.Errorf("%s: error %v, want %q (a user error)", tc.name, err, tc.wantErr)
		}
		w := must[Info](t)(wakeOf(t, n).rules())
		if w.Enabled != tc.enabled {
			t.Errorf("%s: enabled %v after it, want %v", tc.name, w.Enabled, tc.enabled)
		}
	}
	cfg := must[*node.Config](t)(node.LoadConfig(n.Home()))
	var saved Config
	if err := json.Unmarshal(cfg.Ext[Name], &saved); err != nil || saved.Claude != "claude-missing" || saved.Cooldown != "5m" {
		t.Errorf("saved wake settings %+v (%v)", saved, err)
	}
}

// TestWakeRuleSenderBindsKey: a wake rule for a sender binds the key its
// name names now, as a mute does: a name two keys hold in different
// swarms is refused as ambiguous, a fingerprint takes that key only.
// (Moved from the core's TestAdversaryCrossSwarmNameCollision; the second
// b.test here is a real node.)
func TestWakeRuleSenderBindsKey(t *testing.T) {
	v, b, imp := scNode(t, "v.test"), scNode(t, "b.test"), scNode(t, "b.test")
	scSwarm(t, v, b)
	joinSwarm(t, "other", v, imp)
	fp := func(swarm string) string {
		for _, m := range must[[]node.MemberInfo](t)(v.Members(swarm)) {
			if m.Domain == "b.test" {
				return m.Fingerprint
			}
		}
		t.Fatalf("no b.test in %s", swarm)
		return ""
	}
	real, fake := fp("team"), fp("other")
	if real == fake {
		t.Fatal("the two b.test nodes share a key; the test proves nothing")
	}
	x := wakeOf(t, v)
	if _, err := x.add(Rule{On: "sender", Sender: "b.test"}); err == nil || !strings.Contains(err.Error(), "different keys") {
		t.Fatalf("wake rule by an ambiguous name: %v", err)
	}
	wi := must[Info](t)(x.add(Rule{On: "sender", Sender: real}))
	if r := wi.Rules[len(wi.Rules)-1]; r.Sender != "b.test" || r.SenderKey != real {
		t.Fatalf("wake rule %+v, want bound to the real b's key", r)
	}
}

// TestWakeOpsArgErrors: argument errors name the command, the parameter
// and the value, through the one table the faces share.
func TestWakeOpsArgErrors(t *testing.T) {
	for _, tc := range []struct {
		op   string
		raw  map[string]any
		want string
	}{
		{"wake_add", map[string]any{"on": "bogus"}, `wake add: on "bogus": not one of any, direct,`},
		{"wake_add", map[string]any{}, `wake add: missing required argument "on" (what fires it)`},
	} {
		op := ops.Find(tc.op)
		if op == nil {
			t.Fatalf("%s is not in the table", tc.op)
		}
		_, err := op.Validate(tc.raw)
		if err == nil || !node.IsUser(err) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s %v: %v, want %q", tc.op, tc.raw, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), tc.op) {
			t.Errorf("%s: the error names the operation by its internal name: %v", tc.op, err)
		}
	}
}

// TestWakeOnMembershipEvent: a rule on a system event wakes the daemon's
// agent when the membership log says another agent joined; the prompt
// says it comes from the signed log. A member's message does not match
// that rule.
func TestWakeOnMembershipEvent(t *testing.T) {
	dir := t.TempDir()
	a := scNode(t, "a.test")
	bHome := scHome(t, "b.test")
	setConfig(t, bHome, Config{Enabled: true, Rules: []Rule{{On: "system", Event: "joined"}}, Claude: fakeClaude(t, dir), Gather: "50ms", Cooldown: "0s"})
	b := openNode(t, bHome, daemonOpts)
	scSwarm(t, a, b)
	must[node.SendResult](t)(a.Send(context.Background(), node.SendArgs{Swarm: "team", To: "b.test", Body: "c.test joined, wake up", Wait: 5 * time.Second}))
	c := scNode(t, "c.test")
	inv := must[node.InviteInfo](t)(a.Invite(node.InviteArgs{Swarm: "team"}))
	must[node.SwarmInfo](t)(c.Join(context.Background(), inv.Token))
	want := `Swarm event in "team": joined (c.test). This comes from the signed membership log.`
	prompt := func() string {
		var all strings.Builder
		for _, r := range runs(t, dir) {
			b, _ := os.ReadFile(filepath.Join(r, "stdin"))
			all.Write(b)
		}
		return all.String()
	}
	scWait(t, "a wake for c's join", func() bool { return strings.Contains(prompt(), want) })
	if strings.Contains(prompt(), "wake up") {
		t.Fatalf("a peer's message woke the agent through a system rule:\n%s", prompt())
	}
}

// aliasExt stands in for an extension that knows another name of the
// agent (the GitHub layer knows its login): b.test goes by octo-b.
type aliasExt struct{ n *node.Node }

func (aliasExt) Close() error { return nil }

func (x aliasExt) Aliases() []string {
	if x.n.Domain() == "b.test" {
		return []string{"octo-b"}
	}
	return nil
}

func init() {
	node.Register(node.ExtensionInfo{Name: "test-alias", New: func(n *node.Node) (node.Extension, error) { return aliasExt{n}, nil }})
}

// TestWakeOnAlias: another name of the agent (node.Aliases) counts as a
// mention in an issue's relayed comment, and an issue assigned to it is
// the system event task_assigned; another login is neither.
func TestWakeOnAlias(t *testing.T) {
	dir := t.TempDir()
	a := scNode(t, "a.test")
	bHome := scHome(t, "b.test")
	setConfig(t, bHome, Config{Enabled: true, Rules: []Rule{{On: "mention"}, {On: "system", Event: "task_assigned"}},
		Claude: fakeClaude(t, dir), Gather: "50ms", Cooldown: "0s"})
	b := openNode(t, bHome, daemonOpts)
	scSwarm(t, a, b)
	issue := wire.Ref{Kind: "issue", Repo: "acme/app", Number: 3}
	assigned := issue
	assigned.Action, assigned.Login = "assigned", "OCTO-B"
	other := issue
	other.Action, other.Login = "assigned", "octo-c"
	ctx := context.Background()
	triggers := func() map[string]int {
		out := map[string]int{}
		for _, r := range must[[]Record](t)(wakeOf(t, b).history(0)) {
			out[r.Trigger] += len(r.Messages)
		}
		return out
	}
	for _, s := range []node.SendArgs{
		{Body: "GitHub acme/app#3: bob commented: @octo-c please look", Refs: []wire.Ref{issue}},
		{Body: "GitHub acme/app#3 assigned to octo-c", Refs: []wire.Ref{other}},
		{Body: "GitHub acme/app#3: bob commented: @octo-b please look", Refs: []wire.Ref{issue}},
	} {
		s.Swarm, s.Wait = "team", 5*time.Second
		must[node.SendResult](t)(a.Send(ctx, s))
	}
	scWait(t, "the mention woke b", func() bool { return triggers()["mention"] == 1 })
	must[node.SendResult](t)(a.Send(ctx, node.SendArgs{Swarm: "team", Body: "GitHub acme/app#3 assigned to octo-b", Refs: []wire.Ref{assigned}, Wait: 5 * time.Second}))
	scWait(t, "the assignment woke b", func() bool { return triggers()["system task_assigned"] == 1 })
	if got := triggers(); len(got) != 2 || got["mention"] != 1 {
		t.Fatalf("wakes by trigger %v: octo-c's mention and assignment must not wake b", got)
	}
}

// metricValue is the sample of a metric for one label value.
func metricValue(ms []node.Metric, name, label string) float64 {
	for _, m := range ms {
		if m.Name == name {
			for _, s := range m.Samples {
				if s.Label == label {
					return s.Value
				}
			}
		}
	}
	return -1
}
