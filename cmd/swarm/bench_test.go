package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchRuns: `swarm bench --quick` runs its peers as separate
// processes, completes, and prints every row. (It asserts no timings:
// the figures are for people to read, in docs/performance.md.)
func TestBenchRuns(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "swarm")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	t.Setenv("SWARM_BENCH_BIN", bin)
	var out, errb bytes.Buffer
	if err := cmdBench(context.Background(), globals{}, []string{"--quick"}, &out, &errb); err != nil {
		t.Fatalf("bench: %v\n%s", err, errb.String())
	}
	for _, row := range []string{"direct message p50", "direct message p99", "fan-out to 3 p50", "idle daemon RSS", "RSS after", "swarm_send via MCP stdio", "swarm send CLI"} {
		if !strings.Contains(out.String(), row) {
			t.Errorf("no %q row in:\n%s", row, out.String())
		}
	}
}
