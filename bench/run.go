package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/transport"
	"github.com/mark3labs/mcp-go/client"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/rs/zerolog"
)

func (b *bencher) run(ctx context.Context, o sizes) ([]row, error) {
	body := strings.Repeat("x", 512)
	log := zerolog.Nop()
	client := transport.NewClient(transport.ClientOptions{})
	defer client.Close()

	// Baseline peers: raw HTTP/3 servers, each its own process.
	raws := make([]transport.Peer, o.fanout)
	var rawPID int
	for i := range raws {
		p, pid, err := b.rawPeer()
		if err != nil {
			return nil, err
		}
		raws[i] = p
		if i == 0 {
			rawPID = pid
		}
	}
	rawPost := func(p transport.Peer) error { return rawPOST(ctx, client, p, body) }

	// The second baseline: JetStream, a synced publish acked by a broker
	// process (one durable hop where the node makes two).
	// Without it (no source tree or Go toolchain here, or its build
	// failed) the bench still runs and says which rows are missing.
	js, err := b.jetStreamPeer(ctx, len(body))
	if err != nil {
		fmt.Fprintf(b.stderr, "bench: no JetStream baseline, its rows are left out: %v\n", err)
		js = nil
	} else {
		defer js.close()
	}

	// An idle daemon that never receives anything: the RSS target.
	idleHome, err := b.nodeHome("idle")
	if err != nil {
		return nil, err
	}
	idlePID, err := b.serveNode(ctx, idleHome)
	if err != nil {
		return nil, err
	}

	// The node side: A in this process, members as `swarm serve` children.
	aHome, err := b.nodeHome("a")
	if err != nil {
		return nil, err
	}
	a, err := node.Open(aHome, node.Options{Log: log, Serve: true})
	if err != nil {
		return nil, err
	}
	defer a.Close()
	if _, err := a.Create(node.CreateArgs{Name: "bench"}); err != nil {
		return nil, err
	}
	var memberPIDs []int
	var members []string
	for i := 0; i < o.fanout; i++ {
		home, err := b.nodeHome(fmt.Sprintf("m%d", i))
		if err != nil {
			return nil, err
		}
		inv, err := a.Invite(node.InviteArgs{Swarm: "bench"})
		if err != nil {
			return nil, err
		}
		m, err := node.Open(home, node.Options{Log: log})
		if err != nil {
			return nil, err
		}
		_, err = m.Join(ctx, inv.Token)
		m.Close()
		if err != nil {
			return nil, err
		}
		pid, err := b.serveNode(ctx, home)
		if err != nil {
			return nil, err
		}
		memberPIDs = append(memberPIDs, pid)
		members = append(members, fmt.Sprintf("m%d.bench", i))
	}
	send := func(to string) error {
		res, err := a.Send(ctx, node.SendArgs{Swarm: "bench", To: to, Body: body, Wait: 10 * time.Second})
		if err != nil {
			return err
		}
		for _, d := range res.Deliveries {
			if d.Status != node.Delivered {
				return fmt.Errorf("delivery to %s: %s %s", d.Peer, d.Status, d.Reason)
			}
		}
		return nil
	}

	fmt.Fprintln(b.stderr, "bench: warming up")
	for i := 0; i < min(200, o.n); i++ {
		if err := rawPost(raws[0]); err != nil {
			return nil, err
		}
		if js != nil {
			if _, err := js.publish(); err != nil {
				return nil, err
			}
		}
		if err := send(members[0]); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(b.stderr, "bench: round trips x%d (raw, JetStream, node interleaved)\n", o.n)
	raw, jsDs, direct := make([]time.Duration, 0, o.n), make([]time.Duration, 0, o.n), make([]time.Duration, 0, o.n)
	for i := 0; i < o.n; i++ {
		t0 := time.Now()
		if err := rawPost(raws[0]); err != nil {
			return nil, err
		}
		t1 := time.Now()
		if js != nil {
			jd, err := js.publish()
			if err != nil {
				return nil, err
			}
			jsDs = append(jsDs, jd)
		}
		t2 := time.Now()
		if err := send(members[0]); err != nil {
			return nil, err
		}
		raw, direct = append(raw, t1.Sub(t0)), append(direct, time.Since(t2))
	}
	fmt.Fprintf(b.stderr, "bench: fan-out to %d x%d\n", o.fanout, o.fanN)
	rawFan, nodeFan := make([]time.Duration, 0, o.fanN), make([]time.Duration, 0, o.fanN)
	for i := 0; i < o.fanN; i++ {
		t0 := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, len(raws))
		for _, p := range raws {
			wg.Add(1)
			go func(p transport.Peer) { defer wg.Done(); errs <- rawPost(p) }(p)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				return nil, err
			}
		}
		t1 := time.Now()
		if err := send(""); err != nil {
			return nil, err
		}
		rawFan, nodeFan = append(rawFan, t1.Sub(t0)), append(nodeFan, time.Since(t1))
	}
	tput, err := b.throughput(ctx, a, members[0], memberPIDs[0], raws[0], rawPID, js, client, body, o.tput)
	if err != nil {
		return nil, err
	}
	big, err := b.fanOutBig(ctx, a, raws, client, body, o)
	if err != nil {
		return nil, err
	}
	// The daemon in a swarm of idlePeers members runs idle from here on.
	peersPID, peersReady, err := b.idleWithPeers(ctx, o.idlePeers)
	if err != nil {
		return nil, err
	}
	faces, err := b.faces(ctx, o)
	if err != nil {
		return nil, err
	}
	ready, err := b.readyTime(ctx, o.readyRuns)
	if err != nil {
		return nil, err
	}
	// Let the member settle into idle, and the daemon with peers run idleFor.
	if err := sleepCtx(ctx, max(3*time.Second, o.idleFor-time.Since(peersReady))); err != nil {
		return nil, err
	}
	// Nothing is sent from here on: count idle processes' CPU, all over
	// the same window, beside the raw server's.
	fmt.Fprintf(b.stderr, "bench: idle CPU over %s\n", o.idleCPU)
	live := memberPIDs[min(1, len(memberPIDs)-1)]
	idle, err := idleCPU(ctx, o.idleCPU, rawPID, []idleProc{
		{metric: "idle CPU, no swarms (vs raw server)", target: "<= 0.05%", pid: idlePID},
		{metric: fmt.Sprintf("idle CPU, swarm of %d live peers", o.fanout), target: "<= 0.2%", pid: live},
		{metric: fmt.Sprintf("idle CPU, %d-member swarm, %d offline", o.idlePeers, o.idlePeers-1), target: "report", pid: peersPID},
	})
	if err != nil {
		return nil, err
	}
	rows := []row{
		quantileRow("direct message p50 (vs raw POST)", raw, direct, 0.50, "<= 2.0x"),
		quantileRow("direct message p99 (vs raw POST)", raw, direct, 0.99, "<= 3.0x"),
	}
	if js != nil {
		rows = append(rows,
			quantileRow("direct message p50 (vs JetStream publish)", jsDs, direct, 0.50, "<= 1.5x"),
			quantileRow("direct message p99 (vs JetStream publish)", jsDs, direct, 0.99, "report"),
			quantileRow("JetStream synced publish p50 (vs raw POST)", raw, jsDs, 0.50, "report (baseline)"))
	}
	rows = append(rows,
		quantileRow(fmt.Sprintf("fan-out to %d p50 (vs raw fan-out)", o.fanout), rawFan, nodeFan, 0.50, "<= 1.5x"),
		quantileRow(fmt.Sprintf("fan-out to %d p99 (vs raw fan-out)", o.fanout), rawFan, nodeFan, 0.99, ""))
	rows = append(rows, big...)
	rows = append(rows, tput...)
	rows = append(rows, faces...)
	rows = append(rows, ready)
	rawRSS, err1 := rssMB(rawPID)
	idleRSS, err2 := rssMB(idlePID)
	loadedRSS, err3 := rssMB(memberPIDs[0])
	peersRSS, err4 := rssMB(peersPID)
	if err1 == nil && err2 == nil && err3 == nil && err4 == nil {
		rows = append(rows,
			row{Metric: "idle daemon RSS (vs raw server)", Unit: "MB", Baseline: rawRSS, Node: idleRSS, Ratio: idleRSS / rawRSS, Target: "node <= 30 MB"},
			row{Metric: fmt.Sprintf("idle RSS, %d-member swarm, after %s", o.idlePeers, time.Since(peersReady).Round(time.Second)),
				Unit: "MB", Baseline: rawRSS, Node: peersRSS, Ratio: peersRSS / rawRSS, Target: "node <= 60 MB"},
			row{Metric: fmt.Sprintf("RSS after %d messages, then idle", o.n+min(200, o.n)+o.fanN+o.tput), Unit: "MB", Baseline: rawRSS, Node: loadedRSS, Ratio: loadedRSS / rawRSS, Target: ""})
	} else {
		return nil, fmt.Errorf("reading RSS: %w", errors.Join(err1, err2, err3, err4))
	}
	rows = append(rows, idle...)
	if o.s100 > 0 {
		s100, err := b.swarm100(ctx, o.s100, o.s100N)
		if err != nil {
			return nil, err
		}
		rows = append(rows, s100...)
	}
	return rows, nil
}

