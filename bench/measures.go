package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/transport"
	"github.com/rs/zerolog"
)

// throughputStreams is how many raw POSTs the baseline keeps in flight.
const throughputStreams = 64

// throughput measures sustained messages per second from A (in this
// process) to one `swarm serve` member: n sends without Wait, as fast as
// the loop goes, until the outbox is empty and every delivery is
// Delivered; beside n raw POSTs to one raw server with 64 streams in
// flight on one connection, and n JetStream publishes, 64 in flight, each
// synced before its ack. It also counts the CPU each side used: this
// process (the sender, or the raw and JetStream client) and the receiving
// process (member, raw server or JetStream server).
func (b *bencher) throughput(ctx context.Context, a *node.Node, to string, memberPID int, raw transport.Peer, rawPID int,
	js *jsPeer, client *transport.Client, body string, n int) ([]row, error) {
	fmt.Fprintf(b.stderr, "bench: throughput x%d (raw: %d streams; JetStream: %d publishes in flight; node: %d concurrent senders, no wait, then flush)\n",
		n, throughputStreams, throughputStreams, throughputStreams)
	self := os.Getpid()
	var next atomic.Int64
	var firstErr atomic.Value
	rawCPU, err := startCPU(self, rawPID)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < throughputStreams; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				if err := rawPOST(ctx, client, raw, body); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	rawDur := time.Since(t0)
	rawTicks, _, err := rawCPU.stop()
	if err != nil {
		return nil, err
	}
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	var jsRate float64
	var jsTicks []int64
	if js != nil {
		jsCPU, err := startCPU(js.clientPID, js.serverPID)
		if err != nil {
			return nil, err
		}
		if jsRate, err = js.rate(n, throughputStreams); err != nil {
			return nil, err
		}
		if jsTicks, _, err = jsCPU.stop(); err != nil {
			return nil, err
		}
	}

	// The node side gets the same concurrency as the raw side: 64
	// senders, whose durable commits share syncs (group commit).
	ids := make([]string, n)
	next.Store(0)
	nodeCPU, err := startCPU(self, memberPID)
	if err != nil {
		return nil, err
	}
	t1 := time.Now()
	for w := 0; w < throughputStreams; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				res, err := a.Send(ctx, node.SendArgs{Swarm: "bench", To: to, Body: body})
				if err != nil {
					firstErr.CompareAndSwap(nil, fmt.Errorf("throughput send %d: %w", i, err))
					return
				}
				ids[i] = res.ID
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, err
	}
	if left := a.Flush(ctx, 120*time.Second); left > 0 {
		return nil, fmt.Errorf("throughput: %d deliveries still queued after 120 s", left)
	}
	nodeDur := time.Since(t1)
	nodeTicks, _, err := nodeCPU.stop()
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		ds, err := a.Deliveries(id)
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			if d.Status != node.Delivered {
				return nil, fmt.Errorf("throughput: delivery of %s to %s: %s %s", id, d.Peer, d.Status, d.Reason)
			}
		}
	}
	rawRate, nodeRate := float64(n)/rawDur.Seconds(), float64(n)/nodeDur.Seconds()
	cpuRow := func(metric string, base, got int64) row {
		r := row{Metric: metric, Unit: "us", Baseline: usPer(base, n), Node: usPer(got, n), Target: "report"}
		if base > 0 {
			r.Ratio = float64(got) / float64(base)
		}
		return r
	}
	rows := []row{
		{Metric: fmt.Sprintf("throughput, %d direct msgs, %d in flight", n, throughputStreams), Unit: "msg/s",
			Baseline: rawRate, Node: nodeRate, Ratio: nodeRate / rawRate, Target: ">= 0.50x raw"},
	}
	if js != nil {
		rows = append(rows, row{Metric: "throughput (vs JetStream synced publish)", Unit: "msg/s",
			Baseline: jsRate, Node: nodeRate, Ratio: nodeRate / jsRate, Target: ">= 1.5x JetStream"})
	}
	rows = append(rows,
		cpuRow("CPU/msg, sender (vs raw client)", rawTicks[0], nodeTicks[0]),
		cpuRow("CPU/msg, receiver (vs raw server)", rawTicks[1], nodeTicks[1]))
	if js != nil {
		rows = append(rows, cpuRow("CPU/msg, receiver (vs JetStream server)", jsTicks[1], nodeTicks[1]))
	}
	return rows, nil
}

