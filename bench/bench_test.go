package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// benchBinary builds the swarm binary for the bench's child processes.
func benchBinary(t *testing.T) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "swarm")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/swarm").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	t.Setenv("SWARM_BENCH_BIN", bin)
}

// benchTemps lists the bench's temp homes, to see that none is left. The
// test gives the bench a temp directory of its own, so other processes'
// runs cannot be counted.
func benchTemps(t *testing.T) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(os.TempDir(), "swarm-bench-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// leftProcs lists the processes whose command line names dir: children
// of the bench (or daemons started behind its back) still running.
func leftProcs(t *testing.T, dir string) []string {
	t.Helper()
	cmdlines, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, p := range cmdlines {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), dir) {
			left = append(left, strings.ReplaceAll(string(bytes.TrimRight(b, "\x00")), "\x00", " "))
		}
	}
	return left
}

// TestBenchRuns: `swarm bench --quick` runs its peers as separate
// processes, completes, prints every row, and leaves no process running.
// (It asserts no timings: the figures are for people to read, in
// docs/performance.md.) Unlike cmd/swarm's tests it runs without
// SWARM_NO_DAEMON, as a user does, so a daemon that a command the bench
// runs would start on its own shows here.
func TestBenchRuns(t *testing.T) {
	benchBinary(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	before := len(benchTemps(t))
	var out, errb bytes.Buffer
	if err := Run(context.Background(), Options{Quick: true}, &out, &errb); err != nil {
		t.Fatalf("bench: %v\n%s", err, errb.String())
	}
	for _, row := range []string{"direct message p50", "direct message p99", "fan-out to 3 p50", "fan-out to 6 p50",
		"throughput, 300 direct msgs", "RSS, max member of the 7-member swarm", "swarm serve start to ready",
		"idle daemon RSS", "idle RSS, 10-member swarm", "RSS after", "swarm_send via MCP stdio", "swarm send CLI",
		"direct message p50 (vs JetStream publish)", "JetStream synced publish p50", "throughput (vs JetStream synced publish)",
		"CPU/msg, sender", "CPU/msg, receiver (vs raw server)", "idle CPU, no swarms", "idle CPU, swarm of 3 live peers",
		"idle CPU, 10-member swarm, 9 offline"} {
		if !strings.Contains(out.String(), row) {
			t.Errorf("no %q row in:\n%s", row, out.String())
		}
	}
	if after := len(benchTemps(t)); after > before {
		t.Errorf("bench left %d temp homes", after-before)
	}
	if left := leftProcs(t, tmp); len(left) > 0 {
		t.Errorf("bench left %d processes running: %q", len(left), left)
	}
}

// TestBenchWithoutJetStream: where the JetStream baseline cannot run (an
// installed binary with no source tree), the bench says so and prints
// every other row.
func TestBenchWithoutJetStream(t *testing.T) {
	benchBinary(t)
	t.Setenv("TMPDIR", t.TempDir())
	t.Setenv(JetStreamBinEnv, filepath.Join(t.TempDir(), "no-such-jetstream"))
	var out, errb bytes.Buffer
	if err := Run(context.Background(), Options{Quick: true}, &out, &errb); err != nil {
		t.Fatalf("bench: %v\n%s", err, errb.String())
	}
	if !strings.Contains(errb.String(), "no JetStream baseline") {
		t.Errorf("the bench did not say the JetStream rows are left out:\n%s", errb.String())
	}
	if strings.Contains(out.String(), "JetStream") {
		t.Errorf("JetStream rows without JetStream:\n%s", out.String())
	}
	for _, row := range []string{"direct message p50 (vs raw POST)", "throughput, 300 direct msgs", "CPU/msg, receiver (vs raw server)", "idle CPU, no swarms"} {
		if !strings.Contains(out.String(), row) {
			t.Errorf("no %q row in:\n%s", row, out.String())
		}
	}
}

// TestBenchLoad: `swarm bench --load`, small, delivers every message
// exactly once to every other daemon, and stops its daemons.
func TestBenchLoad(t *testing.T) {
	benchBinary(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	before := len(benchTemps(t))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	if err := Load(ctx, LoadOptions{Rate: 200, Duration: 3 * time.Second}, &out, &errb); err != nil {
		t.Fatalf("bench --load: %v\n%s\n%s", err, out.String(), errb.String())
	}
	for _, want := range []string{"(send errors 0)", "lost 0, duplicated 0, unexpected 0; outboxes drained true", "RSS load2.bench: min"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}
	var sent, delivered, expected int
	if _, err := fmt.Sscanf(out.String()[strings.Index(out.String(), "\nsent ")+1:], "sent %d", &sent); err != nil || sent < 500 {
		t.Errorf("sent %d (%v), want about 600 in:\n%s", sent, err, out.String())
	}
	if i := strings.Index(out.String(), "\ndelivered "); i < 0 {
		t.Errorf("no delivered line in:\n%s", out.String())
	} else if _, err := fmt.Sscanf(out.String()[i+1:], "delivered %d of %d", &delivered, &expected); err != nil || delivered != 2*sent || expected != 2*sent {
		t.Errorf("delivered %d of %d (%v), want %d of %d", delivered, expected, err, 2*sent, 2*sent)
	}
	if after := len(benchTemps(t)); after > before {
		t.Errorf("bench left %d temp homes", after-before)
	}
	if left := leftProcs(t, tmp); len(left) > 0 {
		t.Errorf("bench left %d processes running: %q", len(left), left)
	}
}
