package mcp_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	swarmmcp "github.com/agent-swarm/agent-swarm/mcp"
	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/ops"
	"github.com/agent-swarm/agent-swarm/node/transport"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/mcptest"
	"github.com/rs/zerolog"
)

var update = flag.Bool("update", false, "rewrite testdata/tools.json from the current tool definitions")

// TestToolSchemasSnapshot fails when a tool's name, description, schema or
// annotations change without the snapshot being reviewed (go test -update).
func TestToolSchemasSnapshot(t *testing.T) {
	var tools []mcp.Tool
	for _, op := range ops.All() {
		if !op.Local {
			tools = append(tools, swarmmcp.Tool(op))
		}
	}
	got, err := json.MarshalIndent(tools, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "tools.json")
	if *update {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./mcp -update to create it)", err)
	}
	if strings.TrimSpace(string(want)) != strings.TrimSpace(string(got)) {
		t.Errorf("tool definitions changed; review and run `go test ./mcp -update`.\n got: %s", got)
	}
}

func newNode(t *testing.T, domain string) *node.Node {
	t.Helper()
	port, err := transport.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if _, err := node.Init(home, node.InitOptions{Domain: domain, Listen: fmt.Sprintf("127.0.0.1:%d", port)}); err != nil {
		t.Fatal(err)
	}
	cfg, _ := node.LoadConfig(home)
	cfg.RetryMin, cfg.RetryMax, cfg.Heartbeat = node.Duration(20*time.Millisecond), node.Duration(300*time.Millisecond), node.Duration(200*time.Millisecond)
	// Many joins from loopback in one test: the master's invite checks
	// must be reached, not its join rate limit.
	cfg.JoinRate, cfg.JoinBurst = 100, 100
	if err := node.SaveConfig(home, cfg); err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(home, node.Options{Serve: true, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func mcpClient(t *testing.T, n *node.Node) *client.Client {
	t.Helper()
	srv, err := mcptest.NewServer(t, swarmmcp.Tools(swarmmcp.NodeCaller{Node: n})...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv.Client()
}

func call(t *testing.T, c *client.Client, tool string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("%s: protocol error: %v", tool, err)
	}
	return res
}

func text(r *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range r.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func ok(t *testing.T, c *client.Client, tool string, args map[string]any) map[string]any {
	t.Helper()
	r := call(t, c, tool, args)
	if r.IsError {
		t.Fatalf("%s(%v): tool error: %s", tool, args, text(r))
	}
	m, isMap := r.StructuredContent.(map[string]any)
	if !isMap {
		t.Fatalf("%s: structured content is %T, want an object", tool, r.StructuredContent)
	}
	return m
}

func toolErr(t *testing.T, c *client.Client, tool string, args map[string]any, want string) {
	t.Helper()
	r := call(t, c, tool, args)
	if !r.IsError {
		t.Fatalf("%s(%v): want a tool error containing %q, got success: %s", tool, args, want, text(r))
	}
	if !strings.Contains(text(r), want) {
		t.Fatalf("%s(%v): error %q does not mention %q", tool, args, text(r), want)
	}
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEveryTool drives every swarm_* tool through mcp-go's client against
// real nodes on 127.0.0.1, including the errors a model must be able to
// read and correct.
func TestEveryTool(t *testing.T) {
	a, b := newNode(t, "a.test"), newNode(t, "b.test")
	ca, cb := mcpClient(t, a), mcpClient(t, b)

	tools, err := ca.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, op := range ops.All() {
		if op.Local {
			if slices.ContainsFunc(tools.Tools, func(tl mcp.Tool) bool { return tl.Name == "swarm_"+op.Name }) {
				t.Fatalf("%s is a local operation (it changes what the model may do) but is offered as a tool", op.Name)
			}
			continue
		}
		want++
	}
	if len(tools.Tools) != want {
		t.Fatalf("listed %d tools, want one per non-local operation (%d)", len(tools.Tools), want)
	}

	st := ok(t, ca, "swarm_status", nil)
	if st["domain"] != "a.test" {
		t.Fatalf("status domain = %v", st["domain"])
	}
	ok(t, ca, "swarm_create", map[string]any{"name": "dev-team"})
	inv := ok(t, ca, "swarm_invite", map[string]any{"swarm": "dev-team", "uses": 1})
	tok := inv["token"].(string)
	ok(t, cb, "swarm_join", map[string]any{"token": tok})
	toolErr(t, cb, "swarm_join", map[string]any{"token": tok}, "already a member")

	if l := ok(t, cb, "swarm_list", nil)["items"].([]any); len(l) != 1 {
		t.Fatalf("b lists %d swarms", len(l))
	}
	eventually(t, "a sees two members", func() bool {
		return len(ok(t, ca, "swarm_members", map[string]any{"swarm": "dev-team"})["items"].([]any)) == 2
	})

	sent := ok(t, ca, "swarm_send", map[string]any{"swarm": "dev-team", "body": "hello from a", "priority": "high", "wait": "5s"})
	id := sent["id"].(string)
	d := ok(t, ca, "swarm_delivery", map[string]any{"id": id})["items"].([]any)
	if d[0].(map[string]any)["status"] != "delivered" {
		t.Fatalf("delivery = %v", d)
	}
	inbox := ok(t, cb, "swarm_inbox", map[string]any{"unread": true})["items"].([]any)
	if len(inbox) != 1 || inbox[0].(map[string]any)["body"] != "hello from a" || inbox[0].(map[string]any)["from"] != "a.test" {
		t.Fatalf("b inbox = %v", inbox)
	}
	ok(t, cb, "swarm_read", map[string]any{"ids": []any{id}})
	if n := len(ok(t, cb, "swarm_inbox", map[string]any{"unread": true})["items"].([]any)); n != 0 {
		t.Fatalf("after read, %d unread", n)
	}

	// wait returns the next message.
	done := make(chan map[string]any, 1)
	go func() { done <- ok(t, cb, "swarm_wait", map[string]any{"timeout": "10s"}) }()
	time.Sleep(100 * time.Millisecond)
	ok(t, ca, "swarm_send", map[string]any{"swarm": "dev-team", "to": "b.test", "body": "direct"})
	if got := (<-done)["items"].([]any); len(got) != 1 || got[0].(map[string]any)["body"] != "direct" {
		t.Fatalf("wait returned %v", got)
	}

	ok(t, cb, "swarm_mute", map[string]any{"agent": "a.test", "for": "1h"})
	ok(t, ca, "swarm_send", map[string]any{"swarm": "dev-team", "body": "muted one", "wait": "5s"})
	all := ok(t, cb, "swarm_inbox", map[string]any{"include_muted": true})["items"].([]any)
	vis := ok(t, cb, "swarm_inbox", nil)["items"].([]any)
	if len(all) != 3 || len(vis) != 0 {
		t.Fatalf("muted: %d stored, %d visible; want 3 and 0", len(all), len(vis))
	}
	ok(t, cb, "swarm_unmute", map[string]any{"agent": "a.test"})
	if n := len(ok(t, cb, "swarm_inbox", nil)["items"].([]any)); n != 3 {
		t.Fatalf("after unmute %d visible", n)
	}

	p := ok(t, ca, "swarm_ping", map[string]any{"agent": "b.test"})
	if p["rtt_ms"].(float64) <= 0 {
		t.Fatalf("ping = %v", p)
	}
	ok(t, cb, "swarm_presence", map[string]any{"state": "busy", "status": "reviewing"})

	// Mistakes the model can read and correct.
	toolErr(t, cb, "swarm_kick", map[string]any{"swarm": "dev-team", "agent": "a.test"}, "only the master")
	toolErr(t, ca, "swarm_send", map[string]any{"swarm": "nope", "body": "x"}, "unknown swarm")
	toolErr(t, ca, "swarm_send", map[string]any{"swarm": "dev-team"}, "missing required argument \"body\"")
	toolErr(t, ca, "swarm_send", map[string]any{"swarm": "dev-team", "body": "x", "priority": "extreme"}, "not one of")
	toolErr(t, ca, "swarm_invite", map[string]any{"swarm": "dev-team", "ttl": "forever"}, "duration")
	toolErr(t, ca, "swarm_invite", map[string]any{"swarm": "dev-team", "bogus": 1}, "unknown argument bogus")
	toolErr(t, ca, "swarm_leave", map[string]any{"swarm": "dev-team"}, "transfer the master role first")
	toolErr(t, ca, "swarm_invite_revoke", map[string]any{"invite": "not-an-id"}, "invalid id")
	toolErr(t, cb, "swarm_join", map[string]any{"token": "garbage"}, "not an invite token")

	second := ok(t, ca, "swarm_invite", map[string]any{"swarm": "dev-team"})
	ok(t, ca, "swarm_invite_revoke", map[string]any{"invite": second["id"]})

	ok(t, ca, "swarm_transfer", map[string]any{"swarm": "dev-team", "agent": "b.test"})
	eventually(t, "b becomes master", func() bool {
		return ok(t, cb, "swarm_list", nil)["items"].([]any)[0].(map[string]any)["is_master"] == true
	})
	ok(t, ca, "swarm_leave", map[string]any{"swarm": "dev-team"})
	eventually(t, "b sees a gone", func() bool {
		return len(ok(t, cb, "swarm_members", map[string]any{"swarm": "dev-team"})["items"].([]any)) == 1
	})
	c := newNode(t, "c.test")
	cc := mcpClient(t, c)
	inv3 := ok(t, cb, "swarm_invite", map[string]any{"swarm": "dev-team"})
	ok(t, cc, "swarm_join", map[string]any{"token": inv3["token"]})
	ok(t, cb, "swarm_kick", map[string]any{"swarm": "dev-team", "agent": "c.test"})
	eventually(t, "c learns it was kicked", func() bool {
		l := ok(t, cc, "swarm_list", nil)["items"].([]any)
		return l[0].(map[string]any)["reason"] == "kick"
	})
}
