package main

// Fault suites against real `swarm serve` processes: a network partition
// in Linux network namespaces, SIGKILL of a receiver and of a sender in
// the middle of a burst, and a receiver whose disk fills up. Every test
// counts the bodies in the receivers' inboxes and asserts that no message
// is lost and none is stored twice. Every wait is bounded.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/localapi"
)

// swarmExe is the swarm binary the tests start as child processes.
// TestMain runs testscript.Main, which has already put a copy of this test
// binary on PATH as `swarm` (it runs run(), exactly what main does); only
// if that is missing is the command built with go build.
func swarmExe(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("swarm"); err == nil && strings.Contains(p, "testscript-main") {
		return p
	}
	exe := filepath.Join(t.TempDir(), "swarm")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return exe
}

// fproc is one node home and, while it runs, its `swarm serve` daemon.
type fproc struct {
	t      *testing.T
	exe    string
	ns     string // network namespace the daemon and CLI run in; "" for this one
	home   string
	domain string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// newProc initialises a home with fast timers (what fastconfig does for
// scripts). The daemon is stopped at cleanup.
func newProc(t *testing.T, exe, ns, home, domain, listen string) *fproc {
	t.Helper()
	p := &fproc{t: t, exe: exe, ns: ns, home: home, domain: domain}
	p.must("init", "--domain", domain, "--listen", listen)
	cfgPath := filepath.Join(home, node.ConfigFile)
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["heartbeat"], cfg["retry_min"], cfg["retry_max"], cfg["sync_every"] = "200ms", "20ms", "300ms", "300ms"
	cfg["join_rate"], cfg["join_burst"] = 100, 100
	b, _ = json.Marshal(cfg)
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
	return p
}

func (p *fproc) command(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{"--home", p.home}, args...)
	if p.ns != "" {
		return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", p.ns, p.exe}, full...)...)
	}
	return exec.CommandContext(ctx, p.exe, full...)
}