// fanOutBig measures fan-out to o.fanBig members, each a `swarm serve`
// process, against a raw POST to as many raw server processes at once.
// Its members and the extra raw servers are stopped when it returns.
func (b *bencher) fanOutBig(ctx context.Context, a *node.Node, raws []transport.Peer, client *transport.Client, body string, o sizes) ([]row, error) {
	fmt.Fprintf(b.stderr, "bench: starting %d members and %d raw servers for fan-out to %d\n", o.fanBig, max(o.fanBig-len(raws), 0), o.fanBig)
	var started []*exec.Cmd
	defer func() { b.stop(started...) }()
	raws = raws[:min(len(raws), o.fanBig):min(len(raws), o.fanBig)]
	for len(raws) < o.fanBig {
		p, cmd, err := b.rawPeerCmd()
		if err != nil {
			return nil, err
		}
		started = append(started, cmd)
		raws = append(raws, p)
	}
	const swarm = "bench-big"
	if _, err := a.Create(node.CreateArgs{Name: swarm}); err != nil {
		return nil, err
	}
	homes := make([]string, o.fanBig)
	for i := range homes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		home, err := b.nodeHome(fmt.Sprintf("big%d", i))
		if err != nil {
			return nil, err
		}
		if err := joinOffline(ctx, a, swarm, home); err != nil {
			return nil, err
		}
		homes[i] = home
	}
	for _, home := range homes {
		cmd, err := b.startServe(home)
		if err != nil {
			return nil, err
		}
		started = append(started, cmd)
	}
	for _, home := range homes {
		if err := b.waitReady(ctx, home); err != nil {
			return nil, err
		}
	}
	// The membership records queued while members were offline; then the
	// first heartbeats between members.
	if left := a.Flush(ctx, 60*time.Second); left > 0 {
		return nil, fmt.Errorf("fan-out to %d: %d membership deliveries still queued after 60 s", o.fanBig, left)
	}
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return nil, err
	}
	rawFan := func() error { return rawFanOut(ctx, client, raws, body) }
	nodeFan := func() error {
		res, err := a.Send(ctx, node.SendArgs{Swarm: swarm, Body: body, Wait: 30 * time.Second})
		if err != nil {
			return err
		}
		if len(res.Deliveries) != o.fanBig {
			return fmt.Errorf("fan-out to %d: %d deliveries", o.fanBig, len(res.Deliveries))
		}
		for _, d := range res.Deliveries {
			if d.Status != node.Delivered {
				return fmt.Errorf("fan-out delivery to %s: %s %s", d.Peer, d.Status, d.Reason)
			}
		}
		return nil
	}
	fmt.Fprintf(b.stderr, "bench: fan-out to %d x%d\n", o.fanBig, o.fanBigN)
	rawDs, nodeDs, err := pairs(o.fanBigN, 3, rawFan, nodeFan)
	if err != nil {
		return nil, err
	}
	rows := []row{
		quantileRow(fmt.Sprintf("fan-out to %d p50 (vs raw fan-out)", o.fanBig), rawDs, nodeDs, 0.50, "<= 1.5x"),
		quantileRow(fmt.Sprintf("fan-out to %d p99 (vs raw fan-out)", o.fanBig), rawDs, nodeDs, 0.99, ""),
	}
	// The largest member RSS: a daemon with o.fanBig live peers (each pair
	// of members has heartbeated over its own connections).
	var rawRSS, memberRSS float64
	for _, c := range started {
		v, err := rssMB(c.Process.Pid)
		if err != nil {
			return nil, err
		}
		if c.Args[1] == PeerCommand {
			rawRSS = max(rawRSS, v)
		} else {
			memberRSS = max(memberRSS, v)
		}
	}
	if rawRSS > 0 {
		rows = append(rows, row{Metric: fmt.Sprintf("RSS, max member of the %d-member swarm", o.fanBig+1), Unit: "MB",
			Baseline: rawRSS, Node: memberRSS, Ratio: memberRSS / rawRSS, Target: "(live peers; cf. 60 MB)"})
	}
	return rows, nil
}

