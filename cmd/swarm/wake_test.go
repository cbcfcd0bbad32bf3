package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/rs/zerolog"
)

// cli runs the swarm command line in this process and fails on an error.
func cli(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(args, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("swarm %v: exit %d: %s", args, code, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// TestMCPInProcessRunsNoWakes: `swarm mcp` with no daemon runs the node in
// its own process, serving peers; a direct message that matches an
// enabled wake rule reaches it, and no claude starts (wakes are the
// daemon's alone). The MCP tool wake_rules says no daemon runs them.
func TestMCPInProcessRunsNoWakes(t *testing.T) {
	tmp := t.TempDir()
	aHome, bHome := filepath.Join(tmp, "a"), filepath.Join(tmp, "b")
	for _, h := range []struct{ home, domain string }{{aHome, "a.test"}, {bHome, "b.test"}} {
		p, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		cli(t, "--home", h.home, "init", "--domain", h.domain, "--listen", fmt.Sprintf("127.0.0.1:%d", p))
	}
	ran := filepath.Join(tmp, "claude-ran")
	fake := filepath.Join(tmp, "claude")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\ntouch "+ran+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cli(t, "--home", bHome, "wake", "add", "direct")
	cli(t, "--home", bHome, "wake", "set", "--claude", fake, "--gather", "50ms", "--cooldown", "0s")
	cli(t, "--home", bHome, "wake", "enable")

	a, err := node.Open(aHome, node.Options{Serve: true, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if _, err := a.Create(node.CreateArgs{Name: "team"}); err != nil {
		t.Fatal(err)
	}
	inv, err := a.Invite(node.InviteArgs{Swarm: "team"})
	if err != nil {
		t.Fatal(err)
	}
	cli(t, "--home", bHome, "join", "--token", inv.Token)

	// swarm mcp for b, no daemon: the node runs in this process.
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- run([]string{"--home", bHome, "--log-level", "error", "mcp"}, inR, outW, &stderr)
		outW.Close()
	}()
	t.Cleanup(func() {
		inW.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("swarm mcp did not end when its stdin closed")
		}
	})
	replies := make(chan map[string]any, 8)
	go func() {
		sc := bufio.NewScanner(outR)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["id"] != nil {
				replies <- m
			}
		}
		close(replies)
	}()
	call := func(id int, method string, params map[string]any) map[string]any {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
		if _, err := inW.Write(append(b, '\n')); err != nil {
			t.Fatal(err)
		}
		select {
		case m, ok := <-replies:
			if !ok {
				t.Fatalf("swarm mcp ended: %s", stderr.String())
			}
			return m
		case <-time.After(15 * time.Second):
			t.Fatalf("no answer to %s: %s", method, stderr.String())
		}
		return nil
	}
	call(1, "initialize", map[string]any{"protocolVersion": "2025-06-18", "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "test", "version": "1"}})
	inW.Write([]byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n"))
	rules := call(2, "tools/call", map[string]any{"name": "swarm_wake_rules", "arguments": map[string]any{}})
	sc, _ := rules["result"].(map[string]any)["structuredContent"].(map[string]any)
	if sc["daemon"] != false || sc["enabled"] != true {
		t.Fatalf("wake_rules through the in-process swarm mcp: want enabled (or this test proves nothing) and no daemon: %v", rules)
	}

	if _, err := a.Send(context.Background(), node.SendArgs{Swarm: "team", To: "b.test", Body: "wake up, b", Wait: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	res, _ := json.Marshal(call(3, "tools/call", map[string]any{"name": "swarm_inbox", "arguments": map[string]any{"unread": true}}))
	if !strings.Contains(string(res), "wake up, b") {
		t.Fatalf("the message did not reach the in-process node: %s", res)
	}
	time.Sleep(time.Second) // twenty times the gather
	if _, err := os.Stat(ran); err == nil {
		t.Fatal("the in-process swarm mcp started a wake")
	}
	if _, err := os.Stat(filepath.Join(bHome, "wake-mcp.json")); err == nil {
		t.Error("the in-process swarm mcp wrote the wake MCP config")
	}
}
