package testclients

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestConformance runs the official MCP conformance suite against the
// daemon's streamable HTTP endpoint. expected-failures.yml lists only
// scenarios for features this server does not offer, each with a reason.
func TestConformance(t *testing.T) {
	needClients(t)
	d := startDaemon(t, "conf.test")
	url := authProxy(t, d.mcpURL, d.token)
	outDir := t.TempDir()
	if d := os.Getenv("CONFORMANCE_OUT"); d != "" {
		outDir = d
	}
	wd, _ := os.Getwd()
	out, err := run(t, 5*time.Minute, nil, wd, nodeBin(), filepath.Join(binDir, "conformance"), "server",
		"--url", url, "--expected-failures", filepath.Join(wd, "expected-failures.yml"), "-o", outDir)
	t.Log(out)
	if err != nil {
		t.Fatalf("conformance suite failed: %v", err)
	}
}
