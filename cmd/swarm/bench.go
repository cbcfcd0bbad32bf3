package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/transport"
	"github.com/mark3labs/mcp-go/client"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/rs/zerolog"
)

// benchOpts size one run of swarm bench.
type benchOpts struct {
	n, fanN, fanout int
	// fanBig members (and raw servers) for the large fan-out, fanBigN
	// round trips of it; tput messages for the throughput rows; idlePeers
	// members of the swarm of the idle-with-peers daemon; readyRuns starts
	// of `swarm serve` for time to ready.
	fanBig, fanBigN, tput, idlePeers, readyRuns int
	idleFor                                     time.Duration
	// swarm100: the in-process swarm of s100 nodes (0: skipped).
	s100, s100N int
}

// cmdBench measures, in one run on one machine, a baseline of raw HTTP/3
// beside the node, and prints the ratios. Every peer is a separate process
// of this binary; all children are stopped and their homes removed.
func cmdBench(ctx context.Context, g globals, f flagMap, stdout, stderr io.Writer) error {
	var err error
	if f["load"] == "true" {
		lo, err := loadFlags(f)
		if err != nil {
			return err
		}
		b, err := newBencher(stderr)
		if err != nil {
			return err
		}
		defer b.close()
		return b.load(ctx, lo, stdout)
	}
	if f["rate"] != "" || f["duration"] != "" {
		return usagef("bench: --rate and --duration go with --load")
	}
	o := benchOpts{n: 1000, fanN: 200, fanout: 10, fanBig: 50, fanBigN: 30, tput: 5000, idlePeers: 50, readyRuns: 5, idleFor: 10 * time.Second}
	if f["quick"] == "true" {
		o = benchOpts{n: 30, fanN: 10, fanout: 3, fanBig: 6, fanBigN: 5, tput: 300, idlePeers: 10, readyRuns: 3, idleFor: 2 * time.Second}
	}
	if f["swarm100"] == "true" {
		o.s100, o.s100N = 100, 10
		if f["quick"] == "true" {
			o.s100, o.s100N = 20, 3
		}
	}
	if v := f["n"]; v != "" {
		if o.n, err = strconv.Atoi(v); err != nil || o.n < 1 || o.n > 100000 {
			return usagef("--n must be 1..100000")
		}
		o.fanN = max(o.n/5, 1)
	}
	b, err := newBencher(stderr)
	if err != nil {
		return err
	}
	defer b.close()
	rows, err := b.run(ctx, o)
	if err != nil {
		return err
	}
	if g.json {
		return json.NewEncoder(stdout).Encode(rows)
	}
	fmt.Fprintf(stdout, "%-44s %14s %14s %8s  %s\n", "metric", "baseline", "node", "ratio", "target")
	for _, r := range rows {
		ratio := fmt.Sprintf("%7.2fx", r.Ratio)
		base := r.fmt(r.Baseline)
		if r.Baseline == 0 {
			ratio, base = "      -", "-"
		}
		fmt.Fprintf(stdout, "%-44s %14s %14s %8s  %s\n", r.Metric, base, r.fmt(r.Node), ratio, r.Target)
	}
	return nil
}

type benchRow struct {
	Metric   string  `json:"metric"`
	Unit     string  `json:"unit"`
	Baseline float64 `json:"baseline"`
	Node     float64 `json:"node"`
	Ratio    float64 `json:"ratio"`
	Target   string  `json:"target"`
}

func (r benchRow) fmt(v float64) string {
	switch r.Unit {
	case "MB":
		return fmt.Sprintf("%.1f MB", v)
	case "msg/s":
		return fmt.Sprintf("%.0f msg/s", v)
	}
	return fmt.Sprintf("%.3f ms", v)
}

type bencher struct {
	tmp      string
	self     string
	stderr   io.Writer
	mu       sync.Mutex
	children []*exec.Cmd
}

func newBencher(stderr io.Writer) (*bencher, error) {
	self := os.Getenv("SWARM_BENCH_BIN")
	if self == "" {
		var err error
		if self, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	tmp, err := os.MkdirTemp("", "swarm-bench-")
	if err != nil {
		return nil, err
	}
	return &bencher{tmp: tmp, self: self, stderr: stderr}, nil
}

func (b *bencher) close() {
	b.mu.Lock()
	cs := b.children
	b.children = nil
	b.mu.Unlock()
	stopChildren(cs)
	os.RemoveAll(b.tmp)
}

// stop stops some children (their process groups) and forgets them.
func (b *bencher) stop(cs ...*exec.Cmd) {
	b.mu.Lock()
	keep := b.children[:0]
	for _, c := range b.children {
		if !slices.Contains(cs, c) {
			keep = append(keep, c)
		}
	}
	b.children = keep
	b.mu.Unlock()
	stopChildren(cs)
}

// stopChildren sends SIGTERM to each child's process group, then SIGKILL
// to any still running after 5 s, and reaps them all.
func stopChildren(cs []*exec.Cmd) {
	for _, c := range cs {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
	}
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan struct{})
			go func() { c.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
				<-done
			}
		}()
	}
	wg.Wait()
}

