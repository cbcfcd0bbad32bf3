package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/ops"
	"github.com/agent-swarm/agent-swarm/node/transport"
)

// cmdDemo runs three nodes on loopback in temporary homes through every
// operation, printing what each node saw, and fails if any step does not
// do what it should.
func cmdDemo(ctx context.Context, g globals, stdout, stderr io.Writer) error {
	// Said at once: the steps below take seconds, and a user who ran
	// `go run` has already waited for the compile.
	fmt.Fprintln(stdout, "demo: starting three nodes on loopback (alice, bob, carol) in a temporary directory; each step prints as it runs")
	g.logLevel = "error"
	log, closeLog, err := g.logger(stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	tmp, err := os.MkdirTemp("", "swarm-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	names := []string{"alice.swarm.test", "bob.swarm.test", "carol.swarm.test"}
	nodes := map[string]*node.Node{}
	for _, name := range names {
		port, err := freePort()
		if err != nil {
			return err
		}
		home := filepath.Join(tmp, strings.SplitN(name, ".", 2)[0])
		if _, err := node.Init(home, node.InitOptions{Domain: name, Listen: fmt.Sprintf("127.0.0.1:%d", port)}); err != nil {
			return err
		}
		cfg, _ := node.LoadConfig(home)
		cfg.Heartbeat, cfg.RetryMin, cfg.RetryMax, cfg.SyncEvery = node.Duration(500*time.Millisecond), node.Duration(50*time.Millisecond), node.Duration(time.Second), node.Duration(time.Second)
		if err := node.SaveConfig(home, cfg); err != nil {
			return err
		}
		n, err := node.Open(home, node.Options{Log: log, Serve: true})
		if err != nil {
			return err
		}
		defer n.Close()
		nodes[name] = n
		fmt.Fprintf(stdout, "started %-18s on %s\n", name, n.Addr())
	}
	alice, bob, carol := nodes[names[0]], nodes[names[1]], nodes[names[2]]
	d := demo{ctx: ctx, out: stdout}

	d.step(alice, "create", map[string]any{"name": "dev-team"})
	tok := d.result(alice, "invite", map[string]any{"swarm": "dev-team", "uses": "2"})["token"].(string)
	fmt.Fprintf(stdout, "    token %s…\n", tok[:32])
	d.step(bob, "join", map[string]any{"token": tok})
	d.step(carol, "join", map[string]any{"token": tok})
	d.expect("alice sees three members", func() bool { return d.count(alice, "members", map[string]any{"swarm": "dev-team"}) == 3 })
	d.expect("carol sees three members", func() bool { return d.count(carol, "members", map[string]any{"swarm": "dev-team"}) == 3 })

	d.step(alice, "send", map[string]any{"swarm": "dev-team", "body": "Hello, swarm!"})
	d.expect("bob and carol receive the broadcast", func() bool {
		return d.has(bob, "Hello, swarm!") && d.has(carol, "Hello, swarm!")
	})
	d.step(bob, "send", map[string]any{"swarm": "dev-team", "to": names[2], "body": "psst, carol: direct"})
	d.expect("carol receives bob's direct message", func() bool { return d.has(carol, "psst, carol: direct") })
	d.expect("alice does not see the direct message", func() bool { return !d.has(alice, "psst, carol: direct") })

	d.step(carol, "mute", map[string]any{"agent": names[1]})
	d.step(bob, "send", map[string]any{"swarm": "dev-team", "body": "bob again"})
	d.expect("alice receives bob again", func() bool { return d.has(alice, "bob again") })
	d.expect("carol stores bob's muted message but hides it", func() bool {
		return !d.has(carol, "bob again") && d.hasMuted(carol, "bob again")
	})
	d.step(carol, "unmute", map[string]any{"agent": names[1]})
	d.expect("carol sees it after unmute", func() bool { return d.has(carol, "bob again") })

	d.step(alice, "ping", map[string]any{"agent": names[1]})
	d.step(alice, "kick", map[string]any{"swarm": "dev-team", "agent": names[2]})
	d.expect("carol learns she was kicked", func() bool {
		var l []node.SwarmInfo
		d.decode(carol, "list", nil, &l)
		return len(l) == 1 && l[0].Left && l[0].Reason == "kick"
	})
	d.step(alice, "transfer", map[string]any{"swarm": "dev-team", "agent": names[1]})
	d.expect("bob is the master on bob's node", func() bool {
		var l []node.SwarmInfo
		d.decode(bob, "list", nil, &l)
		return len(l) == 1 && l[0].IsMaster
	})
	d.step(alice, "leave", map[string]any{"swarm": "dev-team"})
	d.expect("bob sees alice gone", func() bool { return d.count(bob, "members", map[string]any{"swarm": "dev-team"}) == 1 })

	for _, name := range names {
		fmt.Fprintf(stdout, "\n== %s saw:\n", name)
		r, _ := ops.Call(ctx, nodes[name], "inbox", map[string]any{"include_muted": true})
		b, _ := json.Marshal(r)
		text, _ := ops.Find("inbox").Text(b)
		fmt.Fprintln(stdout, text)
		r, _ = ops.Call(ctx, nodes[name], "list", nil)
		b, _ = json.Marshal(r)
		text, _ = ops.Find("list").Text(b)
		fmt.Fprintln(stdout, text)
	}
	if d.failed > 0 {
		return fmt.Errorf("demo: %d checks failed", d.failed)
	}
	fmt.Fprintln(stdout, "\ndemo: all checks passed")
	return nil
}

type demo struct {
	ctx    context.Context
	out    io.Writer
	failed int
}

func (d *demo) call(n *node.Node, op string, args map[string]any) (json.RawMessage, error) {
	r, err := ops.Call(d.ctx, n, op, args)
	if err != nil {
		return nil, err
	}
	return json.Marshal(r)
}

func (d *demo) step(n *node.Node, op string, args map[string]any) {
	b, err := d.call(n, op, args)
	if err != nil {
		d.failed++
		fmt.Fprintf(d.out, "FAIL %s %s: %v\n", n.Domain(), op, err)
		return
	}
	text, _ := ops.Find(op).Text(b)
	fmt.Fprintf(d.out, "%-18s %-9s %s\n", n.Domain(), op, strings.ReplaceAll(text, "\n", "; "))
}

func (d *demo) result(n *node.Node, op string, args map[string]any) map[string]any {
	var m map[string]any
	d.decode(n, op, args, &m)
	if m == nil {
		d.failed++
		return map[string]any{"token": strings.Repeat("?", 40)}
	}
	fmt.Fprintf(d.out, "%-18s %-9s ok\n", n.Domain(), op)
	return m
}

func (d *demo) decode(n *node.Node, op string, args map[string]any, v any) {
	b, err := d.call(n, op, args)
	if err == nil {
		_ = json.Unmarshal(b, v)
	}
}

func (d *demo) count(n *node.Node, op string, args map[string]any) int {
	var l []any
	d.decode(n, op, args, &l)
	return len(l)
}

func (d *demo) inbox(n *node.Node, muted bool) []node.InboxMessage {
	var l []node.InboxMessage
	d.decode(n, "inbox", map[string]any{"include_muted": muted}, &l)
	return l
}

func (d *demo) has(n *node.Node, body string) bool {
	c := 0
	for _, m := range d.inbox(n, false) {
		if m.Body == body {
			c++
		}
	}
	return c == 1
}

func (d *demo) hasMuted(n *node.Node, body string) bool {
	for _, m := range d.inbox(n, true) {
		if m.Body == body && m.Muted {
			return true
		}
	}
	return false
}

// expect polls a check for up to ten seconds.
func (d *demo) expect(what string, ok func() bool) {
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			d.failed++
			fmt.Fprintf(d.out, "  FAIL  %s\n", what)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintf(d.out, "  ok    %s\n", what)
}

// freePort finds a port free for UDP and TCP on loopback.
func freePort() (int, error) { return transport.FreePort("127.0.0.1") }