// faces measures a send through the user-facing faces against a daemon:
// swarm_send over `swarm mcp` on stdio (from the tool call to the message
// stored in the daemon's outbox), beside the CLI's own `swarm send` (a
// whole process, wall time), both against the same daemon, whose peer is
// a second daemon.
func (b *bencher) faces(ctx context.Context, o sizes) ([]row, error) {
	dHome, err := b.nodeHome("face")
	if err != nil {
		return nil, err
	}
	pHome, err := b.nodeHome("facepeer")
	if err != nil {
		return nil, err
	}
	if _, err := b.serveNode(ctx, dHome); err != nil {
		return nil, err
	}
	run := func(home string, args ...string) (string, error) {
		out, err := b.command(ctx, append([]string{"--home", home}, args...)...).Output()
		return strings.TrimSpace(string(out)), err
	}
	if _, err := run(dHome, "create", "--name", "faces"); err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	tok, err := run(dHome, "invite", "--swarm", "faces")
	if err != nil {
		return nil, fmt.Errorf("invite: %w", err)
	}
	if _, err := run(pHome, "join", "--token", tok); err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	if _, err := b.serveNode(ctx, pHome); err != nil {
		return nil, err
	}
	c, err := client.NewStdioMCPClient(b.self, []string{noDaemon}, "--home", dHome, "--log-level", "error", "mcp")
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.Initialize(ctx, mcpgo.InitializeRequest{Params: mcpgo.InitializeParams{ProtocolVersion: "2025-11-25",
		ClientInfo: mcpgo.Implementation{Name: "swarm-bench", Version: "1"}}}); err != nil {
		return nil, err
	}
	body := strings.Repeat("x", 512)
	n := max(o.n/2, 10)
	fmt.Fprintf(b.stderr, "bench: swarm_send over MCP stdio x%d, swarm send CLI x%d\n", n, max(n/10, 5))
	viaMCP := make([]time.Duration, 0, n)
	for i := 0; i < n+20; i++ {
		req := mcpgo.CallToolRequest{}
		req.Params.Name = "swarm_send"
		req.Params.Arguments = map[string]any{"swarm": "faces", "body": body}
		t0 := time.Now()
		res, err := c.CallTool(ctx, req)
		d := time.Since(t0)
		if err != nil || res.IsError {
			return nil, fmt.Errorf("swarm_send over MCP: %v %v", err, res)
		}
		if i >= 20 {
			viaMCP = append(viaMCP, d)
		}
	}
	viaCLI := make([]time.Duration, 0, n/10)
	for i := 0; i < max(n/10, 5); i++ {
		t0 := time.Now()
		if _, err := run(dHome, "send", "--swarm", "faces", body); err != nil {
			return nil, fmt.Errorf("swarm send: %w", err)
		}
		viaCLI = append(viaCLI, time.Since(t0))
	}
	return []row{
		{Metric: "swarm_send via MCP stdio p50 (vs CLI)", Unit: "ms", Baseline: quantile(viaCLI, 0.5), Node: quantile(viaMCP, 0.5),
			Ratio: quantile(viaMCP, 0.5) / quantile(viaCLI, 0.5), Target: "MCP <= 3 ms"},
		{Metric: "swarm send CLI wall p50", Unit: "ms", Baseline: quantile(viaCLI, 0.5), Node: quantile(viaCLI, 0.5), Ratio: 1, Target: "<= 30 ms"},
	}, nil
}

// pairs times raw and node alternately, warm rounds first (not kept), so
// both sides see the same machine state.
func pairs(rounds, warm int, raw, node func() error) (rawDs, nodeDs []time.Duration, err error) {
	for i := 0; i < rounds+warm; i++ {
		t0 := time.Now()
		if err := raw(); err != nil {
			return nil, nil, err
		}
		t1 := time.Now()
		if err := node(); err != nil {
			return nil, nil, err
		}
		if i >= warm {
			rawDs, nodeDs = append(rawDs, t1.Sub(t0)), append(nodeDs, time.Since(t1))
		}
	}
	return rawDs, nodeDs, nil
}