// cli runs one swarm command on this home (in its namespace) and returns
// its stdout. With a daemon running it goes over the unix socket.
func (p *fproc) cli(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := p.command(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: swarm %s: %v: %s", p.domain, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func (p *fproc) must(args ...string) string {
	p.t.Helper()
	out, err := p.cli(args...)
	if err != nil {
		p.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// serve starts the daemon (logs to HOME/serve.log) and waits until ready.
func (p *fproc) serve() {
	t := p.t
	t.Helper()
	ready := filepath.Join(p.home, node.ReadyFile)
	os.Remove(ready) // a SIGKILLed daemon leaves it behind
	logf, err := os.OpenFile(p.logPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := p.command(context.Background(), "serve")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			return
		}
		select {
		case <-done:
			t.Fatalf("%s: swarm serve exited at start:\n%s", p.domain, p.logTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: swarm serve not ready after 20 s:\n%s", p.domain, p.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *fproc) logPath() string { return filepath.Join(p.home, "serve.log") }

func (p *fproc) logTail() string {
	b, _ := os.ReadFile(p.logPath())
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// alive reports whether the daemon is running.
func (p *fproc) alive() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// signal sends sig to the daemon's process group and waits (bounded) for
// it to exit; SIGKILL follows if it does not.
func (p *fproc) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			p.t.Errorf("%s: daemon %d did not exit", p.domain, cmd.Process.Pid)
		}
	}
}

func (p *fproc) kill9() { p.signal(syscall.SIGKILL) }
func (p *fproc) stop() {
	if p.alive() {
		p.signal(syscall.SIGINT)
	}
}

// op calls an operation on the daemon's local API (the unix socket the
// CLI uses), without a process per call.
func (p *fproc) op(name string, args map[string]any) (json.RawMessage, error) {
	c, err := localapi.Dial(filepath.Join(p.home, node.SocketFile))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.Call(ctx, name, args)
}

// inboxCounts counts bodies in the inbox, muted included, over the CLI.
func (p *fproc) inboxCounts() (map[string]int, error) {
	out, err := p.cli("--json", "inbox", "--include-muted", "--limit", "1000")
	if err != nil {
		return nil, err
	}
	return countBodies([]byte(out))
}

// apiInboxCounts is inboxCounts over the local API (cheap enough to poll).
func (p *fproc) apiInboxCounts() (map[string]int, error) {
	out, err := p.op("inbox", map[string]any{"include_muted": true, "limit": 1000})
	if err != nil {
		return nil, err
	}
	return countBodies(out)
}

func countBodies(js []byte) (map[string]int, error) {
	var msgs []node.InboxMessage
	if err := json.Unmarshal(js, &msgs); err != nil {
		return nil, fmt.Errorf("inbox JSON: %v", err)
	}
	c := map[string]int{}
	for _, m := range msgs {
		if !m.Local { // the node's own notices (a member joined) are not peer messages
			c[m.Body]++
		}
	}
	return c, nil
}

func (p *fproc) outbox() (int, error) {
	out, err := p.cli("--json", "status")
	if err != nil {
		return 0, err
	}
	var st node.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return 0, err
	}
	return st.Outbox, nil
}

// members returns "domain fingerprint [master]" per member, sorted.
func (p *fproc) members() ([]string, error) {
	out, err := p.cli("--json", "members", "--swarm", "team")
	if err != nil {
		return nil, err
	}
	var ms []node.MemberInfo
	if err := json.Unmarshal([]byte(out), &ms); err != nil {
		return nil, err
	}
	var s []string
	for _, m := range ms {
		e := m.Domain + " " + m.Fingerprint
		if m.Master {
			e += " master"
		}
		s = append(s, e)
	}
	sort.Strings(s)
	return s, nil
}

// within polls ok every step until it holds or d passes; it returns the
// last error ok reported.
func within(d, step time.Duration, ok func() (bool, error)) error {
	deadline := time.Now().Add(d)
	var last error
	for {
		good, err := ok()
		if good {
			return nil
		}
		last = err
		if time.Now().After(deadline) {
			if last == nil {
				last = errors.New("condition never held")
			}
			return fmt.Errorf("after %v: %w", d, last)
		}
		time.Sleep(step)
	}
}

// diffInbox compares counted bodies to the exact expected set: every
// expected body once, nothing else.
// settleAndCheck waits up to drain for every outbox to empty, then checks
// that each process's inbox holds what want says (no loss, no duplicate)
// and that a and c agree on the swarm's members, of which there are n.
func settleAndCheck(t *testing.T, ps []*fproc, want map[*fproc][]string, drain time.Duration, a, c *fproc, n int) {
	t.Helper()
	if err := within(drain, 200*time.Millisecond, func() (bool, error) {
		for _, p := range ps {
			q, err := p.outbox()
			if err != nil || q != 0 {
				return false, fmt.Errorf("%s outbox %d (%v)", p.domain, q, err)
			}
		}
		return true, nil
	}); err != nil {
		t.Fatalf("outboxes do not drain: %v", err)
	}
	time.Sleep(500 * time.Millisecond) // room for a late duplicate to show
	for _, p := range ps {
		got, err := p.inboxCounts()
		if err != nil {
			t.Fatal(err)
		}
		if err := diffInbox(got, want[p]); err != nil {
			t.Errorf("%s's inbox: %v", p.domain, err)
		}
	}
	am, _ := a.members()
	cm, _ := c.members()
	if strings.Join(am, ",") != strings.Join(cm, ",") || len(am) != n {
		t.Errorf("a's members %v, c's %v; want %d", am, cm, n)
	}
}

func diffInbox(got map[string]int, want []string) error {
	w := map[string]bool{}
	var missing, dup, extra []string
	for _, b := range want {
		w[b] = true
		switch got[b] {
		case 0:
			missing = append(missing, b)
		case 1:
		default:
			dup = append(dup, fmt.Sprintf("%q x%d", b, got[b]))
		}
	}
	for b, n := range got {
		if !w[b] {
			extra = append(extra, fmt.Sprintf("%q x%d", b, n))
		}
	}
	if len(missing)+len(dup)+len(extra) == 0 {
		return nil
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return fmt.Errorf("%d lost %v, %d duplicated %v, %d unexpected %v", len(missing), short(missing), len(dup), short(dup), len(extra), short(extra))
}

func short(s []string) []string {
	for i, v := range s {
		if len(v) > 80 {
			s[i] = v[:80] + "..."
		}
	}
	if len(s) > 8 {
		return append(s[:8:8], fmt.Sprintf("... (%d more)", len(s)-8))
	}
	return s
}

// swarmOf makes swarm "team" on master and joins the others through the
// daemons, then waits until every node sees every member.
func swarmOf(t *testing.T, master *fproc, others ...*fproc) {
	t.Helper()
	master.must("create", "--name", "team")
	for _, o := range others {
		tok := master.must("invite", "--swarm", "team")
		o.must("join", "--token", tok)
	}
	for _, p := range append(others, master) {
		if err := within(20*time.Second, 100*time.Millisecond, func() (bool, error) {
			ms, err := p.members()
			return len(ms) == len(others)+1, err
		}); err != nil {
			t.Fatalf("%s does not see all %d members: %v", p.domain, len(others)+1, err)
		}
	}
}

// ---- network namespaces ----

// netlab is a set of network namespaces, one per node, each with lo up and
// an eth0 plugged into a bridge that lives in a namespace of its own:
// node i has 10.77.0.(i+1)/24. Names carry the pid and a counter, so
// concurrent runs do not meet; everything is deleted at cleanup.
type netlab struct {
	t      *testing.T
	prefix string
	br     string
}

var labSeq int

func ipRun(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func newNetlab(t *testing.T, names ...string) *netlab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: network namespaces need root (ip netns add)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: iproute2's ip is not installed (apt-get install -y iproute2)")
	}
	labSeq++
	l := &netlab{t: t, prefix: fmt.Sprintf("swt-%d-%d-", os.Getpid(), labSeq)}
	l.br = l.prefix + "br"
	if err := ipRun("netns", "add", l.br); err != nil {
		t.Skipf("skipped: cannot create a network namespace: %v", err)
	}
	t.Cleanup(func() { _ = ipRun("netns", "del", l.br) })
	l.must("-n", l.br, "link", "set", "lo", "up")
	l.must("-n", l.br, "link", "add", "br0", "type", "bridge")
	l.must("-n", l.br, "link", "set", "br0", "up")
	for i, n := range names {
		ns := l.ns(n)
		l.must("netns", "add", ns)
		t.Cleanup(func() { _ = ipRun("netns", "del", ns) })
		l.must("-n", ns, "link", "set", "lo", "up")
		l.must("-n", l.br, "link", "add", "p"+n, "type", "veth", "peer", "name", "eth0", "netns", ns)
		l.must("-n", l.br, "link", "set", "p"+n, "master", "br0")
		l.must("-n", l.br, "link", "set", "p"+n, "up")
		l.must("-n", ns, "addr", "add", fmt.Sprintf("10.77.0.%d/24", i+1), "dev", "eth0")
		l.must("-n", ns, "link", "set", "eth0", "up")
	}
	return l
}

func (l *netlab) ns(name string) string { return l.prefix + name }

func (l *netlab) must(args ...string) {
	l.t.Helper()
	if err := ipRun(args...); err != nil {
		l.t.Fatal(err)
	}
}

// link takes node name's bridge port down (cut off) or up (healed).
func (l *netlab) link(name string, up bool) {
	l.t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	l.must("-n", l.br, "link", "set", "p"+name, state)
}

// TestFaultPartitionHeals: four daemons, each in its own network
// namespace. c is cut off from the bridge; during the partition a, b and
// c all send, a invites d and d joins and sends. After the link comes
// back every inbox holds exactly what was addressed to it, once, and c's
// member list is a's.
func TestFaultPartitionHeals(t *testing.T) {
	lab := newNetlab(t, "a", "b", "c", "d")
	exe := swarmExe(t)
	dir := t.TempDir()
	var ps []*fproc
	for i, n := range []string{"a", "b", "c", "d"} {
		ps = append(ps, newProc(t, exe, lab.ns(n), filepath.Join(dir, n), n+".test", fmt.Sprintf("10.77.0.%d:7443", i+1)))
	}
	a, b, c, d := ps[0], ps[1], ps[2], ps[3]
	for _, p := range ps {
		p.serve()
	}
	swarmOf(t, a, b, c)

	t0 := time.Now()
	lab.link("c", false)
	want := map[*fproc][]string{}
	const n = 5
	for i := 1; i <= n; i++ {
		s := fmt.Sprintf("a to all %d", i)
		a.must("send", "--swarm", "team", s)
		want[b], want[c] = append(want[b], s), append(want[c], s)
		s = fmt.Sprintf("c to all %d", i)
		c.must("send", "--swarm", "team", s)
		want[a], want[b] = append(want[a], s), append(want[b], s)
		s = fmt.Sprintf("b to c %d", i)
		b.must("send", "--swarm", "team", "--to", "c.test", s)
		want[c] = append(want[c], s)
	}
	// A membership change on the master's side: d joins while c is away.
	d.must("join", "--token", a.must("invite", "--swarm", "team"))
	for _, p := range []*fproc{a, b, d} {
		if err := within(20*time.Second, 100*time.Millisecond, func() (bool, error) {
			ms, err := p.members()
			return len(ms) == 4, err
		}); err != nil {
			t.Fatalf("%s does not see d join during the partition: %v", p.domain, err)
		}
	}
	s := "a to all after d joined"
	a.must("send", "--swarm", "team", s)
	want[b], want[c], want[d] = append(want[b], s), append(want[c], s), append(want[d], s)
	s = "d to all"
	d.must("send", "--swarm", "team", s)
	want[a], want[b], want[c] = append(want[a], s), append(want[b], s), append(want[c], s)
	// c really is cut off: nothing it was sent arrived, its sends wait.
	if got, err := c.inboxCounts(); err != nil || len(got) != 0 {
		t.Fatalf("c received %v (err %v) while partitioned: the partition is not one", got, err)
	}
	if q, err := c.outbox(); err != nil || q == 0 {
		t.Fatalf("c's outbox is %d (err %v) during the partition, want its sends queued", q, err)
	}
	if left := 5*time.Second - time.Since(t0); left > 0 {
		time.Sleep(left) // let the retries back off for a while
	}
	partition := time.Since(t0)
	lab.link("c", true)
	healed := time.Now()

	// Converge: every inbox has its messages and c knows what a knows.
	if err := within(45*time.Second, 200*time.Millisecond, func() (bool, error) {
		for _, p := range ps {
			got, err := p.inboxCounts()
			if err != nil {
				return false, err
			}
			for _, w := range want[p] {
				if got[w] == 0 {
					return false, fmt.Errorf("%s lacks %q", p.domain, w)
				}
			}
		}
		am, err1 := a.members()
		cm, err2 := c.members()
		if err := errors.Join(err1, err2); err != nil {
			return false, err
		}
		if strings.Join(am, ",") != strings.Join(cm, ",") {
			return false, fmt.Errorf("c's members %v, a's %v", cm, am)
		}
		return true, nil
	}); err != nil {
		t.Fatalf("not converged after the heal: %v", err)
	}
	converged := time.Since(healed)
	// After the heal c talks to d, whom it learnt of from the log.
	s = "c to all after the heal"
	c.must("send", "--swarm", "team", s)
	want[a], want[b], want[d] = append(want[a], s), append(want[b], s), append(want[d], s)
	settleAndCheck(t, ps, want, 20*time.Second, a, c, 4)
	t.Logf("partition %v, converged %v after the heal", partition.Round(time.Millisecond), converged.Round(time.Millisecond))
}

// ---- SIGKILL mid-burst ----

// TestFaultKillReceiverMidBurst: a sends a burst of 300 to b through its
// daemon; b's daemon is SIGKILLed after about 100 have arrived and started
// again. a's outbox retries, and b holds all 300, once.
func TestFaultKillReceiverMidBurst(t *testing.T) {
	a, b := servedPair(t)

	const total = 300
	want := make([]string, total)
	for i := range want {
		want[i] = fmt.Sprintf("burst %d", i)
	}
	sendErr := make(chan error, 1)
	go func() {
		for _, s := range want {
			if _, err := a.op("send", map[string]any{"swarm": "team", "to": "b.test", "body": s}); err != nil {
				sendErr <- fmt.Errorf("send %q: %w", s, err)
				return
			}
			time.Sleep(2 * time.Millisecond) // a burst that lasts long enough to cut into
		}
		sendErr <- nil
	}()
	var atKill int
	if err := within(20*time.Second, 2*time.Millisecond, func() (bool, error) {
		got, err := b.apiInboxCounts()
		atKill = len(got)
		return atKill >= 100, err
	}); err != nil {
		t.Fatalf("b never got 100: %v", err)
	}
	b.kill9()
	killed := time.Now()
	if atKill >= total {
		t.Fatalf("all %d had arrived before the kill; the burst was too short to test anything", total)
	}
	select {
	case err := <-sendErr:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the sends did not finish in 30 s")
	}
	b.serve()
	restarted := time.Now()
	drained(t, "after b restarted", func() (bool, error) {
		got, err := b.apiInboxCounts()
		q, _ := a.outbox()
		return err == nil && len(got) >= total && q == 0, fmt.Errorf("b holds %d of %d, a's outbox %d (%v)", len(got), total, q, err)
	})
	got, err := b.inboxCounts()
	if err != nil {
		t.Fatal(err)
	}
	if err := diffInbox(got, want); err != nil {
		t.Fatalf("b's inbox after a SIGKILL at %d of %d: %v", atKill, total, err)
	}
	t.Logf("b killed with %d of %d stored; all %d once %v after the kill, %v after b restarted", atKill, total, total,
		time.Since(killed).Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
}

// TestFaultKillSenderMidBurst: a's daemon is SIGKILLed in the middle of
// 1000 sends over its local API (what `swarm send` does, without a
// process per send). Every send that returned success reaches b once
// after a restarts; the one in flight at the kill arrives at most once;
// the sequence numbers b sees have no gap.
func TestFaultKillSenderMidBurst(t *testing.T) {
	a, b := servedPair(t)

	const total, killAt = 1000, 400
	var ok []string
	uncertain := ""
	killed := make(chan struct{})
	start := time.Now()
	i := 0
	for ; i < total; i++ {
		s := fmt.Sprintf("durable %d", i)
		if i == killAt {
			go func() { a.kill9(); close(killed) }()
		}
		if _, err := a.op("send", map[string]any{"swarm": "team", "to": "b.test", "body": s}); err != nil {
			if i < killAt {
				t.Fatalf("send %d before the kill: %v", i, err)
			}
			uncertain = s // it may or may not have been stored
			break
		}
		ok = append(ok, s)
	}
	burst := time.Since(start)
	<-killed
	if i == total {
		t.Fatalf("all %d sends returned although the daemon was killed at %d", total, killAt)
	}
	a.serve()
	// Finish the burst on the restarted daemon.
	for i++; i < total; i++ {
		s := fmt.Sprintf("durable %d", i)
		if _, err := a.op("send", map[string]any{"swarm": "team", "to": "b.test", "body": s}); err != nil {
			t.Fatalf("send %d after the restart: %v", i, err)
		}
		ok = append(ok, s)
	}
	if err := within(40*time.Second, 200*time.Millisecond, func() (bool, error) {
		got, err := b.apiInboxCounts()
		q, _ := a.outbox()
		return err == nil && len(got) >= len(ok) && q == 0, fmt.Errorf("b holds %d of %d, a's outbox %d (%v)", len(got), len(ok), q, err)
	}); err != nil {
		t.Fatalf("after a restarted: %v", err)
	}
	got, err := b.inboxCounts()
	if err != nil {
		t.Fatal(err)
	}
	want := ok
	if got[uncertain] > 0 {
		want = append(want, uncertain)
	}
	if err := diffInbox(got, want); err != nil {
		t.Fatalf("b's inbox (%d sends returned, %q in flight at the kill): %v", len(ok), uncertain, err)
	}
	out, err := b.op("inbox", map[string]any{"include_muted": true, "limit": 1000})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []node.InboxMessage
	if err := json.Unmarshal(out, &msgs); err != nil {
		t.Fatal(err)
	}
	seqs := make([]int, 0, len(msgs))
	for _, m := range msgs {
		seqs = append(seqs, int(m.Seq))
	}
	sort.Ints(seqs)
	for j, q := range seqs {
		if q != j+1 {
			t.Fatalf("b's sequence numbers have a gap or repeat at %d: %v", j+1, seqs[max(0, j-3):min(len(seqs), j+3)])
		}
	}
	t.Logf("%d sends before the kill in %v (%.2f ms each over the local API); %d of %d delivered once, in-flight %q stored: %v",
		killAt, burst.Round(time.Millisecond), float64(burst.Microseconds())/1000/float64(killAt), len(got), total, uncertain, got[uncertain] > 0)
}

// drained waits (at most 100 s) until ok holds.
func drained(t *testing.T, what string, ok func() (bool, error)) {
	t.Helper()
	// Correctness only: how long it took is logged, not asserted (speed
	// belongs to swarm bench; the stall this once showed is covered by
	// TestRestartedPeerResetsOldConnection, which fails without the fix).
	start := time.Now()
	if err := within(100*time.Second, 100*time.Millisecond, ok); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	t.Logf("%s: drained in %v", what, time.Since(start).Round(time.Millisecond))
}

// servedPair is two daemons, a.test (master) and b.test, in swarm "team".
func servedPair(t *testing.T) (a, b *fproc) {
	t.Helper()
	exe := swarmExe(t)
	dir := t.TempDir()
	a = newProc(t, exe, "", filepath.Join(dir, "a"), "a.test", loopbackAddr(t))
	b = newProc(t, exe, "", filepath.Join(dir, "b"), "b.test", loopbackAddr(t))
	a.serve()
	b.serve()
	swarmOf(t, a, b)
	return a, b
}

// crashSummary is the start of a Go crash report in a daemon's log: the
// fatal error and the frames of the goroutine that hit it.
func crashSummary(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "fatal error") || strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "unexpected fault") {
			var out []string
			blanks := 0
			for _, f := range lines[i:min(len(lines), i+60)] {
				if f == "" {
					if blanks++; blanks == 2 {
						break // the end of the faulting goroutine
					}
				}
				if !strings.HasPrefix(f, "\t") && !strings.HasPrefix(f, "runtime.") {
					out = append(out, f)
				}
			}
			return strings.Join(out, "\n")
		}
	}
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return "(no Go crash report; the log ends:)\n" + string(b)
}

func loopbackAddr(t *testing.T) string {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// ---- a full disk ----

// TestFaultReceiverDiskFull: b's data directory is a small tmpfs. Once it
// is full, a message to b must not be acked: it stays pending at a with
// the receiver's reason, b keeps running and logs a clear error. When
// space is freed the message arrives, once.
func TestFaultReceiverDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting a tmpfs for the data directory needs root")
	}
	exe := swarmExe(t)
	dir := t.TempDir()
	a := newProc(t, exe, "", filepath.Join(dir, "a"), "a.test", loopbackAddr(t))
	b := newProc(t, exe, "", filepath.Join(dir, "b"), "b.test", loopbackAddr(t))
	data := filepath.Join(b.home, node.DataDir)
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	// badger's files are sparse (mmap): 64 MiB holds them with room to spare.
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "swarm-test-full", data).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot mount a tmpfs on the data directory: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", data).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", data, err, out)
		}
	})
	// Registered after the umount, so the daemons stop before it runs.
	t.Cleanup(a.stop)
	t.Cleanup(b.stop)
	a.serve()
	b.serve()
	swarmOf(t, a, b)
	a.must("send", "--swarm", "team", "--wait", "10s", "before the disk filled")

	// Fill the file system.
	filler := filepath.Join(data, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for i := 0; i < 128; i++ {
		if _, err := f.Write(chunk); err != nil {
			break // ENOSPC: full
		}
	}
	f.Close()
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(data, &sfs); err != nil || sfs.Bavail != 0 {
		t.Fatalf("the tmpfs is not full: %d blocks free (%v)", sfs.Bavail, err)
	}

	// 60 KB: more than badger keeps in the memtable, so the value log must
	// grow by several pages, whatever is left in pages already allocated.
	full := "while the disk is full " + strings.Repeat("x", 60000)
	out := a.must("--json", "send", "--swarm", "team", full)
	var sent node.SendResult
	if err := json.Unmarshal([]byte(out), &sent); err != nil {
		t.Fatal(err)
	}
	// Give b time to receive it and fail, and a to retry a few times.
	time.Sleep(2 * time.Second)
	crashed := !b.alive()
	if crashed {
		t.Errorf("b's daemon died when its disk filled instead of refusing the message with retry:\n%s", crashSummary(b.logPath()))
	} else {
		log, _ := os.ReadFile(b.logPath())
		if !bytes.Contains(log, []byte("inbox commit failed")) && !bytes.Contains(bytes.ToLower(log), []byte("no space")) {
			t.Errorf("b's log has no clear error about the full disk; it ends:\n%s", b.logTail())
		}
	}
	dout, err := a.cli("--json", "delivery", sent.ID)
	if err != nil {
		t.Fatal(err)
	}
	var ds []node.Delivery
	if err := json.Unmarshal([]byte(dout), &ds); err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Status != node.Pending {
		t.Errorf("delivery while b's disk is full: %+v, want pending (no ack)", ds)
	} else if !crashed && !strings.Contains(ds[0].Reason, "could not store") {
		t.Errorf("a's pending delivery gives the reason %q, want the receiver's store failure", ds[0].Reason)
	}

	// Free the space; b (restarted if it died) takes the message, once.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if crashed {
		b.serve()
	}
	drained(t, "after the space was freed", func() (bool, error) {
		got, err := b.apiInboxCounts()
		q, _ := a.outbox()
		return err == nil && got[full] > 0 && q == 0, fmt.Errorf("b holds %d messages, a's outbox %d (%v)", len(got), q, err)
	})
	time.Sleep(300 * time.Millisecond)
	got, err := b.inboxCounts()
	if err != nil {
		t.Fatal(err)
	}
	if err := diffInbox(got, []string{"before the disk filled", full}); err != nil {
		t.Fatalf("b's inbox: %v", err)
	}
}