// start runs this binary with args as a child in its own process group.
// The child gets SIGTERM if the bench process dies without cleaning up.
func (b *bencher) start(args ...string) (*exec.Cmd, io.Reader, error) {
	cmd := exec.Command(b.self, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	b.mu.Lock()
	b.children = append(b.children, cmd)
	b.mu.Unlock()
	return cmd, out, nil
}

// rawPeer starts a raw HTTP/3 server process and returns how to reach it.
func (b *bencher) rawPeer() (transport.Peer, int, error) {
	p, cmd, err := b.rawPeerCmd()
	if err != nil {
		return p, 0, err
	}
	return p, cmd.Process.Pid, nil
}

// rawDir writes a self-signed pair for a raw server and returns its
// directory and pin.
func (b *bencher) rawDir() (string, string, error) {
	dir, err := os.MkdirTemp(b.tmp, "raw-")
	if err != nil {
		return "", "", err
	}
	certPEM, keyPEM, err := transport.SelfSigned("raw.bench", []string{"127.0.0.1"})
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600); err != nil {
		return "", "", err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return "", "", err
	}
	pin, err := transport.PinOf(cert)
	return dir, pin, err
}

// rawPeerCmd starts a raw HTTP/3 server process and returns how to reach
// it and the child.
func (b *bencher) rawPeerCmd() (transport.Peer, *exec.Cmd, error) {
	dir, pin, err := b.rawDir()
	if err != nil {
		return transport.Peer{}, nil, err
	}
	cmd, out, err := b.start("bench-peer", "--dir", dir)
	if err != nil {
		return transport.Peer{}, nil, err
	}
	line, err := readLine(out, 15*time.Second)
	if err != nil {
		return transport.Peer{}, nil, fmt.Errorf("raw peer did not start: %w", err)
	}
	return transport.Peer{Addr: line, Pin: pin}, cmd, nil
}

// readLine reads the first line of r, waiting at most d.
func readLine(r io.Reader, d time.Duration) (string, error) {
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := bufio.NewReader(r).ReadString('\n')
		ch <- res{strings.TrimSpace(s), err}
	}()
	select {
	case v := <-ch:
		return v.s, v.err
	case <-time.After(d):
		return "", fmt.Errorf("no line within %s", d)
	}
}

// nodeHome makes a node home with a free port.
func (b *bencher) nodeHome(name string) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	home := filepath.Join(b.tmp, name)
	if _, err := node.Init(home, node.InitOptions{Domain: name + ".bench", Listen: fmt.Sprintf("127.0.0.1:%d", port)}); err != nil {
		return "", err
	}
	cfg, _ := node.LoadConfig(home)
	cfg.JoinRate, cfg.JoinBurst, cfg.RateLimit = 1000, 1000, 100000
	cfg.RetryMin, cfg.RetryMax = node.Duration(20*time.Millisecond), node.Duration(500*time.Millisecond)
	return home, node.SaveConfig(home, cfg)
}

// serveNode runs `swarm serve` on home as a child and waits until ready.
func (b *bencher) serveNode(ctx context.Context, home string) (int, error) {
	cmd, err := b.startServe(home)
	if err != nil {
		return 0, err
	}
	return cmd.Process.Pid, b.waitReady(ctx, home)
}

// startServe starts `swarm serve` on home as a child.
func (b *bencher) startServe(home string) (*exec.Cmd, error) {
	os.Remove(filepath.Join(home, node.ReadyFile))
	cmd, _, err := b.start("--home", home, "--log-level", "error", "serve")
	return cmd, err
}

// waitReady waits (up to 15 s) for the daemon on home to write its ready file.
func (b *bencher) waitReady(ctx context.Context, home string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if _, err := os.Stat(filepath.Join(home, node.ReadyFile)); err == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("node %s did not become ready", home)
}

