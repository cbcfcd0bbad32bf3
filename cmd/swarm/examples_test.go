package main

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agent-swarm/agent-swarm/angie"
	"github.com/agent-swarm/agent-swarm/node"
)

var updateExamples = flag.Bool("update-examples", false, "rewrite examples/ from the generators")

// TestAngieExampleIsWhatInitWrites: examples/angie holds exactly the files
// `swarm init --home /var/lib/swarm --domain agent-a.example.com` writes
// on a host whose resolver is systemd-resolved's.
func TestAngieExampleIsWhatInitWrites(t *testing.T) {
	cfg := &node.Config{Domain: "agent-a.example.com", Listen: "127.0.0.1:7080", BehindProxy: true,
		Angie: &node.AngieSettings{ACMEHTTPPort: 80, Resolver: "127.0.0.53", CABundle: angie.DebianCAs}}
	fs, err := renderAngie("/var/lib/swarm", cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range fs.paths {
		ex := filepath.Join("..", "..", "examples", "angie", filepath.Base(p))
		if *updateExamples {
			os.WriteFile(ex, []byte(fs.text[p]), 0o644)
		}
		want, err := os.ReadFile(ex)
		if err != nil {
			t.Fatal(err)
		}
		if fs.text[p] != string(want) {
			t.Fatalf("%s is stale; rerun with -update-examples", ex)
		}
	}
}

// TestSystemdUnitVerifies runs systemd-analyze verify on the example unit
// (with ExecStart pointed at an executable that exists here).
func TestSystemdUnitVerifies(t *testing.T) {
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed: skipping the unit check")
	}
	unit, err := os.ReadFile(filepath.Join("..", "..", "examples", "systemd", "swarm.service"))
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	dir := t.TempDir()
	p := filepath.Join(dir, "swarm.service")
	os.WriteFile(p, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/swarm", self)), 0o644)
	out, err := exec.Command(bin, "verify", p).CombinedOutput()
	if err != nil || strings.Contains(string(out), "swarm.service") {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestClaudeExamplesAreWhatSetupWrites: examples/claude holds exactly the
// files `swarm claude setup` writes into a project, for the default home
// and swarm on PATH: the committed ones and settings.local.json.
func TestClaudeExamplesAreWhatSetupWrites(t *testing.T) {
	m := newSetupMachine(t, true, true)
	m.node(".swarm")
	proj := filepath.Join(m.user, "proj")
	os.MkdirAll(proj, 0o755)
	m.setup(nil, "--project", proj)
	dir := filepath.Join("..", "..", "examples", "claude")
	if *updateExamples {
		os.RemoveAll(dir)
		os.CopyFS(dir, os.DirFS(proj))
	}
	files := func(root string) map[string]string {
		out := map[string]string{}
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			if !d.IsDir() {
				b, _ := os.ReadFile(p)
				rel, _ := filepath.Rel(root, p)
				out[rel] = string(b)
			}
			return nil
		})
		return out
	}
	got, want := files(proj), files(dir)
	for name, b := range got {
		if want[name] != b {
			t.Errorf("%s is stale or missing; rerun with -update-examples", filepath.Join(dir, name))
		}
	}
	for name := range want {
		if _, ok := got[name]; !ok {
			t.Errorf("%s is not written by setup; rerun with -update-examples", filepath.Join(dir, name))
		}
	}
}