// joinOffline joins the node of home (not running) to a swarm of master,
// through an invite, with the node opened for the join alone.
func joinOffline(ctx context.Context, master *node.Node, swarm, home string) error {
	inv, err := master.Invite(node.InviteArgs{Swarm: swarm})
	if err != nil {
		return err
	}
	m, err := node.Open(home, node.Options{Log: zerolog.Nop()})
	if err != nil {
		return err
	}
	_, err = m.Join(ctx, inv.Token)
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	return err
}

// idleWithPeers starts a `swarm serve` daemon that is the master of a
// swarm of peers members; the others are homes that joined and never run,
// so the daemon heartbeats (and retries its membership records) to
// offline peers. Its config is the default but for the join rate. It
// returns the daemon's PID and when it became ready.
func (b *bencher) idleWithPeers(ctx context.Context, peers int) (int, time.Time, error) {
	fmt.Fprintf(b.stderr, "bench: daemon in a swarm of %d (%d offline)\n", peers, peers-1)
	mk := func(name string) (string, error) {
		port, err := transport.FreePort("127.0.0.1")
		if err != nil {
			return "", err
		}
		home := filepath.Join(b.tmp, name)
		_, err = node.Init(home, node.InitOptions{Domain: name + ".bench", Listen: fmt.Sprintf("127.0.0.1:%d", port)})
		return home, err
	}
	home, err := mk("peers0")
	if err != nil {
		return 0, time.Time{}, err
	}
	cfg, err := node.LoadConfig(home)
	if err != nil {
		return 0, time.Time{}, err
	}
	cfg.JoinRate, cfg.JoinBurst = 1000, 1000
	if err := node.SaveConfig(home, cfg); err != nil {
		return 0, time.Time{}, err
	}
	m, err := node.Open(home, node.Options{Log: zerolog.Nop(), Serve: true})
	if err != nil {
		return 0, time.Time{}, err
	}
	err = func() error {
		if _, err := m.Create(node.CreateArgs{Name: "idle"}); err != nil {
			return err
		}
		for i := 1; i < peers; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			h, err := mk(fmt.Sprintf("peers%d", i))
			if err != nil {
				return err
			}
			if err := joinOffline(ctx, m, "idle", h); err != nil {
				return err
			}
		}
		return nil
	}()
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, time.Time{}, err
	}
	pid, err := b.serveNode(ctx, home)
	return pid, time.Now(), err
}

// readyTime measures `swarm serve` from process start to its ready file
// (runs times, after one unmeasured start that creates the store), beside
// the raw server process from start to the line with its address.
func (b *bencher) readyTime(ctx context.Context, runs int) (row, error) {
	fmt.Fprintf(b.stderr, "bench: swarm serve start to ready x%d\n", runs)
	home, err := b.nodeHome("ready")
	if err != nil {
		return row{}, err
	}
	dir, _, err := b.rawDir()
	if err != nil {
		return row{}, err
	}
	ready := filepath.Join(home, node.ReadyFile)
	var rawDs, nodeDs []time.Duration
	for i := 0; i <= runs; i++ {
		t0 := time.Now()
		cmd, out, err := b.start(PeerCommand, "--dir", dir)
		if err != nil {
			return row{}, err
		}
		if _, err := readLine(bufio.NewReader(out), 15*time.Second); err != nil {
			b.stop(cmd)
			return row{}, fmt.Errorf("raw peer did not start: %w", err)
		}
		d := time.Since(t0)
		b.stop(cmd)
		if i > 0 {
			rawDs = append(rawDs, d)
		}

		os.Remove(ready)
		t0 = time.Now()
		cmd, err = b.startServe(home)
		if err != nil {
			return row{}, err
		}
		for {
			if _, err := os.Stat(ready); err == nil {
				break
			}
			if time.Since(t0) > 15*time.Second || ctx.Err() != nil {
				b.stop(cmd)
				return row{}, fmt.Errorf("swarm serve did not become ready")
			}
			time.Sleep(time.Millisecond)
		}
		d = time.Since(t0)
		b.stop(cmd)
		if i > 0 {
			nodeDs = append(nodeDs, d)
		}
	}
	r := quantileRow(fmt.Sprintf("swarm serve start to ready p50 (of %d)", runs), rawDs, nodeDs, 0.5, "node <= 150 ms")
	return r, nil
}
