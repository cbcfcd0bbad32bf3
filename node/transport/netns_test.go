package transport

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// netnsEnv names the test a child process runs inside its own network
// namespace.
const netnsEnv = "SWARM_TRANSPORT_NETNS_TEST"

// inOwnNetns makes the calling test run in a network namespace of its own
// with nftables, so it can drop or refuse UDP without touching the host:
// the test binary runs itself again under `unshare -n` and the parent only
// reports the child's result. It returns true in the child (run the test),
// false in the parent (the test is over). Root, unshare, ip and nft are
// needed: without them the test fails in CI (.ci/run installs them) and
// is skipped elsewhere.
func inOwnNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsEnv) == t.Name() {
		run(t, "ip", "link", "set", "lo", "up")
		return true
	}
	missing := ""
	for _, tool := range []string{"unshare", "ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing += " " + tool
		}
	}
	switch {
	case os.Geteuid() != 0:
		missing = " root (network namespaces)"
	case missing != "":
		missing = fmt.Sprintf("%s (apt-get install -y nftables iproute2 util-linux)", missing)
	}
	if missing != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("needs%s; .ci/run installs them", missing)
		}
		t.Skipf("skipped: needs%s", missing)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-n", "--", os.Args[0],
		"-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), netnsEnv+"="+t.Name())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("in its own network namespace:\n%s", strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatalf("in its own network namespace: %v", err)
	}
	if !strings.Contains(out.String(), "--- PASS: "+t.Name()) {
		t.Fatalf("the test did not pass in its network namespace")
	}
	return false
}

// run runs a command and fails the test with its output if it fails.
func run(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

// nftables loads a ruleset into the (private) namespace, replacing the
// previous one.
func nftables(t *testing.T, rules string) {
	t.Helper()
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader("flush ruleset\n" + rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s\n%s", err, bytes.TrimSpace(out), rules)
	}
}