// sleepCtx sleeps d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *bencher) run(ctx context.Context, o benchOpts) ([]benchRow, error) {
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
		if err := send(members[0]); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(b.stderr, "bench: round trips x%d (interleaved)\n", o.n)
	raw, direct := make([]time.Duration, 0, o.n), make([]time.Duration, 0, o.n)
	for i := 0; i < o.n; i++ {
		t0 := time.Now()
		if err := rawPost(raws[0]); err != nil {
			return nil, err
		}
		t1 := time.Now()
		if err := send(members[0]); err != nil {
			return nil, err
		}
		raw, direct = append(raw, t1.Sub(t0)), append(direct, time.Since(t1))
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
	tput, err := b.throughput(ctx, a, members[0], raws[0], client, body, o.tput)
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
	rows := []benchRow{
		row("direct message p50 (vs raw POST)", raw, direct, 0.50, "<= 2.0x"),
		row("direct message p99 (vs raw POST)", raw, direct, 0.99, "<= 3.0x"),
		row(fmt.Sprintf("fan-out to %d p50 (vs raw fan-out)", o.fanout), rawFan, nodeFan, 0.50, "<= 1.5x"),
		row(fmt.Sprintf("fan-out to %d p99 (vs raw fan-out)", o.fanout), rawFan, nodeFan, 0.99, ""),
	}
	rows = append(rows, big...)
	rows = append(rows, tput)
	rows = append(rows, faces...)
	rows = append(rows, ready)
	rawRSS, err1 := rssMB(rawPID)
	idleRSS, err2 := rssMB(idlePID)
	loadedRSS, err3 := rssMB(memberPIDs[0])
	peersRSS, err4 := rssMB(peersPID)
	if err1 == nil && err2 == nil && err3 == nil && err4 == nil {
		rows = append(rows,
			benchRow{Metric: "idle daemon RSS (vs raw server)", Unit: "MB", Baseline: rawRSS, Node: idleRSS, Ratio: idleRSS / rawRSS, Target: "node <= 30 MB"},
			benchRow{Metric: fmt.Sprintf("idle RSS, %d-member swarm, after %s", o.idlePeers, time.Since(peersReady).Round(time.Second)),
				Unit: "MB", Baseline: rawRSS, Node: peersRSS, Ratio: peersRSS / rawRSS, Target: "node <= 60 MB"},
			benchRow{Metric: fmt.Sprintf("RSS after %d messages, then idle", o.n+min(200, o.n)+o.fanN+o.tput), Unit: "MB", Baseline: rawRSS, Node: loadedRSS, Ratio: loadedRSS / rawRSS, Target: ""})
	} else {
		return nil, fmt.Errorf("reading RSS: %w", errors.Join(err1, err2, err3, err4))
	}
	if o.s100 > 0 {
		s100, err := b.swarm100(ctx, o.s100, o.s100N)
		if err != nil {
			return nil, err
		}
		rows = append(rows, s100...)
	}
	return rows, nil
}

func row(metric string, base, got []time.Duration, q float64, target string) benchRow {
	b, n := quantile(base, q), quantile(got, q)
	return benchRow{Metric: metric, Unit: "ms", Baseline: b, Node: n, Ratio: n / b, Target: target}
}

func quantile(ds []time.Duration, q float64) float64 {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(q * float64(len(s)-1))
	return float64(s[i].Microseconds()) / 1000
}

func rssMB(pid int) (float64, error) { return statusMB(pid, "VmRSS:") }

// statusMB reads one memory line of /proc/PID/status in MB: VmRSS (all
// resident), RssAnon (heap and stacks) or RssFile (mapped files, here
// badger's tables and logs: page cache the kernel can reclaim).
func statusMB(pid int, field string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no %s for %d", field, pid)
}

// cmdBenchPeer is the raw baseline server: the same HTTP/3 transport as a
// node, with a handler that reads the body and answers 200.
func cmdBenchPeer(ctx context.Context, f flagMap, stdout io.Writer) error {
	certs, err := transport.LoadCerts(filepath.Join(f["dir"], "cert.pem"), filepath.Join(f["dir"], "key.pem"), zerolog.Nop())
	if err != nil {
		return err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	})
	srv, err := transport.Listen("127.0.0.1:0", h, transport.ListenOptions{Certs: certs, Log: zerolog.Nop()})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, srv.Addr())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// faces measures a send through the user-facing faces against a daemon:
// swarm_send over `swarm mcp` on stdio (from the tool call to the message
// stored in the daemon's outbox), beside the CLI's own `swarm send` (a
// whole process, wall time), both against the same daemon, whose peer is
// a second daemon.
func (b *bencher) faces(ctx context.Context, o benchOpts) ([]benchRow, error) {
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
		out, err := exec.CommandContext(ctx, b.self, append([]string{"--home", home}, args...)...).Output()
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
	c, err := client.NewStdioMCPClient(b.self, nil, "--home", dHome, "--log-level", "error", "mcp")
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
	return []benchRow{
		{Metric: "swarm_send via MCP stdio p50 (vs CLI)", Unit: "ms", Baseline: quantile(viaCLI, 0.5), Node: quantile(viaMCP, 0.5),
			Ratio: quantile(viaMCP, 0.5) / quantile(viaCLI, 0.5), Target: "MCP <= 3 ms"},
		{Metric: "swarm send CLI wall p50", Unit: "ms", Baseline: quantile(viaCLI, 0.5), Node: quantile(viaCLI, 0.5), Ratio: 1, Target: "<= 30 ms"},
	}, nil
}

// rawPOST is one baseline request: a POST of body that the raw server
// reads and answers 200.
func rawPOST(ctx context.Context, client *transport.Client, p transport.Peer, body string) error {
	code, _, err := client.Do(ctx, p, "POST", "/bench", []byte(body), nil, 1<<16)
	if err == nil && code != 200 {
		err = fmt.Errorf("raw peer answered %d", code)
	}
	return err
}

// rawFanOut posts body to every raw peer at once and waits for all.
func rawFanOut(ctx context.Context, client *transport.Client, raws []transport.Peer, body string) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(raws))
	for _, p := range raws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- rawPOST(ctx, client, p, body)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
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
