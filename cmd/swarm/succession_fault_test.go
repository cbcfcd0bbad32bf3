package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
)

// Master succession across a partition (issue #19), with real `swarm
// serve` daemons, each in its own network namespace on one bridge (the
// netlab of faults_test.go). nftables in the bridge's namespace drops
// what crosses between the two sides, so each side still talks within
// itself.

// partition drops bridged IPv4 between the nodes of side and the others
// (node i is 10.77.0.(i+1)), or heals it with side nil.
func (l *netlab) partition(side []int, others []int) {
	l.t.Helper()
	rules := "flush ruleset\n"
	if side != nil {
		set := func(ns []int) string {
			var s []string
			for _, i := range ns {
				s = append(s, fmt.Sprintf("10.77.0.%d", i+1))
			}
			return "{ " + strings.Join(s, ", ") + " }"
		}
		rules += fmt.Sprintf("table bridge part {\n chain cut {\n  type filter hook forward priority 0; policy accept;\n  ip saddr %s ip daddr %s drop\n  ip saddr %s ip daddr %s drop\n }\n}\n",
			set(side), set(others), set(others), set(side))
	}
	cmd := exec.Command("ip", "netns", "exec", l.br, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("nft: %v: %s\n%s", err, out, rules)
	}
}

// needNft: the partition needs nftables; in CI its absence is a failure.
func needNft(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("needs nft (apt-get install -y nftables); .ci/run installs it")
		}
		t.Skip("skipped: needs nft (apt-get install -y nftables)")
	}
}

// masterSeen is the master p's daemon follows in "team".
func (p *fproc) masterSeen() (string, error) {
	out, err := p.op("members", map[string]any{"swarm": "team"})
	if err != nil {
		return "", err
	}
	var ms []node.MemberInfo
	if err := json.Unmarshal(out, &ms); err != nil {
		return "", err
	}
	for _, m := range ms {
		if m.Master {
			return m.Domain, nil
		}
	}
	return "", fmt.Errorf("%s: no master among %d members", p.domain, len(ms))
}

func (p *fproc) status() (node.Status, error) {
	var st node.Status
	out, err := p.op("status", nil)
	if err == nil {
		err = json.Unmarshal(out, &st)
	}
	return st, err
}

// TestFaultSuccessionPartition: five daemons; the master a and b are cut
// off from c, d and e. a goes on as master on its side (it names new
// deputies). The majority side, past the 3 s delay, elects c (b, the
// first deputy, is out of its reach); the minority side cannot: b still
// follows a. Everyone sends throughout. After the heal all five follow
// one chain (c master, a a member, a's record from the partition a fork
// nobody follows) and every inbox holds what was sent to it, once.
func TestFaultSuccessionPartition(t *testing.T) {
	needNft(t)
	names := []string{"a", "b", "c", "d", "e"}
	lab := newNetlab(t, names...)
	exe := swarmExe(t)
	dir := t.TempDir()
	var ps []*fproc
	for i, n := range names {
		ps = append(ps, newProc(t, exe, lab.ns(n), filepath.Join(dir, n), n+".test", fmt.Sprintf("10.77.0.%d:7443", i+1)))
	}
	for _, p := range ps {
		p.serve()
	}
	a, b, c := ps[0], ps[1], ps[2]
	swarmOf(t, a, ps[1:]...)
	out := a.must("deputies", "set", "--swarm", "team", "--after", "3s", "b.test", "c.test")
	if !strings.Contains(out, "warning") {
		t.Fatalf("deputies set with a 3 s delay must warn: %s", out)
	}
	if err := within(20*time.Second, 100*time.Millisecond, func() (bool, error) {
		for _, p := range ps {
			st, err := p.status()
			if err != nil || len(st.Succession) != 1 || len(st.Succession[0].Deputies) != 2 {
				return false, fmt.Errorf("%s: %+v %v", p.domain, st.Succession, err)
			}
		}
		return true, nil
	}); err != nil {
		t.Fatalf("the deputies do not reach everyone: %v", err)
	}

	want := map[*fproc][]string{}
	send := func(from *fproc, body string) {
		t.Helper()
		from.must("send", "--swarm", "team", body)
		for _, p := range ps {
			if p != from {
				want[p] = append(want[p], body)
			}
		}
	}
	lab.partition([]int{0, 1}, []int{2, 3, 4})
	for _, p := range ps {
		send(p, p.domain+" as the partition starts")
	}
	// The master goes on, on its side: a record the majority never sees.
	a.must("deputies", "set", "--swarm", "team", "--after", "3s", "b.test")
	if err := within(45*time.Second, 200*time.Millisecond, func() (bool, error) {
		for _, p := range ps[2:] {
			if m, err := p.masterSeen(); err != nil || m != "c.test" {
				return false, fmt.Errorf("%s follows %s (%v)", p.domain, m, err)
			}
		}
		return true, nil
	}); err != nil {
		t.Fatalf("the majority side does not elect c: %v", err)
	}
	for _, p := range ps {
		send(p, p.domain+" after the election")
	}
	time.Sleep(4 * time.Second) // another delay: the minority side has had its chance
	for _, p := range ps[:2] {
		if m, err := p.masterSeen(); err != nil || m != "a.test" {
			t.Fatalf("%s on the minority side follows %s (%v), want a", p.domain, m, err)
		}
	}
	if st, err := b.status(); err != nil || len(st.Succession) != 1 || strings.Join(st.Succession[0].Deputies, ",") != "b.test" {
		t.Fatalf("b does not follow a's record from the partition: %+v (%v)", st.Succession, err)
	}
	if got, err := b.inboxCounts(); err != nil || got["c.test after the election"] != 0 {
		t.Fatalf("b got the majority's message during the partition (%v): the partition is not one", err)
	}
	// The new master's records: it names its own deputies.
	c.must("deputies", "set", "--swarm", "team", "--after", "3s", "d.test")

	lab.partition(nil, nil)
	healed := time.Now()
	if err := within(60*time.Second, 250*time.Millisecond, func() (bool, error) {
		cs, err := c.status()
		if err != nil {
			return false, err
		}
		for _, p := range ps {
			m, err := p.masterSeen()
			if err != nil || m != "c.test" {
				return false, fmt.Errorf("%s follows %s (%v)", p.domain, m, err)
			}
			st, err := p.status()
			if err != nil || len(st.Succession) != 1 || strings.Join(st.Succession[0].Deputies, ",") != "d.test" {
				return false, fmt.Errorf("%s: deputies %+v (%v), want c's", p.domain, st.Succession, err)
			}
			got, err := p.apiInboxCounts()
			if err != nil {
				return false, err
			}
			for _, w := range want[p] {
				if got[w] == 0 {
					return false, fmt.Errorf("%s lacks %q", p.domain, w)
				}
			}
		}
		return len(cs.Forks) > 0, fmt.Errorf("c holds no proof of a's record from the partition")
	}); err != nil {
		t.Fatalf("not converged after the heal: %v", err)
	}
	converged := time.Since(healed)
	send(a, "a.test as a member")
	settleAndCheck(t, ps, want, 30*time.Second, a, c, 5)
	t.Logf("converged %v after the heal", converged.Round(time.Millisecond))
}
