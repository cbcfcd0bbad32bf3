package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/transport"
	"github.com/rs/zerolog"
)

// Timings of the in-process large swarm: fast retries and joins as in the
// node's scenario tests; heartbeat and anti-entropy periods long enough
// that size*(size-1) pings do not swamp two cores (at the scenario tests'
// 200 ms, 100 nodes would send ~50000 pings a second).
const (
	s100Heartbeat = 15 * time.Second
	s100SyncEvery = 60 * time.Second
)

// swarm100 opens size nodes in this process, each serving on its own
// port, all in one swarm, and measures (b) the fan-out of one broadcast
// with Wait to the other size-1, beside a raw POST to as many in-process
// raw servers, and (a) how long after a join returns every member lists
// the new member. It reports the memory of this process per node.
func (b *bencher) swarm100(ctx context.Context, size, rounds int) ([]row, error) {
	fmt.Fprintf(b.stderr, "bench: %d-member swarm in this process\n", size)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	body := strings.Repeat("x", 512)
	rss0 := settledRSS()

	// Baseline: size-1 raw servers in this process.
	dir, pin, err := b.rawDir()
	if err != nil {
		return nil, err
	}
	certs, err := transport.LoadCerts(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), zerolog.Nop())
	if err != nil {
		return nil, err
	}
	h := rawHandler()
	var raws []transport.Peer
	var servers []*transport.Server
	defer func() {
		for _, s := range servers {
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = s.Shutdown(sctx)
			cancel()
		}
	}()
	for i := 0; i < size-1; i++ {
		s, err := transport.Listen("127.0.0.1:0", h, transport.ListenOptions{Certs: certs, Log: zerolog.Nop()})
		if err != nil {
			return nil, err
		}
		servers = append(servers, s)
		raws = append(raws, transport.Peer{Addr: s.Addr(), Pin: pin})
	}
	client := transport.NewClient(transport.ClientOptions{})
	defer client.Close()
	rawFan := func() error { return rawFanOut(ctx, client, raws, body) }
	if err := rawFan(); err != nil { // connect
		return nil, err
	}
	rss1 := settledRSS()

	// The swarm: node 0 is the master; the others join one by one.
	var nodes []*node.Node
	defer func() {
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Add(1)
			go func() { defer wg.Done(); n.Close() }()
		}
		wg.Wait()
	}()
	open := func(i int) (*node.Node, error) {
		home, err := b.s100Home(fmt.Sprintf("s%d", i))
		if err != nil {
			return nil, err
		}
		n, err := node.Open(home, node.Options{Log: zerolog.Nop(), Serve: true})
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
		return n, nil
	}
	const swarm = "s100"
	master, err := open(0)
	if err != nil {
		return nil, err
	}
	if _, err := master.Create(node.CreateArgs{Name: swarm}); err != nil {
		return nil, err
	}
	join := func(i int) (*node.Node, error) {
		n, err := open(i)
		if err != nil {
			return nil, err
		}
		inv, err := master.Invite(node.InviteArgs{Swarm: swarm})
		if err != nil {
			return nil, err
		}
		_, err = n.Join(ctx, inv.Token)
		return n, err
	}
	t0 := time.Now()
	for i := 1; i < size; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if _, err := join(i); err != nil {
			return nil, fmt.Errorf("node %d of %d: join: %w", i, size, err)
		}
		if (i+1)%10 == 0 {
			fmt.Fprintf(b.stderr, "bench: %d nodes joined, %s\n", i+1, time.Since(t0).Round(time.Millisecond))
		}
	}
	// Every member lists every other before anything is measured.
	if err := converged(ctx, nodes, swarm, nodes[len(nodes)-1].Domain(), 120*time.Second); err != nil {
		return nil, err
	}
	fmt.Fprintf(b.stderr, "bench: %d members converged in %s\n", size, time.Since(t0).Round(time.Millisecond))
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return nil, err
	}

	nodeFan := func() error {
		res, err := master.Send(ctx, node.SendArgs{Swarm: swarm, Body: body, Wait: 60 * time.Second})
		if err != nil {
			return err
		}
		if len(res.Deliveries) != size-1 {
			return fmt.Errorf("broadcast to %d: %d deliveries", size-1, len(res.Deliveries))
		}
		for _, d := range res.Deliveries {
			if d.Status != node.Delivered {
				return fmt.Errorf("broadcast delivery to %s: %s %s", d.Peer, d.Status, d.Reason)
			}
		}
		return nil
	}
	fmt.Fprintf(b.stderr, "bench: broadcast to %d x%d\n", size-1, rounds)
	rawDs, nodeDs, err := pairs(rounds, 2, rawFan, nodeFan)
	if err != nil {
		return nil, err
	}
	rss2 := settledRSS()

	// One more join: from Join returning until every member lists it.
	fmt.Fprintf(b.stderr, "bench: join of member %d\n", size+1)
	late, err := join(size)
	if err != nil {
		return nil, fmt.Errorf("late join: %w", err)
	}
	t1 := time.Now()
	if err := converged(ctx, nodes, swarm, late.Domain(), 60*time.Second); err != nil {
		return nil, err
	}
	conv := time.Since(t1)

	perNode := (rss2 - rss1) / float64(size)
	return []row{
		quantileRow(fmt.Sprintf("%d-swarm: broadcast to %d p50 (in-proc)", size, size-1), rawDs, nodeDs, 0.50, "report (no target)"),
		{Metric: fmt.Sprintf("%d-swarm: all list a new member after", size), Unit: "ms", Node: float64(conv.Microseconds()) / 1000,
			Target: "report (no baseline, no target)"},
		{Metric: fmt.Sprintf("%d-swarm: RSS per in-process node", size), Unit: "MB", Node: perNode,
			Target: fmt.Sprintf("report (process %.0f MB; %d raw servers %.1f MB)", rss2, size-1, rss1-rss0)},
	}, nil
}

// s100Home makes a home for the in-process swarm.
func (b *bencher) s100Home(name string) (string, error) {
	home, err := b.nodeHome(name)
	if err != nil {
		return "", err
	}
	cfg, err := node.LoadConfig(home)
	if err != nil {
		return "", err
	}
	// Slower timers than the other rows: 100 nodes in one process would
	// otherwise spend the machine on heartbeats.
	cfg.RetryMax = node.Duration(300 * time.Millisecond)
	cfg.Heartbeat, cfg.SyncEvery = node.Duration(s100Heartbeat), node.Duration(s100SyncEvery)
	return home, node.SaveConfig(home, cfg)
}

// converged waits until every node lists member in swarm (polling each
// node until it does), or fails after limit.
func converged(ctx context.Context, nodes []*node.Node, swarm, member string, limit time.Duration) error {
	left := slices.Clone(nodes)
	deadline := time.Now().Add(limit)
	for len(left) > 0 {
		next := left[:0]
		for _, n := range left {
			ms, err := n.Members(swarm)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(ms, func(m node.MemberInfo) bool { return m.Domain == member }) {
				next = append(next, n)
			}
		}
		left = next
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d members do not list %s after %s", len(left), len(nodes), member, limit)
		}
		if err := sleepCtx(ctx, 2*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// settledRSS is this process's RSS after a GC that returns memory.
func settledRSS() float64 {
	runtime.GC()
	debug.FreeOSMemory()
	v, _ := rssMB(os.Getpid())
	return v
}
